//! A three-node raft-rs key-value cluster over this crate's `Transport`,
//! on 127.0.0.1, each node in its own thread with its own actix `System`
//! and a small HTTP API for puts and gets.
//!
//! It runs the scenario of `scenario.rs` (elect, 2 000 puts, replace a
//! follower by an empty member that catches up by streamed snapshot, stop
//! the leader, elect another, compare the maps) and prints one `RESULT`
//! line. Run it with
//! `cargo run --release --example raft_kv --features raft-rs`.
//!
//! The files: `glue.rs` is the whole transport glue; `node.rs` is raft-rs's
//! Ready loop and the node's messages; `kv.rs` the state machine and its
//! raft-rs storage; `api.rs` the client API; `scenario.rs` the driver.

mod api;
mod glue;
mod kv;
mod node;
mod scenario;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match scenario::run() {
        Ok(outcome) => println!("{}", outcome.result_line()),
        Err(e) => {
            eprintln!("raft_kv failed: {e}");
            std::process::exit(1);
        }
    }
}

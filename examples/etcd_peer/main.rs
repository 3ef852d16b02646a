//! A stand-in etcd member, built only from this crate's public API, that
//! joins a real etcd 3.4 cluster. It keeps no data, only the terms of its
//! raft log, which is what raft needs to decide whether an append fits.
//!
//! It answers etcd's raft messages as a raft follower would, with every
//! message in both directions carried by [`PipelineActor`] (out) and the
//! [`receiver`] (in):
//!
//! - it grants `MsgVote` and `MsgPreVote` (once per term for `MsgVote`);
//! - it answers `MsgApp` as raft's `handleAppendEntries` does: an append
//!   that fits its log is acknowledged with `MsgAppResp { index: m.index +
//!   entries }`; one it cannot apply (a gap, or a different term at
//!   `m.index`) is rejected with its last index as the hint, and etcd then
//!   probes back (unless `--no-append-ack`, the control experiment);
//! - it answers `MsgHeartbeat` with `MsgHeartbeatResp`, echoing `context`,
//!   which etcd's linearizable reads need;
//! - with `--data-dir`, it takes the leader's database through `POST
//!   /raft/snapshot` into that directory (`%016x.snap.db`, as etcd names
//!   it), then restores its log to the snapshot and acknowledges it with
//!   `MsgAppResp { index: snapshot index }`, after which etcd replicates to
//!   it normally;
//! - on `MsgTimeoutNow` it campaigns as raft's leadership transfer does, so
//!   an etcd leader that is told to stop hands over at once instead of
//!   stalling for seconds.
//!
//! It serves etcd's peer routes besides `/raft`: `/raft/probing`,
//! `/version`, `/members`, and 404 for `/raft/stream/*`, so etcd keeps to
//! the pipeline. Ids are derived from `--initial-cluster` and
//! `--initial-cluster-token` exactly as etcd derives them.
//!
//! ```text
//! etcd_peer --name peer --initial-cluster etcd=http://127.0.0.1:2380,peer=http://127.0.0.1:2390 \
//!     --initial-cluster-token tok --listen-peer-urls http://127.0.0.1:2390 --stats-every 5
//! ```
//!
//! To stage a catch-up, `--down-until-signal` (or `--start-delay SECS`)
//! holds the member down at start: its port is bound but not listening, so
//! etcd's connections are refused as if it were off, until SIGUSR1. With
//! `--events`, it prints one JSON line per append answer and per snapshot
//! step, and `--fail-snapshots N` makes the first N snapshot transfers fail
//! (`--fail-mode 500`: the sink fails and the receiver answers 500; `cut`:
//! the connection is shut down mid-body), to watch etcd retry.
//!
//! The code is split one concept per module: [`flags`], the raft logic
//! ([`log_terms`], [`standin`]), what it reports ([`stats`], [`events`]),
//! snapshots ([`sinks`], [`snapshot_requests`]), and the actix shell
//! ([`actor`], [`members`], [`sockets`], [`server`]); [`run`] is `main`.
//!
//! `tests/etcd_snapshot.rs` includes this file, with its modules and their
//! unit tests (`tests.rs`), as a module and runs [`run`] in child processes;
//! `tests/etcd_interop.rs` includes only the modules [`server::start_on`]
//! needs and runs the same code in-process. So the modules name each other
//! with `super::` paths, never `crate::`.
//!
//! [`PipelineActor`]: rafthttp_pipeline::PipelineActor
//! [`receiver`]: rafthttp_pipeline::receiver

// `pub`, so that what only the tests use (`Counts::received`, `FailMode::name`,
// ...) is not dead code in the binary, as at the root of the single file before.
pub mod actor;
pub mod events;
pub mod flags;
pub mod log_terms;
pub mod members;
pub mod server;
pub mod sinks;
pub mod snapshot_requests;
pub mod sockets;
pub mod standin;
pub mod stats;

#[cfg(test)]
mod tests;

use std::io;

use log::info;
use serde_json::json;

use self::events::{memory, Events};
use self::flags::Flags;
use self::server::start_on;
use self::sockets::{bind, listen, reserve};
use self::stats::lock;

/// Runs the stand-in with the arguments after the program name, until
/// SIGINT or SIGTERM: what `main` does, callable from a test's child
/// process.
pub fn run(args: Vec<String>) -> io::Result<()> {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let parsed = Flags::parse(args).and_then(|flags| flags.resolve().map(|r| (flags, r)));
    let (flags, (cluster, me, addrs)) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("etcd_peer: {message}");
            std::process::exit(2);
        }
    };
    println!(
        "{{\"member_id\":\"{}\",\"cluster_id\":\"{}\"}}",
        me.id, cluster.cluster_id
    );
    // Held down: the ports are bound now, so that no other socket takes
    // them meanwhile, but they listen only once the member comes up.
    let (mut listeners, mut reserved) = (Vec::new(), Vec::new());
    if flags.held_down() {
        for addr in &addrs {
            reserved.push(reserve(addr)?);
        }
    } else {
        listeners = bind(&addrs)?;
    }
    let events = Events::new(flags.events);
    actix_rt::System::new().block_on(async move {
        use actix_rt::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        if !reserved.is_empty() {
            let pid = std::process::id();
            info!(
                "held down: {} refuses connections until {}",
                addrs.join(","),
                match flags.start_delay {
                    Some(delay) => format!("{delay:?} have passed or SIGUSR1 (kill -USR1 {pid})"),
                    None => format!("SIGUSR1 (kill -USR1 {pid})"),
                }
            );
            events.lifecycle(json!({"event": "down", "pid": pid, "addrs": addrs}));
            let delay = async {
                match flags.start_delay {
                    Some(delay) => actix_rt::time::sleep(delay).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                _ = usr1.recv() => info!("SIGUSR1: coming up"),
                _ = delay => info!("start delay over: coming up"),
                _ = actix_rt::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
            }
            listeners = reserved.into_iter().map(listen).collect::<io::Result<_>>()?;
        }
        let running = start_on(&flags, cluster, me, listeners)?;
        events.lifecycle(
            json!({"event": "up", "pid": std::process::id(), "addrs": addrs, "memory": memory()}),
        );
        tokio::select! {
            _ = actix_rt::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
        }
        let counts = running.counts.clone();
        for (peer, stats) in running.stop().await {
            info!(
                "pipeline to {peer}: accepted {}, delivered {}, failed {}, dropped {}, cancelled {}",
                stats.accepted, stats.delivered, stats.failed, stats.dropped, stats.cancelled
            );
        }
        println!("{}", lock(&counts).to_json());
        Ok(())
    })
}

fn main() -> io::Result<()> {
    run(std::env::args().skip(1).collect())
}

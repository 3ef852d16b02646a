//! A stand-in etcd member, built only from `rafthttp-pipeline`'s public API,
//! that joins a real etcd 3.4 cluster. It keeps no data, only the terms of its
//! raft log, which is what raft needs to decide whether an append fits.
//!
//! It answers etcd's raft messages as a raft follower would, with every
//! message in both directions carried by the [`Transport`] (out, one pipeline per peer) and the
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
//! cargo run -p etcd-peer -- --name peer \
//!     --initial-cluster etcd=http://127.0.0.1:2380,peer=http://127.0.0.1:2390 \
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
//! What it prints on stdout, one JSON object per line (see [`events`]):
//! first the ids it derived (`member_id`, `cluster_id`, and `members`, each
//! member's name and id); the lifecycle events `down` and `up`; its message
//! counts ([`stats`]) every `--stats-every` and on SIGUSR2; on SIGINT or
//! SIGTERM one `pipeline_stopped` event per peer with the pipeline's final
//! counters, then the counts a last time. Its log goes to stderr
//! (`RUST_LOG`, `info` by default).
//!
//! The code is split one concept per module: [`flags`], the raft logic
//! ([`log_terms`], [`standin`]), what it reports ([`stats`], [`events`]),
//! snapshots ([`sinks`], [`snapshot_requests`]), and the actix shell
//! ([`actor`], [`members`], [`sockets`], [`server`]). The tests under
//! `tests/` run this binary beside a real etcd.
//!
//! [`Transport`]: rafthttp_pipeline::Transport
//! [`receiver`]: rafthttp_pipeline::receiver

mod actor;
mod events;
mod flags;
mod log_terms;
mod members;
mod server;
mod sinks;
mod snapshot_requests;
mod sockets;
mod standin;
mod stats;

use std::io;
use std::sync::{Arc, Mutex};

use actix_rt::signal::unix::{signal, Signal, SignalKind};
use log::info;
use rafthttp_pipeline::membership::{InitialCluster, Member};
use rafthttp_pipeline::{Id, PipelineStats};
use serde_json::{json, Map, Value};

use crate::events::{memory, Events};
use crate::flags::Flags;
use crate::server::start_on;
use crate::sockets::{bind, listen, reserve};
use crate::stats::{lock, Counts};

/// Runs the stand-in with the arguments after the program name, until
/// SIGINT or SIGTERM.
fn run(args: Vec<String>) -> io::Result<()> {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let parsed = Flags::parse(args).and_then(|flags| flags.resolve().map(|r| (flags, r)));
    let (flags, (cluster, me, addrs)) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("etcd-peer: {message}");
            std::process::exit(2);
        }
    };
    println!("{}", identity(&cluster, &me));
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
    let counts = Arc::new(Mutex::new(Counts::default()));
    actix_rt::System::new().block_on(async move {
        // All before any lifecycle event, so that no signal sent once the
        // member says it is down or up kills it.
        let mut term = signal(SignalKind::terminate())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        print_counts_on_usr2(counts.clone())?;
        if !reserved.is_empty() {
            if !wait_until_up(&flags, &addrs, events, &mut usr1, &mut term).await {
                return Ok(());
            }
            listeners = reserved
                .into_iter()
                .map(listen)
                .collect::<io::Result<_>>()?;
        }
        let running = start_on(&flags, cluster, me, listeners, counts.clone())?;
        events.lifecycle(
            json!({"event": "up", "pid": std::process::id(), "addrs": addrs, "memory": memory()}),
        );
        tokio::select! {
            _ = actix_rt::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
        }
        for (peer, stats) in running.stop().await {
            report_stopped(events, peer, &stats);
        }
        println!("{}", lock(&counts).to_json());
        Ok(())
    })
}

/// Holds a member down until SIGUSR1 or the end of `--start-delay`:
/// `true` when it is to come up, `false` on SIGINT or SIGTERM.
async fn wait_until_up(
    flags: &Flags,
    addrs: &[String],
    events: Events,
    usr1: &mut Signal,
    term: &mut Signal,
) -> bool {
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
        _ = usr1.recv() => { info!("SIGUSR1: coming up"); true }
        _ = delay => { info!("start delay over: coming up"); true }
        _ = actix_rt::signal::ctrl_c() => false,
        _ = term.recv() => false,
    }
}

/// From now on, prints the counts at every SIGUSR2.
fn print_counts_on_usr2(counts: Arc<Mutex<Counts>>) -> io::Result<()> {
    let mut usr2 = signal(SignalKind::user_defined2())?;
    actix_rt::spawn(async move {
        while usr2.recv().await.is_some() {
            println!("{}", lock(&counts).to_json());
        }
    });
    Ok(())
}

/// Logs a stopped pipeline's final counters and prints them as a
/// `pipeline_stopped` event.
fn report_stopped(events: Events, peer: Id, stats: &PipelineStats) {
    info!(
        "pipeline to {peer}: offered {}, delivered {}, failed {}, dropped {}, cancelled {}",
        stats.offered, stats.delivered, stats.failed, stats.dropped, stats.cancelled
    );
    events.lifecycle(
        json!({"event": "pipeline_stopped", "peer": peer.to_string(),
        "offered": stats.offered, "delivered": stats.delivered, "failed": stats.failed,
        "dropped": stats.dropped, "cancelled": stats.cancelled}),
    );
}

/// The ids derived from the flags, as etcd derives them:
/// `{"member_id":"…","cluster_id":"…","members":{"<name>":"<id>",…}}`.
fn identity(cluster: &InitialCluster, me: &Member) -> Value {
    let members: Map<String, Value> = cluster
        .members
        .iter()
        .map(|m| (m.name.clone(), m.id.to_string().into()))
        .collect();
    json!({"member_id": me.id.to_string(), "cluster_id": cluster.cluster_id.to_string(),
           "members": members})
}

fn main() -> io::Result<()> {
    run(std::env::args().skip(1).collect())
}

//! Benchmarks the pipeline with the workloads of our Go harness for
//! etcd 3.4.23's own pipeline (`bench/etcd-go`, `cmd/pipebench`), with the
//! same definitions, the same flags and the same `RESULT {json}` field
//! names, so the two can be compared side by side (`bench/compare.sh`).
//!
//! The sender, node A with a [`PipelineActor`] to B (or one to each of
//! `--peers` peers), runs in this process. The receiver, node B with our
//! actix-web receiver and a counting raft actor, is this same binary
//! started as a child with `--role receiver`; each side's CPU time and
//! peak RSS are measured on its own.
//!
//! ```text
//! cargo run --release -p rafthttp-bench -- --workload w1 --mode retry --n 200000
//! cargo run --release -p rafthttp-bench -- --workload w1 --mode retry --entry-size 1048576 --n 5000
//! cargo run --release -p rafthttp-bench -- --workload w1 --mode retry --peers 16 --idle 5s
//! cargo run --release -p rafthttp-bench -- --workload w2 --snap-size 67108864 --snap-count 4 --serial
//! cargo run --release -p rafthttp-bench -- --workload w3 --n 1000 --warmup 200
//! cargo run --release -p rafthttp-bench -- --workload w1 --streams --window 4096 --n 2000000
//! cargo run --release -p rafthttp-bench -- --workload w3 --streams --n 1000 --warmup 200
//! cargo run --release -p rafthttp-bench -- --floor --n 200000
//! cargo run --release -p rafthttp-bench -- plot results.jsonl > sweep.svg
//! ```
//!
//! Each run checks itself (delivered plus dropped is what was sent, B
//! processed what A's pipelines delivered, no POST failed, every message is
//! accounted for after `Stop`) and exits non-zero when a check fails.

mod allocator;
mod args;
mod child;
mod ending;
mod floor;
mod idle;
mod messages;
mod node;
mod plot;
mod probe;
mod receiver;
mod report;
mod streams;
mod w1;
mod w2;
mod w3;

use actix::Addr;
use rafthttp_pipeline::{GetStats, PipelineActor, Stop};

use crate::args::{Args, Role, Workload};
use crate::child::ReceiverChild;
use crate::ending::Ending;
use crate::node::NodeA;
use crate::report::Outcome;

/// Everything a workload drives: the flags, B, A, and A's pipelines to B.
pub struct Bench {
    args: Args,
    child: ReceiverChild,
    node: NodeA,
    /// One per peer; W2 and W3 have one.
    pipelines: Vec<Addr<PipelineActor>>,
    /// A's `VmRSS` before its pipelines were started.
    rss_base_kb: i64,
}

impl Bench {
    /// The pipeline that carries every message of W2 and W3.
    fn pipeline(&self) -> &Addr<PipelineActor> {
        &self.pipelines[0]
    }

    /// Stops the pipelines, each right after a look at its stats, and
    /// checks that every message is accounted for and that B processed
    /// what A delivered (see [`Ending`]).
    async fn check_pipeline(&mut self, out: &mut Outcome) -> Result<(), String> {
        let mut end = Ending::default();
        for pipeline in &self.pipelines {
            let gone = |e| format!("a pipeline is gone: {e}");
            let before = pipeline.send(GetStats).await.map_err(gone)?;
            let after = pipeline.send(Stop).await.map_err(gone)?;
            end.add(&before, after);
        }
        let rx = self.child.stats().await?;
        end.check(out, rx.processed);
        Ok(())
    }
}

fn main() {
    allocator::tune();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("plot") {
        return plot::main(&raw[1..]);
    }
    let args = Args::parse(raw.into_iter()).unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2)
    });
    let passed = match args.role {
        Role::Receiver => receiver::run(&args).map(|()| true),
        Role::Sender => actix::System::new().block_on(drive(args)),
    };
    match passed {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs the sender's side and prints the `RESULT` line; `Ok(false)` when
/// a self-check failed.
async fn drive(args: Args) -> Result<bool, String> {
    let outcome = match (args.floor, args.streams) {
        (true, _) => floor::run(&args).await?,
        (false, true) => streams::run(&args).await?,
        (false, false) => with_actors(args).await?,
    };
    Ok(outcome.print())
}

async fn with_actors(args: Args) -> Result<Outcome, String> {
    let on_worker = args.workload == Workload::W3;
    let node = NodeA::start(on_worker)
        .await
        .map_err(|e| format!("starting node A: {e}"))?;
    let mut flags = args.receiver_flags();
    if args.workload == Workload::W3 {
        flags.extend(["--echo-to".to_owned(), node.url.clone()]);
    }
    let child = ReceiverChild::start(&flags)?;
    if !on_worker {
        return run_node(args, node, child).await;
    }
    let worker = node.worker.clone();
    let (done_tx, done) = futures::channel::oneshot::channel();
    let run = move || {
        actix_web::rt::spawn(async move {
            let _ = done_tx.send(run_node(args, node, child).await);
        });
    };
    if !worker.spawn_fn(run) {
        return Err("A's HTTP worker is gone".to_owned());
    }
    done.await
        .map_err(|_| "the run on A's HTTP worker ended early".to_owned())?
}

/// Runs the workload where A's raft actor is (see `node.rs`): starts A's
/// pipelines to B there, drives them and checks them.
async fn run_node(args: Args, node: NodeA, child: ReceiverChild) -> Result<Outcome, String> {
    let rss_base_kb = probe::status_kb("VmRSS");
    let pipelines = node
        .pipelines_to(child.port, args.peers, args.placement, args.metrics)
        .map_err(|e| e.to_string())?;
    let mut bench = Bench {
        args,
        child,
        node,
        pipelines,
        rss_base_kb,
    };
    let mut out = match bench.args.workload {
        Workload::W1 => w1::run(&mut bench).await?,
        Workload::W2 => w2::run(&mut bench).await?,
        Workload::W3 => w3::run(&mut bench).await?,
    };
    bench.check_pipeline(&mut out).await?;
    Ok(out)
}

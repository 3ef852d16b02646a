//! Node A, the sender: a stand-in raft actor that passes the pipeline's
//! callbacks and W3's echoes on to the driver, A's own receiver (so that
//! A sends `X-PeerURLs` and B can answer, as in the Go harness), and the
//! pipeline to B.
//!
//! Under W3, A's raft actor runs on the thread of A's single HTTP worker,
//! and so do the driver and the pipeline (see `main.rs`), as B's run on
//! B's: an echo that reaches A's receiver is processed and seen by the
//! driver without waking another thread. This is a deployment choice a
//! raft node on one thread makes; the library works with its actors on any
//! arbiter. W1 and W2 keep them on the main thread, where W1 measured
//! faster.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use actix_web::{App, HttpServer};
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use rafthttp_pipeline::metrics::prometheus::Registry;
use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::{
    Error, Inbound, PipelineActor, PipelineConfig, ProcessError, Recipients, ReportSnapshot,
    ReportUnreachable, SnapshotStatus,
};
use rafthttp_pipeline::{LocalMember, Metrics};

use crate::args::Placement;
use crate::messages::{peer, A, CLUSTER};
use crate::probe::unix_ns;

/// What A's raft actor tells the driver.
#[derive(Debug)]
pub enum Event {
    /// A MsgSnap was delivered (`ReportSnapshot` with `Finish`), at this time.
    SnapshotFinished(Instant),
    /// A MsgSnap was not delivered.
    SnapshotFailed,
    /// B's MsgAppResp arrived.
    Echo(Echo),
}

/// W3: one MsgAppResp as A processed it.
#[derive(Debug)]
pub struct Echo {
    /// The index it acknowledges.
    pub index: u64,
    /// When A processed it.
    pub at: Instant,
    pub at_ns: i64,
    /// When B processed the MsgApp (carried in `commit`).
    pub b_processed_ns: i64,
    /// Whether it came by a stream (no `X-PeerURLs`) rather than by POST.
    pub by_stream: bool,
}

/// A's raft stand-in: passes echoes and snapshot reports to the driver and
/// counts the messages reported unreachable.
pub struct RaftA {
    events: UnboundedSender<Event>,
    unreachable: Arc<AtomicU64>,
}

impl RaftA {
    /// A raft stand-in whose reports go to `events` and whose
    /// unreachable count is `unreachable`.
    pub fn new(events: UnboundedSender<Event>, unreachable: Arc<AtomicU64>) -> Self {
        RaftA {
            events,
            unreachable,
        }
    }
}

impl Actor for RaftA {
    type Context = Context<Self>;
}

impl Handler<Inbound> for RaftA {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let (at, at_ns) = (Instant::now(), unix_ns());
        let by_stream = inbound.peer_urls.is_empty();
        let m = inbound.message;
        if m.r#type == MessageType::MsgAppResp as i32 {
            let echo = Echo {
                index: m.index,
                at,
                at_ns,
                b_processed_ns: m.commit as i64,
                by_stream,
            };
            let _ = self.events.unbounded_send(Event::Echo(echo));
        }
        Ok(())
    }
}

impl Handler<ReportUnreachable> for RaftA {
    type Result = ();
    // The pipeline's drops answer the driver directly and its failures
    // show in its stats; the streams' show only here, counted.
    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {
        self.unreachable.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<ReportSnapshot> for RaftA {
    type Result = ();
    fn handle(&mut self, r: ReportSnapshot, _: &mut Context<Self>) {
        let event = match r.status {
            SnapshotStatus::Finish => Event::SnapshotFinished(Instant::now()),
            SnapshotStatus::Failure => Event::SnapshotFailed,
        };
        let _ = self.events.unbounded_send(event);
    }
}

/// Node A: its raft stand-in, its receiver's URL and HTTP worker, and the
/// driver's end of the events.
pub struct NodeA {
    raft: Addr<RaftA>,
    pub url: String,
    /// The arbiter of A's HTTP worker, where A's raft actor runs.
    pub worker: ArbiterHandle,
    events: UnboundedReceiver<Event>,
}

impl NodeA {
    /// Starts A's receiver on one HTTP worker, with A's raft actor on that
    /// worker's thread (`on_worker`) or on this one.
    pub async fn start(on_worker: bool) -> std::io::Result<Self> {
        let (tx, events) = unbounded();
        let unreachable = Arc::new(AtomicU64::new(0));
        let raft = move || RaftA::new(tx.clone(), unreachable.clone()).start();
        let here = (!on_worker).then(&raft);
        let (started_tx, mut started) = unbounded();
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = HttpServer::new(move || {
            let raft = here.clone().unwrap_or_else(&raft);
            let _ = started_tx.unbounded_send((Arbiter::current(), raft.clone()));
            let config = ReceiverConfig::new(&LocalMember::new(A, CLUSTER), raft.recipient());
            App::new().configure(receiver::configure(config))
        })
        .workers(1)
        .on_connect(rafthttp_pipeline::nodelay::on_connect)
        .disable_signals()
        .listen(listener)?
        .run();
        actix_web::rt::spawn(server);
        let (worker, raft) = started
            .next()
            .await
            .ok_or_else(|| std::io::Error::other("A's HTTP worker did not start"))?;
        Ok(NodeA {
            raft,
            url,
            worker,
            events,
        })
    }

    /// A's pipelines, one to each of `peers` peers, all served by B on
    /// `port`, with the library's defaults unless `--placement` says
    /// where their senders run; with `--metrics`, counting etcd's metrics
    /// in one registry.
    pub fn pipelines_to(
        &self,
        port: u16,
        peers: usize,
        placement: Option<Placement>,
        metrics: bool,
    ) -> Result<Vec<Addr<PipelineActor>>, Error> {
        let url = format!("http://127.0.0.1:{port}");
        let local = LocalMember::new(A, CLUSTER).peer_urls(vec![self.url.clone()]);
        let metrics = metrics.then(counting);
        let pipeline = |p| {
            let config = PipelineConfig::new(&local, peer(p), vec![url.clone()]);
            let config = match &metrics {
                Some(m) => config.metrics(m.clone()),
                None => config,
            };
            let config = Placement::apply(placement, config);
            PipelineActor::start(config, Recipients::from_addr(&self.raft))
        };
        (0..peers).map(pipeline).collect()
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: std::time::Duration) -> Option<Event> {
        next_event(&mut self.events, timeout).await
    }
}

/// The next of `events`, or `None` after `timeout`.
pub async fn next_event(
    events: &mut UnboundedReceiver<Event>,
    timeout: std::time::Duration,
) -> Option<Event> {
    actix_web::rt::time::timeout(timeout, events.next())
        .await
        .ok()
        .flatten()
}

/// etcd's metrics in a fresh registry (`--metrics`).
pub fn counting() -> Metrics {
    Metrics::register(&Registry::new()).expect("a fresh registry takes etcd's families")
}

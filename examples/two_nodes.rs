//! The main job: two members on loopback, each with a receiver and a
//! pipeline to the other.
//!
//! It sends a burst of MsgApp and heartbeats and one MsgSnap of several MiB,
//! stops one member's server to show the peer going inactive and the
//! unreachable reports, restarts it to show the peer active again, and
//! stops cleanly with a summary and a few of etcd's metrics, which both
//! members count in one Prometheus registry (the labels tell them apart).
//! Run it with `cargo run --example two_nodes`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use rafthttp_pipeline::metrics::prometheus::{Encoder, Registry, TextEncoder};
use rafthttp_pipeline::raftpb::{Entry, Message, MessageType, Snapshot};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::*;

const CLUSTER: Id = Id(0x1000);
const APPENDS: u64 = 2_000;
const HEARTBEATS: u64 = 200;
const SNAPSHOT_BYTES: usize = 6 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(10);

/// Stands in for a raft node: counts what it receives and the callbacks
/// its pipeline sends.
#[derive(Default)]
struct Node {
    name: &'static str,
    received: BTreeMap<String, u64>,
    snapshot_bytes: usize,
    unreachable: u64,
    snapshots: Vec<SnapshotStatus>,
    status_changes: Vec<bool>,
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Node {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let m = inbound.message;
        let kind = format!("{:?}", m.msg_type().unwrap_or(MessageType::MsgHup));
        *self.received.entry(kind).or_default() += 1;
        if let Some(data) = &m.snapshot.data {
            self.snapshot_bytes += data.len();
        }
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Node {
    type Result = ();
    fn handle(&mut self, r: ReportUnreachable, _: &mut Context<Self>) {
        if self.unreachable == 0 {
            println!(
                "  [{}] first unreachable report: peer {} ({})",
                self.name, r.to, r.reason
            );
        }
        self.unreachable += 1;
    }
}

impl Handler<ReportSnapshot> for Node {
    type Result = ();
    fn handle(&mut self, r: ReportSnapshot, _: &mut Context<Self>) {
        println!("  [{}] snapshot to {}: {:?}", self.name, r.to, r.status);
        self.snapshots.push(r.status);
    }
}

impl Handler<PeerStatusChanged> for Node {
    type Result = ();
    fn handle(&mut self, s: PeerStatusChanged, _: &mut Context<Self>) {
        let state = if s.active { "active" } else { "inactive" };
        let why = s.reason.map(|r| format!(": {r}")).unwrap_or_default();
        println!("  [{}] peer {} became {state}{why}", self.name, s.peer);
        self.status_changes.push(s.active);
    }
}

/// A copy of a node's counters.
#[derive(Message)]
#[rtype(result = "NodeReport")]
struct Report;

#[derive(Debug, Clone)]
struct NodeReport {
    received: BTreeMap<String, u64>,
    snapshot_bytes: usize,
    unreachable: u64,
    snapshots: Vec<SnapshotStatus>,
    status_changes: Vec<bool>,
}

impl NodeReport {
    fn total(&self) -> u64 {
        self.received.values().sum()
    }
}

impl Handler<Report> for Node {
    type Result = MessageResult<Report>;
    fn handle(&mut self, _: Report, _: &mut Context<Self>) -> Self::Result {
        MessageResult(NodeReport {
            received: self.received.clone(),
            snapshot_bytes: self.snapshot_bytes,
            unreachable: self.unreachable,
            snapshots: self.snapshots.clone(),
            status_changes: self.status_changes.clone(),
        })
    }
}

/// One member: its raft stand-in and its HTTP server.
struct Member {
    id: Id,
    metrics: Metrics,
    node: Addr<Node>,
    port: u16,
    server: ServerHandle,
}

fn serve(
    id: Id,
    node: &Addr<Node>,
    port: u16,
    metrics: &Metrics,
) -> std::io::Result<(u16, ServerHandle)> {
    let config = ReceiverConfig::new(&LocalMember::new(id, CLUSTER), node.clone().recipient())
        .metrics(metrics.clone());
    let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
        .workers(1)
        .disable_signals()
        .on_connect(nodelay::on_connect)
        .bind(("127.0.0.1", port))?;
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((port, handle))
}

fn start_member(name: &'static str, id: Id, metrics: &Metrics) -> std::io::Result<Member> {
    let node = Node {
        name,
        ..Default::default()
    }
    .start();
    let (port, server) = serve(id, &node, 0, metrics)?;
    Ok(Member {
        id,
        metrics: metrics.clone(),
        node,
        port,
        server,
    })
}

fn pipeline(from: &Member, to: &Member) -> Result<Addr<PipelineActor>, Error> {
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let local = LocalMember::new(from.id, CLUSTER).peer_urls(vec![url(from.port)]);
    let config =
        PipelineConfig::new(&local, to.id, vec![url(to.port)]).metrics(from.metrics.clone());
    let recipients = Recipients::from_addr(&from.node).peer_status(from.node.clone().recipient());
    PipelineActor::start(config, recipients)
}

fn append(from: Id, to: Id, index: u64) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        to: to.0,
        from: from.0,
        term: 2,
        log_term: 2,
        index,
        commit: index,
        entries: vec![Entry {
            term: 2,
            index: index + 1,
            data: Some(Bytes::from_static(&[7u8; 256])),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn simple(kind: MessageType, from: Id, to: Id) -> Message {
    Message {
        r#type: kind as i32,
        to: to.0,
        from: from.0,
        term: 2,
        ..Default::default()
    }
}

fn snapshot(from: Id, to: Id) -> Message {
    let mut m = simple(MessageType::MsgSnap, from, to);
    m.snapshot = Snapshot {
        data: Some(Bytes::from(vec![0x5a; SNAPSHOT_BYTES])),
        ..Default::default()
    };
    m.snapshot.metadata.index = APPENDS;
    m.snapshot.metadata.term = 2;
    m.snapshot.metadata.conf_state.voters = vec![from.0, to.0];
    m
}

/// Sends `msgs` as a raft node that respects backpressure does: a batch
/// that fits the queue, then waits until the pipeline has settled it.
async fn send_batched(p: &Addr<PipelineActor>, msgs: Vec<Message>) -> Result<(), String> {
    for batch in msgs.chunks(rafthttp_pipeline::PIPELINE_BUF_SIZE) {
        for msg in batch {
            if let Err(dropped) = p
                .send(Envelope(msg.clone()))
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(dropped.to_string());
            }
        }
        settled(p).await?;
    }
    Ok(())
}

/// Waits until nothing is queued or in flight.
async fn settled(p: &Addr<PipelineActor>) -> Result<PipelineStats, String> {
    wait_for("the pipeline to settle", async || {
        let s = stats(p).await.ok()?;
        (s.queued == 0 && s.in_flight == 0).then_some(s)
    })
    .await
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn report(node: &Addr<Node>) -> Result<NodeReport, String> {
    node.send(Report).await.map_err(|e| e.to_string())
}

async fn stats(p: &Addr<PipelineActor>) -> Result<PipelineStats, String> {
    p.send(GetStats).await.map_err(|e| e.to_string())
}

async fn burst(
    a: &Member,
    b: &Member,
    a_to_b: &Addr<PipelineActor>,
    b_to_a: &Addr<PipelineActor>,
) -> Result<(), String> {
    println!(
        "1. burst: {APPENDS} MsgApp and {HEARTBEATS} heartbeats from a to b, one {} MiB MsgSnap",
        SNAPSHOT_BYTES >> 20
    );
    let started = Instant::now();
    let mut to_b = vec![snapshot(a.id, b.id)];
    let mut to_a = Vec::new();
    for i in 0..APPENDS {
        to_b.push(append(a.id, b.id, i));
        if i % (APPENDS / HEARTBEATS) == 0 {
            to_b.push(simple(MessageType::MsgHeartbeat, a.id, b.id));
            to_a.push(simple(MessageType::MsgHeartbeatResp, b.id, a.id));
        }
    }
    let want = to_b.len() as u64;
    let (sent_b, sent_a) =
        futures::future::join(send_batched(a_to_b, to_b), send_batched(b_to_a, to_a)).await;
    sent_b.and(sent_a)?;
    let got = stats(a_to_b).await?;
    let elapsed = started.elapsed();
    let received = report(&b.node).await?;
    println!(
        "   delivered {} of {want} in {elapsed:.2?}; b received {:?} (+{} snapshot bytes)",
        got.delivered, received.received, received.snapshot_bytes
    );
    println!(
        "   a's MsgApp latency (followerStats): avg {:.3} ms, min {:.3} ms, max {:.3} ms",
        got.follower.average_ms, got.follower.minimum_ms, got.follower.maximum_ms
    );
    if received.total() != got.delivered || got.delivered != want {
        return Err(format!(
            "b received {} but a delivered {}",
            received.total(),
            got.delivered
        ));
    }
    Ok(())
}

async fn outage(a: &Member, b: &mut Member, a_to_b: &Addr<PipelineActor>) -> Result<(), String> {
    println!("2. b's server stops");
    b.server.stop(true).await;
    let heartbeats = vec![simple(MessageType::MsgHeartbeat, a.id, b.id); 5];
    send_batched(a_to_b, heartbeats).await?;
    let down = wait_for("unreachable reports", async || {
        let r = report(&a.node).await.ok()?;
        (r.unreachable >= 5 && r.status_changes.last() == Some(&false)).then_some(r)
    })
    .await?;
    println!(
        "   a reported b unreachable {} times; b is inactive",
        down.unreachable
    );

    println!("3. b's server restarts on the same port");
    let (_, server) = serve(b.id, &b.node, b.port, &b.metrics).map_err(|e| e.to_string())?;
    b.server = server;
    send_batched(a_to_b, vec![simple(MessageType::MsgHeartbeat, a.id, b.id)]).await?;
    wait_for("b to be active again", async || {
        let r = report(&a.node).await.ok()?;
        (r.status_changes.last() == Some(&true)).then_some(())
    })
    .await?;
    println!("   a delivered to b again; b is active");
    Ok(())
}

async fn run() -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).map_err(|e| e.to_string())?;
    let a = start_member("a", Id(1), &metrics).map_err(io)?;
    let mut b = start_member("b", Id(2), &metrics).map_err(io)?;
    println!(
        "members: a = {} on 127.0.0.1:{}, b = {} on 127.0.0.1:{}, cluster {CLUSTER}",
        a.id, a.port, b.id, b.port
    );
    let a_to_b = pipeline(&a, &b).map_err(|e| e.to_string())?;
    let b_to_a = pipeline(&b, &a).map_err(|e| e.to_string())?;

    burst(&a, &b, &a_to_b, &b_to_a).await?;
    outage(&a, &mut b, &a_to_b).await?;

    println!("4. stop");
    let a_stats = a_to_b.send(Stop).await.map_err(|e| e.to_string())?;
    let b_stats = b_to_a.send(Stop).await.map_err(|e| e.to_string())?;
    a.server.stop(true).await;
    b.server.stop(true).await;
    let (ra, rb) = (report(&a.node).await?, report(&b.node).await?);
    summary(&a_stats, &b_stats, &ra, &rb)?;
    print_metrics(&registry)
}

/// A few of the samples `GET /metrics` would serve.
fn print_metrics(registry: &Registry) -> Result<(), String> {
    const SHOWN: [&str; 5] = [
        "etcd_network_active_peers",
        "etcd_network_disconnected_peers_total",
        "etcd_network_peer_sent_bytes_total",
        "etcd_network_peer_sent_failures_total",
        "etcd_network_peer_received_bytes_total",
    ];
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .map_err(|e| e.to_string())?;
    println!();
    println!("metrics (etcd's names; ids in hex)");
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| SHOWN.iter().any(|name| l.starts_with(&format!("{name}{{"))))
        .for_each(|l| println!("  {l}"));
    Ok(())
}

fn summary(
    a: &PipelineStats,
    b: &PipelineStats,
    ra: &NodeReport,
    rb: &NodeReport,
) -> Result<(), String> {
    println!();
    println!("summary");
    for (name, s) in [("a -> b", a), ("b -> a", b)] {
        println!(
            "  {name}: offered {}, delivered {}, failed {}, dropped {}, cancelled {}, {} bytes sent",
            s.offered, s.delivered, s.failed, s.dropped, s.cancelled, s.sent_bytes
        );
    }
    println!("  b received {} messages: {:?}", rb.total(), rb.received);
    println!("  a received {} messages: {:?}", ra.total(), ra.received);
    println!(
        "  a's callbacks: {} unreachable, snapshots {:?}, peer status {:?}",
        ra.unreachable, ra.snapshots, ra.status_changes
    );
    let balanced = [a, b]
        .iter()
        .all(|s| s.offered == s.delivered + s.reported());
    let counted = rb.total() == a.delivered && ra.total() == b.delivered;
    let reported = ra.unreachable == a.reported();
    if balanced && counted && reported && ra.snapshots == [SnapshotStatus::Finish] {
        println!("  ok: every message delivered or reported, and both sides agree");
        Ok(())
    } else {
        Err("the accounting does not balance".into())
    }
}

#[actix::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(err) = run().await {
        eprintln!("two_nodes failed: {err}");
        std::process::exit(1);
    }
}

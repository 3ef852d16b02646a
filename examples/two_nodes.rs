//! The main job: two members on loopback, each started whole (receiver
//! server and [`Transport`]) with a [`MemberBuilder`], each with the other
//! as its peer.
//!
//! It sends a burst of MsgApp and heartbeats and one MsgSnap of several MiB,
//! stops one member's server to show the peer going inactive and the
//! unreachable reports, restarts it to show the peer active again, and
//! stops cleanly with a summary. Run it with `cargo run --example two_nodes`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use actix::prelude::*;
use bytes::Bytes;
use rafthttp_pipeline::raftpb::{Entry, Message, MessageType, Snapshot};
use rafthttp_pipeline::transport::{AddPeer, GetPeerStats, RaftRecipients, SendMessages};
use rafthttp_pipeline::*;

const CLUSTER: Id = Id(0x1000);
const APPENDS: u64 = 2_000;
const HEARTBEATS: u64 = 200;
const SNAPSHOT_BYTES: usize = 6 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(10);

/// Stands in for a raft node: counts what it receives and the callbacks
/// its transport sends.
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

/// Starts member `id` on `addr` (port 0: any) around `node`, with nothing
/// else to wire: the builder hands the transport its raft actor and
/// serves the receiver for it.
fn start_member(id: Id, addr: SocketAddr, node: &Addr<Node>) -> std::io::Result<Member<Node>> {
    let node = node.clone();
    MemberBuilder::new(LocalMember::new(id, CLUSTER))
        .bind(addr)
        .workers(1)
        .start(move |_transport| RaftRecipients::new(node).with_peer_status())
}

/// Makes `to` a peer of `from`.
async fn add_peer(from: &Member<Node>, to: &Member<Node>) -> Result<(), String> {
    let add = AddPeer {
        id: to.local().id,
        urls: to.urls().to_vec(),
    };
    let added = from
        .transport()
        .send(add)
        .await
        .map_err(|e| e.to_string())?;
    added.map_err(|e| e.to_string())
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
/// that fits the queue, then waits until the transport has settled it.
async fn send_batched(from: &Member<Node>, to: Id, msgs: Vec<Message>) -> Result<(), String> {
    for batch in msgs.chunks(PIPELINE_BUF_SIZE) {
        let sent = from.transport().send(SendMessages(batch.to_vec())).await;
        sent.map_err(|e| e.to_string())?;
        settled(from, to).await?;
    }
    Ok(())
}

/// Waits until nothing to `to` is queued or in flight.
async fn settled(from: &Member<Node>, to: Id) -> Result<PipelineStats, String> {
    wait_for("the pipeline to settle", async || {
        let s = stats(from, to).await.ok()?;
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

/// The counters of `from`'s pipeline to `to`.
async fn stats(from: &Member<Node>, to: Id) -> Result<PipelineStats, String> {
    let all = from.transport().send(GetPeerStats).await;
    let all = all.map_err(|e| e.to_string())?;
    all.get(&to).cloned().ok_or(format!("no pipeline to {to}"))
}

async fn burst(a: &Member<Node>, b: &Member<Node>) -> Result<(), String> {
    println!(
        "1. burst: {APPENDS} MsgApp and {HEARTBEATS} heartbeats from a to b, one {} MiB MsgSnap",
        SNAPSHOT_BYTES >> 20
    );
    let (ida, idb) = (a.local().id, b.local().id);
    let started = Instant::now();
    let mut to_b = vec![snapshot(ida, idb)];
    let mut to_a = Vec::new();
    for i in 0..APPENDS {
        to_b.push(append(ida, idb, i));
        if i % (APPENDS / HEARTBEATS) == 0 {
            to_b.push(simple(MessageType::MsgHeartbeat, ida, idb));
            to_a.push(simple(MessageType::MsgHeartbeatResp, idb, ida));
        }
    }
    let want = to_b.len() as u64;
    let (sent_b, sent_a) =
        futures::future::join(send_batched(a, idb, to_b), send_batched(b, ida, to_a)).await;
    sent_b.and(sent_a)?;
    let got = stats(a, idb).await?;
    let elapsed = started.elapsed();
    let received = report(b.raft()).await?;
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

/// Stops member b whole and starts it again on the same port, around the
/// same raft node. Returns the new b and the counters of b's first
/// transport.
async fn outage(
    a: &Member<Node>,
    b: Member<Node>,
) -> Result<(Member<Node>, PipelineStats), String> {
    let (ida, idb) = (a.local().id, b.local().id);
    println!("2. b stops");
    let (addr, node) = (b.local_addrs()[0], b.raft().clone());
    let mut b_first = b.stop().await;
    let b_first = b_first.remove(&ida).ok_or("b had no pipeline to a")?;
    let heartbeats = vec![simple(MessageType::MsgHeartbeat, ida, idb); 5];
    send_batched(a, idb, heartbeats).await?;
    let down = wait_for("unreachable reports", async || {
        let r = report(a.raft()).await.ok()?;
        (r.unreachable >= 5 && r.status_changes.last() == Some(&false)).then_some(r)
    })
    .await?;
    println!(
        "   a reported b unreachable {} times; b is inactive",
        down.unreachable
    );

    println!("3. b starts again on the same port");
    let b = start_member(idb, addr, &node).map_err(|e| e.to_string())?;
    add_peer(&b, a).await?;
    send_batched(a, idb, vec![simple(MessageType::MsgHeartbeat, ida, idb)]).await?;
    wait_for("b to be active again", async || {
        let r = report(a.raft()).await.ok()?;
        (r.status_changes.last() == Some(&true)).then_some(())
    })
    .await?;
    println!("   a delivered to b again; b is active");
    Ok((b, b_first))
}

async fn run() -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let node = |name| {
        Node {
            name,
            ..Default::default()
        }
        .start()
    };
    let a = start_member(Id(1), any_port, &node("a")).map_err(io)?;
    let b = start_member(Id(2), any_port, &node("b")).map_err(io)?;
    println!(
        "members: a = {} at {:?}, b = {} at {:?}, cluster {CLUSTER}",
        a.local().id,
        a.urls(),
        b.local().id,
        b.urls()
    );
    add_peer(&a, &b).await?;
    add_peer(&b, &a).await?;

    burst(&a, &b).await?;
    let (b, b_first) = outage(&a, b).await?;

    println!("4. stop");
    let (ida, idb) = (a.local().id, b.local().id);
    let (na, nb) = (a.raft().clone(), b.raft().clone());
    let mut a_stats = a.stop().await;
    let mut b_stats = b.stop().await;
    let a_stats = a_stats.remove(&idb).ok_or("a had no pipeline to b")?;
    let b_second = b_stats.remove(&ida).ok_or("b had no pipeline to a")?;
    let b_stats = combined(&b_first, &b_second);
    let (ra, rb) = (report(&na).await?, report(&nb).await?);
    summary(&a_stats, &b_stats, &ra, &rb)
}

/// The counters of two pipelines that carried one direction in turn (b's
/// before and after its restart), added up.
fn combined(first: &PipelineStats, second: &PipelineStats) -> PipelineStats {
    PipelineStats {
        offered: first.offered + second.offered,
        delivered: first.delivered + second.delivered,
        failed: first.failed + second.failed,
        dropped: first.dropped + second.dropped,
        cancelled: first.cancelled + second.cancelled,
        sent_bytes: first.sent_bytes + second.sent_bytes,
        ..PipelineStats::default()
    }
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

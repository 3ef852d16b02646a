//! The transport between real members over loopback HTTP: peers added,
//! removed and updated mid-traffic with every message accounted for per
//! peer, unknown peers reported, stop resolving with every peer's
//! counters, `ActiveSince`, and the member's server lifecycle.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::transport::*;
use rafthttp_pipeline::*;
use tokio::sync::watch;

const CLUSTER: Id = Id(0xc1);
/// How long any wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// What a member's raft stand-in has seen.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Messages received, by sender.
    received: HashMap<Id, u64>,
    /// Every `ReportUnreachable`.
    unreachable: Vec<ReportUnreachable>,
    /// Every `ReportSnapshot`.
    snapshots: Vec<ReportSnapshot>,
    /// Every peer status transition.
    status: Vec<PeerStatusChanged>,
    /// Where streamed snapshots were stored.
    snapshot_files: Vec<std::path::PathBuf>,
}

impl Seen {
    fn unreachable_to(&self, peer: Id) -> u64 {
        self.unreachable.iter().filter(|r| r.to == peer).count() as u64
    }

    /// Reports for `peer` that the transport made itself (unknown peer).
    fn not_found_to(&self, peer: Id) -> u64 {
        let not_found = |r: &&ReportUnreachable| r.reason.to_string() == "member not found";
        let reports = self.unreachable.iter().filter(|r| r.to == peer);
        reports.filter(not_found).count() as u64
    }
}

/// Stands in for a raft node: takes every message and records callbacks.
struct Node {
    seen: watch::Sender<Seen>,
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Node {
    type Result = Result<(), ProcessError>;
    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let from = Id(inbound.message.from);
        let file = inbound.snapshot.map(|stored| stored.path);
        self.seen.send_modify(|s| {
            *s.received.entry(from).or_default() += 1;
            s.snapshot_files.extend(file);
        });
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Node {
    type Result = ();
    fn handle(&mut self, report: ReportUnreachable, _: &mut Context<Self>) {
        self.seen.send_modify(|s| s.unreachable.push(report));
    }
}

impl Handler<ReportSnapshot> for Node {
    type Result = ();
    fn handle(&mut self, report: ReportSnapshot, _: &mut Context<Self>) {
        self.seen.send_modify(|s| s.snapshots.push(report));
    }
}

impl Handler<PeerStatusChanged> for Node {
    type Result = ();
    fn handle(&mut self, change: PeerStatusChanged, _: &mut Context<Self>) {
        self.seen.send_modify(|s| s.status.push(change));
    }
}

/// A started member and what its raft stand-in saw.
struct Running {
    member: Member<Node>,
    seen: watch::Receiver<Seen>,
}

impl Running {
    fn start(id: u64) -> Running {
        Running::start_with(MemberBuilder::new(LocalMember::new(Id(id), CLUSTER)))
    }

    fn start_with(builder: MemberBuilder) -> Running {
        let (tx, seen) = watch::channel(Seen::default());
        let member = builder
            .workers(1)
            .start(|_transport| RaftRecipients::new(Node { seen: tx }.start()).with_peer_status())
            .expect("bind a loopback port");
        Running { member, seen }
    }

    fn url(&self) -> String {
        self.member.urls()[0].clone()
    }

    fn transport(&self) -> &Addr<Transport> {
        self.member.transport()
    }

    async fn wait(&self, what: &str, done: impl Fn(&Seen) -> bool) -> Seen {
        let mut rx = self.seen.clone();
        let waited = tokio::time::timeout(WAIT, rx.wait_for(|s| done(s))).await;
        let seen = waited.ok().and_then(Result::ok).map(|seen| seen.clone());
        seen.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; seen: {:?}",
                *self.seen.borrow()
            )
        })
    }

    async fn add(&self, peer: &Running) {
        let add = AddPeer {
            id: peer.member.local().id,
            urls: vec![peer.url()],
        };
        self.transport()
            .send(add)
            .await
            .unwrap()
            .expect("valid peer");
    }
}

fn message(kind: MessageType, from: u64, to: u64, index: u64) -> Message {
    Message {
        r#type: kind as i32,
        from,
        to,
        term: 1,
        index,
        ..Default::default()
    }
}

/// Whether a stopped pipeline's counters balance.
fn balanced(stats: &PipelineStats) -> bool {
    stats.offered == stats.delivered + stats.reported()
}

/// Waits until no pipeline of `transport` has a message queued or in
/// flight.
async fn wait_idle(transport: &Addr<Transport>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = transport.send(GetPeerStats).await.unwrap();
        if stats.values().all(|s| s.queued == 0 && s.in_flight == 0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipelines never drained: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A loopback URL where nothing listens.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[actix_rt::test]
async fn peers_added_removed_and_updated_mid_traffic_account_for_every_message() {
    let a = Running::start(1);
    let b = Running::start(2);
    let c = Running::start(3);
    let (b_id, c_id, unknown) = (Id(2), Id(3), Id(9));
    // B starts at a dead URL and is moved to its real one mid-traffic.
    let dead = AddPeer {
        id: b_id,
        urls: vec![dead_url()],
    };
    a.transport().send(dead).await.unwrap().unwrap();
    a.add(&c).await;

    let mut offered: HashMap<Id, u64> = HashMap::new();
    let mut delivered: HashMap<Id, u64> = HashMap::new();
    let mut index = 0;
    for round in 0..20 {
        let mut batch = Vec::new();
        for (to, n) in [(b_id, 20), (c_id, 20), (unknown, 3)] {
            for _ in 0..n {
                index += 1;
                batch.push(message(MessageType::MsgApp, 1, to.0, index));
            }
            *offered.entry(to).or_default() += n;
        }
        a.transport().send(SendMessages(batch)).await.unwrap();
        match round {
            // Removed with its messages still queued: its stop reports them.
            6 => {
                let stats = a.transport().send(RemovePeer(c_id)).await.unwrap();
                let stats = stats.expect("C was a peer");
                assert!(balanced(&stats), "C's first pipeline: {stats:?}");
                assert!(stats.cancelled > 0, "removed mid-traffic: {stats:?}");
                *delivered.entry(c_id).or_default() += stats.delivered;
            }
            8 => {
                let update = UpdatePeer {
                    id: b_id,
                    urls: vec![b.url()],
                };
                a.transport()
                    .send(update)
                    .await
                    .unwrap()
                    .expect("B is a peer");
            }
            12 => a.add(&c).await,
            _ => wait_idle(a.transport()).await,
        }
    }

    let last = a.transport().send(StopTransport).await.unwrap();
    let mut keys: Vec<Id> = last.keys().copied().collect();
    keys.sort();
    assert_eq!(keys, [b_id, c_id], "every peer's final counters");
    for (id, stats) in &last {
        assert!(balanced(stats), "{id}: {stats:?}");
        *delivered.entry(*id).or_default() += stats.delivered;
    }

    // Every message ends once: delivered, or reported to A's raft.
    let settled = |s: &Seen| {
        [b_id, c_id, unknown]
            .iter()
            .all(|&p| delivered.get(&p).copied().unwrap_or(0) + s.unreachable_to(p) == offered[&p])
    };
    let seen = a.wait("every message delivered or reported", settled).await;
    assert_eq!(seen.not_found_to(unknown), offered[&unknown]);
    assert!(seen.not_found_to(c_id) > 0, "C was unknown while removed");
    assert!(seen.unreachable_to(b_id) > 0, "B's dead URL failed");
    assert!(
        delivered[&b_id] > 0,
        "B's real URL delivered after the update"
    );
    assert!(delivered[&c_id] > 0);
    // The receivers got what was delivered (and at most what was offered).
    for (peer, node) in [(b_id, &b), (c_id, &c)] {
        let got = node
            .seen
            .borrow()
            .received
            .get(&Id(1))
            .copied()
            .unwrap_or(0);
        assert!(
            got >= delivered[&peer] && got <= offered[&peer],
            "{peer}: {got}"
        );
    }
    a.member.stop().await;
    b.member.stop().await;
    c.member.stop().await;
}

#[actix_rt::test]
async fn a_message_to_an_unknown_peer_is_reported_never_lost() {
    let a = Running::start(1);
    let messages = vec![
        message(MessageType::MsgApp, 1, 5, 1),
        message(MessageType::MsgSnap, 1, 5, 2),
        // `to == 0`: dropped on purpose by raft's application, as in etcd.
        message(MessageType::MsgApp, 1, 0, 3),
    ];
    a.transport().send(SendMessages(messages)).await.unwrap();
    let snapshot = SendSnapshot::from_bytes(
        message(MessageType::MsgSnap, 1, 6, 4),
        bytes::Bytes::from_static(b"db"),
    );
    let dropped = a.transport().send(snapshot).await.unwrap().unwrap_err();
    assert_eq!(dropped.to, Id(6));
    assert_eq!(dropped.reason.to_string(), "member not found");

    let seen = a
        .wait("three reports", |s| {
            s.unreachable.len() >= 3 && s.snapshots.len() >= 2
        })
        .await;
    assert_eq!(seen.not_found_to(Id(5)), 2);
    assert_eq!(seen.not_found_to(Id(6)), 1);
    let failures: Vec<(Id, SnapshotStatus)> =
        seen.snapshots.iter().map(|r| (r.to, r.status)).collect();
    assert_eq!(
        failures,
        [
            (Id(5), SnapshotStatus::Failure),
            (Id(6), SnapshotStatus::Failure)
        ]
    );

    // After stop, every message is reported as stopped and no peer is added.
    a.transport().send(StopTransport).await.unwrap();
    let late = vec![message(MessageType::MsgHeartbeat, 1, 5, 5)];
    a.transport().send(SendMessages(late)).await.unwrap();
    let seen = a
        .wait("the late report", |s| s.unreachable.len() >= 4)
        .await;
    assert_eq!(seen.unreachable[3].reason, Error::Stopped);
    let add = AddPeer {
        id: Id(5),
        urls: vec![dead_url()],
    };
    let refused = a.transport().send(add).await.unwrap();
    assert_eq!(refused, Err(PeerError::Stopped));
    a.member.stop().await;
}

#[actix_rt::test]
async fn a_snapshot_read_from_a_reader_streams_to_the_peers_sink() {
    let dir = std::env::temp_dir().join(format!("transport-snap-{}", std::process::id()));
    let sink = receiver::DirSink::new(&dir);
    let b = Running::start_with(
        MemberBuilder::new(LocalMember::new(Id(2), CLUSTER))
            .receiver(move |c| c.snapshots(receiver::SnapshotConfig::new().sink(sink))),
    );
    let a = Running::start(1);
    a.add(&b).await;
    // Several chunks' worth, with a pattern that shows any reordering.
    let db: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut msnap = message(MessageType::MsgSnap, 1, 2, 0);
    msnap.snapshot.metadata.index = 42;
    let size = db.len() as u64;
    let snapshot = SendSnapshot::from_reader(msnap, std::io::Cursor::new(db.clone()), size);
    a.transport().send(snapshot).await.unwrap().expect("queued");

    let seen = b
        .wait("the stored snapshot", |s| !s.snapshot_files.is_empty())
        .await;
    assert_eq!(std::fs::read(&seen.snapshot_files[0]).unwrap(), db);
    let seen = a
        .wait("the snapshot's outcome", |s| !s.snapshots.is_empty())
        .await;
    assert_eq!(seen.snapshots[0].status, SnapshotStatus::Finish);
    a.member.stop().await;
    b.member.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[actix_rt::test]
async fn operations_on_peers_it_cannot_have_are_refused() {
    let a = Running::start(1);
    let t = a.transport();
    let update = UpdatePeer {
        id: Id(4),
        urls: vec![dead_url()],
    };
    assert_eq!(
        t.send(update).await.unwrap(),
        Err(PeerError::UnknownPeer(Id(4)))
    );
    let me = AddPeer {
        id: Id(1),
        urls: vec![a.url()],
    };
    assert_eq!(
        t.send(me).await.unwrap(),
        Err(PeerError::LocalMember(Id(1)))
    );
    let bad = AddPeer {
        id: Id(4),
        urls: vec!["ftp://x".into()],
    };
    let err = t.send(bad).await.unwrap().unwrap_err();
    assert!(matches!(err, PeerError::Pipeline(_)), "{err:?}");
    assert_eq!(t.send(RemovePeer(Id(4))).await.unwrap(), None);
    a.member.stop().await;
}

#[actix_rt::test]
async fn stop_resolves_with_every_peers_and_remotes_counters() {
    let a = Running::start(1);
    let b = Running::start(2);
    let c = Running::start(3);
    let d = Running::start(4);
    a.add(&b).await;
    a.add(&c).await;
    // D only as a remote, as a sender's X-PeerURLs would suggest.
    let remote = AddRemote {
        id: Id(4),
        urls: vec![d.url()],
    };
    a.transport().send(remote).await.unwrap().unwrap();
    let batch = (1..=30)
        .map(|i| message(MessageType::MsgApp, 1, 2 + i % 3, i))
        .collect();
    a.transport().send(SendMessages(batch)).await.unwrap();
    d.wait("the remote's first message", |s| {
        s.received.contains_key(&Id(1))
    })
    .await;

    let stats = a.transport().send(StopTransport).await.unwrap();
    let mut keys: Vec<Id> = stats.keys().copied().collect();
    keys.sort();
    assert_eq!(keys, [Id(2), Id(3), Id(4)]);
    for (id, s) in &stats {
        assert_eq!(s.offered, 10, "{id}");
        assert!(balanced(s), "{id}: {s:?}");
    }
    let again = a.transport().send(StopTransport).await.unwrap();
    assert!(again.is_empty(), "a second stop has nothing left to stop");
    for node in [a, b, c, d] {
        node.member.stop().await;
    }
}

#[actix_rt::test]
async fn adding_the_peer_retires_its_remote() {
    let a = Running::start(1);
    let b = Running::start(2);
    let remote = AddRemote {
        id: Id(2),
        urls: vec![b.url()],
    };
    a.transport().send(remote).await.unwrap().unwrap();
    a.add(&b).await;
    // Adding the same peer or a remote for it changes nothing.
    a.add(&b).await;
    let again = AddRemote {
        id: Id(2),
        urls: vec![dead_url()],
    };
    a.transport().send(again).await.unwrap().unwrap();
    let batch = vec![message(MessageType::MsgApp, 1, 2, 1)];
    a.transport().send(SendMessages(batch)).await.unwrap();
    wait_idle(a.transport()).await;
    let stats = a.transport().send(StopTransport).await.unwrap();
    assert_eq!(
        stats.len(),
        1,
        "only the peer's pipeline is left: {stats:?}"
    );
    assert_eq!(stats[&Id(2)].delivered, 1);
    assert_eq!(b.seen.borrow().received.get(&Id(1)), Some(&1));
    a.member.stop().await;
    b.member.stop().await;
}

#[actix_rt::test]
async fn active_since_follows_the_peers_status() {
    let a = Running::start(1);
    let b = Running::start(2);
    let t = a.transport().clone();
    assert_eq!(
        t.send(ActiveSince(Id(2))).await.unwrap(),
        None,
        "unknown peer"
    );
    a.add(&b).await;
    assert_eq!(
        t.send(ActiveSince(Id(2))).await.unwrap(),
        None,
        "nothing delivered yet"
    );

    let before = SystemTime::now();
    let beat = vec![message(MessageType::MsgHeartbeat, 1, 2, 0)];
    t.send(SendMessages(beat.clone())).await.unwrap();
    a.wait("peer 2 active", |s| s.status.iter().any(|c| c.active))
        .await;
    let since = t.send(ActiveSince(Id(2))).await.unwrap().expect("active");
    assert!(since >= before && since <= SystemTime::now());

    // B goes away: the next failure makes it inactive.
    let b_url = b.url();
    b.member.stop().await;
    t.send(SendMessages(beat)).await.unwrap();
    a.wait("peer 2 inactive", |s| {
        s.status.last().is_some_and(|c| !c.active)
    })
    .await;
    assert_eq!(t.send(ActiveSince(Id(2))).await.unwrap(), None);
    assert!(
        std::net::TcpStream::connect(b_url.trim_start_matches("http://")).is_err(),
        "a stopped member's server no longer listens"
    );

    t.send(RemovePeer(Id(2))).await.unwrap();
    assert_eq!(t.send(ActiveSince(Id(2))).await.unwrap(), None, "removed");
    a.member.stop().await;
}

#[actix_rt::test]
async fn a_member_reports_the_address_it_bound() {
    let a = Running::start(1);
    let addr = a.member.local_addrs()[0];
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "port 0 was resolved");
    assert_eq!(a.member.urls(), [format!("http://{addr}")]);
    a.member.stop().await;
}

/// A raft stand-in that takes a message and never answers it.
struct Stuck {
    got: watch::Sender<bool>,
}

impl Actor for Stuck {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Stuck {
    type Result = ResponseFuture<Result<(), ProcessError>>;
    fn handle(&mut self, _: Inbound, _: &mut Context<Self>) -> Self::Result {
        self.got.send_replace(true);
        Box::pin(futures::future::pending())
    }
}

impl Handler<ReportUnreachable> for Stuck {
    type Result = ();
    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {}
}

impl Handler<ReportSnapshot> for Stuck {
    type Result = ();
    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

#[actix_rt::test]
async fn a_member_stops_its_transport_then_its_server_within_the_shutdown_timeout() {
    let (got, mut got_rx) = watch::channel(false);
    let stuck = MemberBuilder::new(LocalMember::new(Id(2), CLUSTER))
        .workers(1)
        .shutdown_timeout(Duration::from_millis(500))
        .start(|_| RaftRecipients::new(Stuck { got }.start()))
        .expect("bind a loopback port");
    let a = Running::start(1);
    let add = AddPeer {
        id: Id(2),
        urls: stuck.urls().to_vec(),
    };
    a.transport().send(add).await.unwrap().unwrap();
    let beat = vec![message(MessageType::MsgHeartbeat, 1, 2, 0)];
    a.transport().send(SendMessages(beat)).await.unwrap();
    let held = tokio::time::timeout(WAIT, got_rx.wait_for(|got| *got)).await;
    assert!(held.is_ok(), "the request reached the stuck raft actor");

    // The request in progress never finishes: the server gives up on it
    // after its shutdown timeout (actix-web's own default is 30 s).
    let transport = stuck.transport().clone();
    let url = stuck.urls()[0].clone();
    let stopped = tokio::time::timeout(WAIT, stuck.stop()).await;
    assert!(stopped.is_ok(), "stop waited for the hung request");
    let add = AddPeer {
        id: Id(3),
        urls: vec![dead_url()],
    };
    assert_eq!(transport.send(add).await.unwrap(), Err(PeerError::Stopped));
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        "the server no longer listens"
    );
    a.member.stop().await;
}

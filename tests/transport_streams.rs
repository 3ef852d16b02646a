//! The transport with etcd's streams on, between two of our members over
//! loopback: messages take etcd's `peer.pick` road (`functional_test.go`'s
//! TestSendMessage), and a leader's MsgApps arrive in order.

use std::time::Duration;

use actix::prelude::*;
use rafthttp_pipeline::raftpb::{Entry, Message, MessageType};
use rafthttp_pipeline::transport::*;
use rafthttp_pipeline::*;
use tokio::sync::watch;

const CLUSTER: Id = Id(0xc1);
/// How long any wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// One message as raft got it.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    message: Message,
    /// Stream readers give no `X-PeerURLs`; the pipeline's receiver does.
    by_stream: bool,
    /// The thread raft handled it on.
    thread: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Seen {
    got: Vec<Got>,
    unreachable: usize,
}

struct Node {
    seen: watch::Sender<Seen>,
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Node {
    type Result = Result<(), ProcessError>;
    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let got = Got {
            by_stream: inbound.peer_urls.is_empty(),
            message: inbound.message,
            thread: std::thread::current().name().map(str::to_owned),
        };
        self.seen.send_modify(|s| s.got.push(got));
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Node {
    type Result = ();
    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {
        self.seen.send_modify(|s| s.unreachable += 1);
    }
}

impl Handler<ReportSnapshot> for Node {
    type Result = ();
    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

struct Running {
    member: Member<Node>,
    seen: watch::Receiver<Seen>,
}

impl Running {
    fn start(id: u64) -> Running {
        let (tx, seen) = watch::channel(Seen::default());
        let member = MemberBuilder::new(LocalMember::new(Id(id), CLUSTER))
            .workers(1)
            .transport(TransportConfig::with_streams)
            .start(|_| RaftRecipients::new(Node { seen: tx }.start()))
            .expect("bind a loopback port");
        Running { member, seen }
    }

    /// A member whose raft actor, transport and receiver share one thread,
    /// which busy-polls after each stream send.
    async fn start_on_one_thread(id: u64) -> Running {
        let (tx, seen) = watch::channel(Seen::default());
        let member = MemberBuilder::new(LocalMember::new(Id(id), CLUSTER))
            .transport(|c| c.with_streams().busy_poll(Duration::from_micros(100)))
            .start_on_one_thread(|_| RaftRecipients::new(Node { seen: tx }.start()))
            .await
            .expect("bind a loopback port");
        Running { member, seen }
    }

    /// The name of the thread the member's transport runs on.
    async fn transport_thread(&self) -> Option<String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let name = move || {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        };
        assert!(self.member.arbiter().spawn_fn(name), "the arbiter runs");
        rx.await.expect("the arbiter ran the closure")
    }

    async fn add(&self, peer: &Running) {
        let add = AddPeer {
            id: peer.member.local().id,
            urls: vec![peer.member.urls()[0].clone()],
        };
        self.member
            .transport()
            .send(add)
            .await
            .unwrap()
            .expect("valid peer");
    }

    fn send(&self, messages: Vec<Message>) {
        self.member.transport().do_send(SendMessages(messages));
    }

    async fn wait(&self, what: &str, done: impl Fn(&Seen) -> bool) -> Seen {
        let mut rx = self.seen.clone();
        let waited = tokio::time::timeout(WAIT, rx.wait_for(|s| done(s))).await;
        let seen = waited.ok().and_then(Result::ok).map(|s| s.clone());
        seen.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}: {:?}",
                self.seen.borrow().got.len()
            )
        })
    }
}

fn message(kind: MessageType, index: u64) -> Message {
    Message {
        r#type: kind as i32,
        from: 1,
        to: 2,
        term: 1,
        log_term: 1,
        index,
        commit: index,
        ..Default::default()
    }
}

fn app(index: u64) -> Message {
    Message {
        entries: vec![Entry {
            term: 1,
            index: index + 1,
            data: Some(bytes::Bytes::from(vec![7u8; 64])),
            ..Default::default()
        }],
        ..message(MessageType::MsgApp, index)
    }
}

/// Sends probes of `kind` from `from` to `to` until one arrives by stream.
async fn until_by_stream(from: &Running, to: &Running, kind: MessageType) {
    loop {
        let mut probe = message(kind, 0);
        probe.from = from.member.local().id.0;
        probe.to = to.member.local().id.0;
        from.send(vec![probe]);
        let n = to.seen.borrow().got.len() + 1;
        let seen = to.wait("a probe", |s| s.got.len() >= n).await;
        if seen.got.last().is_some_and(|g| g.by_stream) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two members that know each other, with both streams from 1 to 2 up:
/// heartbeats are sent until one arrives by stream, and then a MsgApp.
async fn pair() -> (Running, Running) {
    connect(Running::start(1), Running::start(2)).await
}

async fn connect(one: Running, two: Running) -> (Running, Running) {
    one.add(&two).await;
    two.add(&one).await;
    until_by_stream(&one, &two, MessageType::MsgHeartbeat).await;
    until_by_stream(&one, &two, MessageType::MsgApp).await;
    (one, two)
}

// etcd's TestSendMessage: every type arrives; MsgSnap by pipeline, the
// rest by stream.
#[actix_rt::test]
async fn test_send_message() {
    let (one, two) = pair().await;
    let active = one
        .member
        .transport()
        .send(ActiveSince(Id(2)))
        .await
        .unwrap();
    assert!(active.is_some(), "peer 2 is active once its streams are up");
    let before = two.seen.borrow().got.len();
    let mut snap = message(MessageType::MsgSnap, 3);
    snap.snapshot.data = Some(bytes::Bytes::from_static(b"some data"));
    let kinds = [
        MessageType::MsgProp,
        MessageType::MsgApp,
        MessageType::MsgAppResp,
        MessageType::MsgVote,
        MessageType::MsgVoteResp,
        MessageType::MsgHeartbeat,
        MessageType::MsgHeartbeatResp,
    ];
    let mut sent: Vec<Message> = kinds.iter().map(|k| message(*k, 3)).collect();
    sent.push(snap.clone());
    one.send(sent.clone());
    let seen = two.wait("all eight", |s| s.got.len() >= before + 8).await;
    let got = &seen.got[before..];
    for m in &sent {
        let g = got.iter().find(|g| &g.message == m).expect("arrived equal");
        assert_eq!(g.by_stream, !m.is_snapshot(), "{:?}", m.msg_type());
    }
}

// A leader's MsgApps arrive in order over the msgappv2 stream, none lost:
// a faithful follower log would reject none.
#[actix_rt::test]
async fn ten_thousand_msgapps_between_members_arrive_in_order() {
    const TOTAL: u64 = 10_000;
    const WINDOW: u64 = 1_000;
    let (one, two) = pair().await;
    let before = two.seen.borrow().got.len();
    for w in 0..TOTAL / WINDOW {
        one.send((w * WINDOW..(w + 1) * WINDOW).map(app).collect());
        let n = before + ((w + 1) * WINDOW) as usize;
        two.wait("a window of MsgApps", |s| s.got.len() >= n).await;
    }
    let seen = two.seen.borrow().clone();
    let got: Vec<&Got> = seen.got[before..].iter().collect();
    assert_eq!(got.len() as u64, TOTAL);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.message, app(i as u64), "MsgApp {i} in order");
        assert!(g.by_stream, "MsgApp {i} by stream");
    }
    assert_eq!(one.seen.borrow().unreachable, 0);
}

// `start_on_one_thread`: raft, the transport and the receiver share the
// HTTP worker's thread, and MsgApps still arrive in order by stream (with
// busy polling on).
#[actix_rt::test]
async fn members_on_one_thread_deliver_in_order_on_their_worker() {
    const TOTAL: u64 = 1_000;
    let one = Running::start_on_one_thread(1).await;
    let two = Running::start_on_one_thread(2).await;
    let (one, two) = connect(one, two).await;
    let worker = two.transport_thread().await.expect("a named thread");
    let here = std::thread::current().name().map(str::to_owned);
    assert_ne!(Some(worker.clone()), here, "not the caller's thread");
    assert_ne!(one.transport_thread().await, Some(worker.clone()));
    let before = two.seen.borrow().got.len();
    one.send((0..TOTAL).map(app).collect());
    let seen = two
        .wait("the MsgApps", |s| s.got.len() >= before + TOTAL as usize)
        .await;
    for (i, g) in seen.got.iter().enumerate() {
        assert_eq!(g.thread.as_deref(), Some(worker.as_str()), "message {i}");
    }
    for (i, g) in seen.got[before..].iter().enumerate() {
        assert_eq!(g.message, app(i as u64), "MsgApp {i} in order");
        assert!(g.by_stream, "MsgApp {i} by stream");
    }
    assert_eq!(one.seen.borrow().unreachable, 0);
}

// etcd's UpdatePeer moves the stream readers too: member 1 first knows a
// dead URL for 2, so nothing from 2 comes to 1 by stream; once 1 learns
// 2's real URL, its readers dial it and 2's messages arrive by stream.
#[actix_rt::test]
async fn update_peer_moves_the_stream_readers() {
    let (one, two) = (Running::start(1), Running::start(2));
    let dead = AddPeer {
        id: Id(2),
        urls: vec!["http://127.0.0.1:1".into()],
    };
    one.member
        .transport()
        .send(dead)
        .await
        .unwrap()
        .expect("valid peer");
    two.add(&one).await;
    let mut probe = message(MessageType::MsgHeartbeat, 0);
    (probe.from, probe.to) = (2, 1);
    two.send(vec![probe]);
    let seen = one.wait("a heartbeat from 2", |s| !s.got.is_empty()).await;
    assert!(!seen.got[0].by_stream, "no stream while 1 dials a dead URL");
    let update = UpdatePeer {
        id: Id(2),
        urls: vec![two.member.urls()[0].clone()],
    };
    one.member
        .transport()
        .send(update)
        .await
        .unwrap()
        .expect("updated");
    until_by_stream(&two, &one, MessageType::MsgHeartbeat).await;
}

//! Pipeline to receiver over loopback, like etcd's functional
//! `TestSendMessage`: what one member sends, the other receives,
//! field for field.

mod support;

use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use rafthttp_pipeline::raftpb::{
    ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata,
};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::*;
use support::*;
use tokio::sync::watch;

/// The receiving raft actor: keeps every message it is given.
struct Inbox {
    received: watch::Sender<Vec<Message>>,
}

impl Actor for Inbox {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Inbox {
    type Result = Result<(), ProcessError>;
    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        assert_eq!(inbound.from, Some(Id(1)), "X-Server-From names the sender");
        self.received.send_modify(|r| r.push(inbound.message));
        Ok(())
    }
}

struct Receiving {
    url: String,
    port: u16,
    server: ServerHandle,
    inbox: Addr<Inbox>,
    received: watch::Receiver<Vec<Message>>,
}

fn serve(inbox: &Addr<Inbox>, port: u16) -> (u16, ServerHandle) {
    let (_, peer, cluster) = ids();
    let config = ReceiverConfig::new(&LocalMember::new(peer, cluster), inbox.clone().recipient());
    let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("bind a loopback port");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (port, handle)
}

fn start_receiving() -> Receiving {
    let (tx, rx) = watch::channel(Vec::new());
    let inbox = Inbox { received: tx }.start();
    let (port, server) = serve(&inbox, 0);
    Receiving {
        url: format!("http://127.0.0.1:{port}"),
        port,
        server,
        inbox,
        received: rx,
    }
}

impl Receiving {
    async fn wait_received(&self, n: usize) -> Vec<Message> {
        let mut rx = self.received.clone();
        let got =
            tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|r| r.len() >= n)).await;
        match got {
            Ok(Ok(r)) => r.clone(),
            _ => panic!(
                "timed out: {} of {n} received",
                self.received.borrow().len()
            ),
        }
    }
}

fn start_pipeline(to: &Receiving, rec: &Recording) -> Addr<PipelineActor> {
    let (local, peer, cluster) = ids();
    let config = PipelineConfig::new(
        &LocalMember::new(local, cluster).peer_urls(vec!["http://127.0.0.1:2380".into()]),
        peer,
        vec![to.url.clone()],
    );
    PipelineActor::start(config, rec.recipients()).expect("valid config")
}

fn every_message_type() -> Vec<Message> {
    let base = |kind: MessageType| Message {
        r#type: kind as i32,
        to: 2,
        from: 1,
        term: 3,
        ..Default::default()
    };
    let mut msgs: Vec<Message> = (0..=18)
        .map(|t| base(MessageType::try_from(t).expect("known type")))
        .collect();
    let app = &mut msgs[MessageType::MsgApp as usize];
    app.log_term = 2;
    app.index = 10;
    app.commit = 9;
    app.entries = vec![
        Entry {
            term: 3,
            index: 11,
            data: Some(Bytes::from_static(b"some data")),
            ..Default::default()
        },
        Entry {
            term: 3,
            index: 12,
            r#type: 1,
            data: Some(Bytes::new()),
        },
        Entry {
            term: 3,
            index: 13,
            ..Default::default()
        },
    ];
    let resp = &mut msgs[MessageType::MsgAppResp as usize];
    resp.reject = true;
    resp.reject_hint = 9;
    resp.context = Some(Bytes::new());
    msgs[MessageType::MsgHeartbeat as usize].context = Some(Bytes::from_static(b"ctx"));
    msgs[MessageType::MsgSnap as usize].snapshot = Snapshot {
        data: Some(Bytes::from(
            (0..8 * 1024 * 1024)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        )),
        metadata: SnapshotMetadata {
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                learners: vec![4],
                voters_outgoing: vec![5],
                learners_next: vec![6],
                auto_leave: true,
            },
            index: 1000,
            term: 3,
        },
    };
    msgs
}

#[actix_rt::test]
async fn send_message_every_type_arrives_field_for_field() {
    let to = start_receiving();
    let rec = Recording::start();
    let p = start_pipeline(&to, &rec);
    let sent = every_message_type();
    for m in &sent {
        p.send(Envelope(m.clone())).await.unwrap().expect("queued");
    }
    let mut received = to.wait_received(sent.len()).await;
    received.sort_by_key(|m| m.r#type);
    assert_eq!(received.len(), sent.len());
    for (got, want) in received.iter().zip(&sent) {
        assert!(got == want, "message of type {} differs", want.r#type);
    }
    wait_stats(&p, "every delivery", |s| s.delivered == sent.len() as u64).await;
    rec.wait_until("snapshot finish", |e| {
        snapshot_reports(e) == [SnapshotStatus::Finish]
    })
    .await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.delivered, sent.len() as u64);
}

#[actix_rt::test]
async fn ten_thousand_appends_all_arrive() {
    const N: u64 = 10_000;
    let to = start_receiving();
    let rec = Recording::start();
    let p = start_pipeline(&to, &rec);
    for i in 0..N {
        let m = Message {
            r#type: MessageType::MsgApp as i32,
            to: 2,
            from: 1,
            index: i,
            entries: vec![Entry {
                index: i + 1,
                data: Some(Bytes::from_static(&[1; 256])),
                ..Default::default()
            }],
            ..Default::default()
        };
        // Respect backpressure: when the queue is full, wait for room.
        while p.send(Envelope(m.clone())).await.unwrap().is_err() {
            wait_stats(&p, "room in the queue", |s| s.queued < 64).await;
        }
    }
    let stats = wait_stats(&p, "all outcomes", |s| s.delivered + s.failed == N).await;
    let received = to.wait_received(N as usize).await;
    let mut indexes: Vec<u64> = received.iter().map(|m| m.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len() as u64, N, "each MsgApp arrived once");
    assert_eq!(stats.delivered, N);
    assert_eq!(stats.follower.success, N);
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.offered, stats.delivered + stats.reported());
    assert_eq!(
        received.len() as u64,
        stats.delivered,
        "both sides count the same"
    );
}

#[actix_rt::test]
async fn peer_goes_inactive_then_active_when_the_server_restarts() {
    let mut to = start_receiving();
    let rec = Recording::start();
    let p = start_pipeline(&to, &rec);
    let heartbeat = || Envelope(message(MessageType::MsgHeartbeat, 0));
    p.send(heartbeat()).await.unwrap().unwrap();
    rec.wait_until("active", |e| status_changes(e) == [true])
        .await;

    to.server.stop(true).await;
    for _ in 0..3 {
        p.send(heartbeat()).await.unwrap().unwrap();
    }
    rec.wait_unreachable(3).await;
    rec.wait_until("inactive", |e| status_changes(e) == [true, false])
        .await;

    let (_, server) = serve(&to.inbox, to.port);
    to.server = server;
    p.send(heartbeat()).await.unwrap().unwrap();
    let events = rec
        .wait_until("active again", |e| status_changes(e) == [true, false, true])
        .await;
    assert_eq!(count_unreachable(&events), 3);
    let stats = p.send(Stop).await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (2, 3));
    assert_eq!(
        status_changes(&rec.events()),
        [true, false, true],
        "one notification each"
    );
}

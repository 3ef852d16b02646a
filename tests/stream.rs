//! etcd's streams between our own members over real loopback HTTP: a
//! member's stream writers serve the GETs its peer's stream readers dial.
//! Scenarios follow etcd's own tests (`stream_test.go`, `http_test.go`,
//! `functional_test.go`) where they apply, under their names.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use rafthttp_pipeline::raftpb::{Entry, Message, MessageType};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::transport::{AddPeer, MemberBuilder, TransportConfig};
use rafthttp_pipeline::{
    stream_routes, Error, Id, LocalMember, PeerUrl, StopStream, StreamReaderActor,
    StreamReaderConfig, StreamReaderStatus, StreamRoutes, StreamSend, StreamType,
    StreamWriterActor, StreamWriters,
};
use support::http::{self, Headers};
use support::member::Member;
use support::raft::{Event, Recording};
use support::server;
use support::{count_unreachable, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CLUSTER: Id = Id(0x1000);
const A: Id = Id(1);
const B: Id = Id(2);

/// Waits until `flag` says `want`; fails after [`WAIT`]. The flags are
/// read without a message, so this is a bounded poll, pacing only.
async fn wait_flag(what: &str, want: bool, flag: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while flag() != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Member A: stream writers to B of both types, served with A's receiver.
struct Serving {
    addr: SocketAddr,
    raft: Recording,
    writers: [(Addr<StreamWriterActor>, Arc<AtomicBool>); 2],
}

impl Serving {
    fn start() -> Serving {
        let raft = Recording::start();
        let local = LocalMember::new(A, CLUSTER);
        let table = StreamWriters::default();
        let writers = StreamType::ALL.map(|kind| {
            let writer = StreamWriterActor::new(B, kind, raft.unreachable());
            let working = writer.working();
            let addr = writer.start();
            table.insert(B, kind, addr.clone());
            (addr, working)
        });
        let routes = StreamRoutes::new(&local, table);
        let config = ReceiverConfig::new(&local, raft.inbound());
        let app = move |cfg: &mut actix_web::web::ServiceConfig| {
            stream_routes(routes.clone())(cfg);
            receiver::configure(config.clone())(cfg);
        };
        let (addr, _) = server::serve(app, 0, server::no_hook);
        Serving {
            addr,
            raft,
            writers,
        }
    }

    fn writer(&self, kind: StreamType) -> &(Addr<StreamWriterActor>, Arc<AtomicBool>) {
        &self.writers[StreamType::ALL.iter().position(|k| *k == kind).unwrap()]
    }

    async fn wait_working(&self, kind: StreamType, want: bool) {
        let working = self.writer(kind).1.clone();
        wait_flag("a writer's state", want, || working.load(Ordering::Acquire)).await;
    }

    /// B's msgappv2 stream from A, dialled by hand: the answer's head is
    /// read and the writer is working; the body is the caller's to read.
    async fn open_msgapp_stream(&self) -> tokio::net::TcpStream {
        let get = http::head(
            "GET",
            "/raft/stream/msgapp/2",
            &stream_headers(),
            "Accept: */*",
        );
        let mut stream = http::open(self.addr, &get).await;
        read_head(&mut stream).await;
        self.wait_working(StreamType::MsgAppV2, true).await;
        stream
    }

    async fn send(&self, kind: StreamType, message: Message) {
        let answer = self.writer(kind).0.send(StreamSend(message)).await;
        answer.expect("writer alive").expect("queued");
    }
}

/// Member B's reader of `kind`, dialling `url`.
fn reader(
    raft: &Recording,
    url: &str,
    kind: StreamType,
    tune: impl FnOnce(StreamReaderConfig) -> StreamReaderConfig,
) -> (Addr<StreamReaderActor>, Arc<StreamReaderStatus>) {
    let local = LocalMember::new(B, CLUSTER);
    let url = PeerUrl::parse(url).expect("a peer URL");
    let config = tune(StreamReaderConfig::new(
        &local,
        A,
        url,
        kind,
        raft.inbound(),
    ));
    let actor = StreamReaderActor::new(config);
    let status = actor.status();
    (actor.start(), status)
}

fn app(index: u64, entries: u64) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        from: A.0,
        to: B.0,
        term: 1,
        log_term: 1,
        index,
        commit: index,
        entries: (1..=entries)
            .map(|i| Entry {
                term: 1,
                index: index + i,
                data: Some(Bytes::from(format!("entry {}", index + i))),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn typed(kind: MessageType) -> Message {
    Message {
        r#type: kind as i32,
        from: A.0,
        to: B.0,
        term: 3,
        ..Default::default()
    }
}

// etcd's TestStream: a MsgProp and a MsgApp on the message stream and a
// MsgApp on msgappv2 arrive equal to what was sent.
#[actix_rt::test]
async fn test_stream() {
    let a = Serving::start();
    let b = Recording::start();
    let url = format!("http://{}", a.addr);
    let _readers = StreamType::ALL.map(|kind| reader(&b, &url, kind, |c| c));
    for kind in StreamType::ALL {
        a.wait_working(kind, true).await;
    }
    let sent = [
        (StreamType::Message, typed(MessageType::MsgProp)),
        (StreamType::Message, app(7, 2)),
        (StreamType::MsgAppV2, app(9, 1)),
    ];
    for (kind, message) in &sent {
        a.send(*kind, message.clone()).await;
        let n = b.received().len() + 1;
        let got = b.wait_received(n, WAIT).await;
        let last = &got[n - 1].inbound;
        assert_eq!(&last.message, message);
        assert_eq!(last.from, Some(A));
    }
}

// Under a W1-style load the MsgApps of a leader arrive in order: a
// faithful follower log would reject none.
#[actix_rt::test]
async fn ten_thousand_msgapps_arrive_in_order() {
    const TOTAL: u64 = 10_000;
    const WINDOW: u64 = 2_000;
    let a = Serving::start();
    let b = Recording::start();
    let url = format!("http://{}", a.addr);
    let _reader = reader(&b, &url, StreamType::MsgAppV2, |c| c);
    a.wait_working(StreamType::MsgAppV2, true).await;
    let writer = &a.writer(StreamType::MsgAppV2).0;
    for window in 0..TOTAL / WINDOW {
        for i in window * WINDOW..(window + 1) * WINDOW {
            writer.do_send(StreamSend(app(i, 1)));
        }
        b.wait_received(((window + 1) * WINDOW) as usize, WAIT)
            .await;
    }
    let got = b.received();
    assert_eq!(got.len() as u64, TOTAL);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.inbound.message, app(i as u64, 1), "message {i}");
    }
    assert_eq!(count_unreachable(&a.raft.events()), 0);
}

// Better than etcd (§4.4: 6.7 s, and messages written meanwhile are lost
// unreported): a reader that goes away is noticed at once, and every
// message offered afterwards is reported.
#[actix_rt::test]
async fn a_reader_that_goes_away_is_noticed_and_later_messages_are_reported() {
    let a = Serving::start();
    let b = Recording::start();
    let url = format!("http://{}", a.addr);
    let (reader, _) = reader(&b, &url, StreamType::MsgAppV2, |c| c);
    a.wait_working(StreamType::MsgAppV2, true).await;
    reader.send(StopStream).await.expect("reader alive");
    a.wait_working(StreamType::MsgAppV2, false).await;
    let answer = a
        .writer(StreamType::MsgAppV2)
        .0
        .send(StreamSend(app(1, 1)))
        .await;
    let dropped = answer.expect("writer alive").expect_err("not queued");
    assert_eq!(dropped.to, B);
    a.raft.wait_unreachable(1).await;
}

// etcd's TestStreamWriterAttachOutgoingConn: a newer GET for the same
// stream replaces the older, whose body ends cleanly; messages go to the
// newer one.
#[actix_rt::test]
async fn test_stream_writer_attach_outgoing_conn() {
    let a = Serving::start();
    let get = http::head(
        "GET",
        "/raft/stream/message/2",
        &stream_headers(),
        "Accept: */*",
    );
    let mut first = http::open(a.addr, &get).await;
    let head = read_head(&mut first).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("X-Server-Version: 3.4.23\r\n"), "{head}");
    assert!(head.contains("X-Etcd-Cluster-Id: 1000\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked\r\n"),
        "{head}"
    );
    // The first frame is a link heartbeat, at once (etcd's pending tick).
    let heartbeat = support::messages::unhex(
        "000000000000001e08081000180020002800300040004a0a12080a0228001000180050005800",
    );
    read_until_contains(&mut first, &heartbeat).await;
    let mut second = http::open(a.addr, &get).await;
    read_head(&mut second).await;
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, first.read_to_end(&mut rest))
        .await
        .expect("the older stream ends")
        .expect("cleanly");
    assert!(rest.ends_with(b"0\r\n\r\n"), "{rest:?}");
    a.send(StreamType::Message, typed(MessageType::MsgHeartbeat))
        .await;
    let frame = read_until_contains(&mut second, &[0x08, 0x08, 0x10, 0x02, 0x18, 0x01]).await;
    assert!(!frame.is_empty());
}

// etcd's TestServeRaftStreamPrefixBad, over HTTP, for the answers that
// carry headers beyond the pure checks' tests.
#[actix_rt::test]
async fn test_serve_raft_stream_prefix_bad() {
    let a = Serving::start();
    let post = http::request("POST", "/raft/stream/message/2", &stream_headers(), b"");
    let answer = http::exchange(a.addr, &post).await;
    answer.assert_go_error(405, "Method Not Allowed");
    assert_eq!(answer.header("Allow"), Some("GET"));
    let cases = [
        (
            "/raft/stream/strange/2",
            stream_headers(),
            404,
            "invalid path",
        ),
        (
            "/raft/stream/message/3",
            stream_headers(),
            404,
            "error sender not found",
        ),
        (
            "/raft/stream/message/2",
            stream_headers().set("X-Raft-To", Some("9")),
            412,
            "to field mismatch",
        ),
        (
            "/raft/stream/message/2",
            stream_headers().set("X-Etcd-Cluster-ID", Some("2")),
            412,
            "cluster ID mismatch",
        ),
    ];
    for (path, headers, status, text) in cases {
        let answer = http::exchange(a.addr, &http::request("GET", path, &headers, b"")).await;
        answer.assert_go_error(status, text);
        answer.assert_cluster_id(CLUSTER);
        assert_eq!(answer.header("X-Server-Version"), Some("3.4.23"), "{path}");
    }
}

// etcd's TestStreamReaderDialDetectUnsupport: a member without streams
// answers 404 without a version; the reader keeps quiet and delivers
// nothing.
#[actix_rt::test]
async fn test_stream_reader_dial_detect_unsupport() {
    let plain = Member::start(Recording::start(), A, CLUSTER, |c| c);
    let b = Recording::start();
    for kind in StreamType::ALL {
        let (_, status) = reader(&b, &plain.url, kind, |c| c);
        wait_flag("unsupported", true, || status.is_unsupported()).await;
        assert!(!status.is_active());
    }
    assert!(b.received().is_empty());
}

// Better than etcd (§9.8, §9.3): a stream that falls silent ends after the
// read timeout, and one whose frame is garbage ends at once; either way
// the reader dials again and delivers nothing of it.
#[actix_rt::test]
async fn silent_or_garbage_streams_end_and_are_dialled_again() {
    for (body, what) in [(&b""[..], "silent"), (&[0x03][..], "garbage")] {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let b = Recording::start();
        let (_reader, _) = reader(&b, &url, StreamType::MsgAppV2, |mut c| {
            c.read_timeout = Duration::from_millis(300);
            c
        });
        for _ in 0..2 {
            let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
                .await
                .unwrap_or_else(|_| panic!("{what}: the reader dials again"))
                .expect("accept");
            read_request(&mut conn).await;
            let mut answer = b"HTTP/1.1 200 OK\r\nX-Server-Version: 3.4.23\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            if !body.is_empty() {
                answer.extend_from_slice(&http::chunk(body));
            }
            conn.write_all(&answer).await.expect("answer");
            // Held open: the reader, not the server, ends it.
            tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink).await;
            });
        }
        assert!(b.received().is_empty(), "{what}");
    }
}

fn stream_headers() -> Headers {
    Headers::default()
        .with("X-Server-From", "2")
        .with("X-Server-Version", "3.4.23")
        .with("X-Min-Cluster-Version", "3.0.0")
        .with("X-Etcd-Cluster-ID", &CLUSTER.to_string())
        .with("X-Raft-To", "1")
}

async fn read_until_contains(stream: &mut tokio::net::TcpStream, needle: &[u8]) -> Vec<u8> {
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while !raw.windows(needle.len()).any(|w| w == needle) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
        raw
    };
    tokio::time::timeout(WAIT, read).await.expect("in time")
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let raw = read_until_contains(stream, b"\r\n\r\n").await;
    String::from_utf8_lossy(&raw).into_owned()
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    read_head(stream).await
}

// etcd's TestStreamReaderDialRequest: member 2 dials member 1's
// `/raft/stream/<type>/2` with `X-Raft-To: 1` and etcd's headers.
#[actix_rt::test]
async fn test_stream_reader_dial_request() {
    for kind in StreamType::ALL {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let b = Recording::start();
        let (_reader, _) = reader(&b, &url, kind, |mut c| {
            c.local = c.local.peer_urls(vec!["http://127.0.0.1:2380".into()]);
            c
        });
        let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the reader dials")
            .expect("accept");
        let request = read_request(&mut conn).await.to_ascii_lowercase();
        let segment = kind.path_segment();
        assert!(
            request.starts_with(&format!("get /raft/stream/{segment}/2 http/1.1\r\n")),
            "{request}"
        );
        for header in [
            "x-server-from: 2",
            "x-server-version: 3.4.23",
            "x-min-cluster-version: 3.0.0",
            "x-etcd-cluster-id: 1000",
            "x-raft-to: 1",
            "x-peerurls: http://127.0.0.1:2380",
        ] {
            assert!(
                request.contains(&format!("{header}\r\n")),
                "{header} in {request}"
            );
        }
    }
}

/// Accepts `n` dials on `listener` and answers each with `status` (and
/// `X-Server-Version: 3.4.23`), then closes it.
async fn answer_dials(listener: &TcpListener, status: &str, n: usize) {
    for _ in 0..n {
        let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the reader dials")
            .expect("accept");
        read_request(&mut conn).await;
        let answer = format!(
            "HTTP/1.1 {status}\r\nX-Server-Version: 3.4.23\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(answer.as_bytes()).await.expect("answer");
    }
}

// etcd's TestStreamReaderDialResult: with `X-Server-Version` in the
// answer, 404, 405 and 412 fail the dial, 200 establishes the stream, and
// 410 fails it and reports one critical error (this member was removed)
// per dial, where etcd sends it on `errorc`.
#[actix_rt::test]
async fn test_stream_reader_dial_result() {
    let cases = [
        ("404 Not Found", false),
        ("405 Method Not Allowed", false),
        ("412 Precondition Failed", false),
        ("410 Gone", true),
    ];
    for (status, critical) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let b = Recording::start();
        let critical_errors = b.critical_errors();
        let (_reader, state) = reader(&b, &url, StreamType::Message, |mut c| {
            c.critical_errors = Some(critical_errors);
            c
        });
        // The third dial comes after the reader handled the first two.
        answer_dials(&listener, status, 3).await;
        let removed = |events: &[Event]| {
            let removal = |e: &&Event| matches!(e, Event::Critical(c) if c.error == Error::MemberRemoved && c.peer == A);
            events.iter().filter(removal).count()
        };
        if critical {
            b.wait_until("two critical errors", |e| removed(e) >= 2)
                .await;
        }
        let events = b.events();
        assert_eq!(removed(&events) >= 2, critical, "{status}: {events:?}");
        assert_eq!(events.len(), removed(&events), "{status}: {events:?}");
        assert!(!state.is_active() && !state.is_unsupported(), "{status}");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let b = Recording::start();
    let (_reader, state) = reader(&b, &url, StreamType::Message, |c| c);
    let (mut conn, _) = listener.accept().await.expect("the reader dials");
    read_request(&mut conn).await;
    let ok = b"HTTP/1.1 200 OK\r\nX-Server-Version: 3.4.23\r\nTransfer-Encoding: chunked\r\n\r\n";
    conn.write_all(ok).await.expect("answer");
    wait_flag("an established stream", true, || state.is_active()).await;
}

// The transport gives its readers the member's critical-error recipient:
// a peer that answers 410 tells the raft actor this member was removed.
#[actix_rt::test]
async fn a_transport_reports_a_410_from_its_peer_as_a_critical_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let b = Recording::start();
    let member = MemberBuilder::new(LocalMember::new(B, CLUSTER))
        .transport(TransportConfig::with_streams)
        .start(|_| b.raft_recipients().with_critical_errors())
        .expect("bind a loopback port");
    let add = AddPeer {
        id: A,
        urls: vec![url],
    };
    member
        .transport()
        .send(add)
        .await
        .unwrap()
        .expect("valid peer");
    answer_dials(&listener, "410 Gone", 2).await;
    let critical = |e: &Event| matches!(e, Event::Critical(c) if c.error == Error::MemberRemoved);
    b.wait_until("a critical error", |e| e.iter().any(critical))
        .await;
    member.stop().await;
}

// etcd's TestStreamReaderStopOnDial: a reader stopped while its dial waits
// for an answer ends, and lets the connection go.
#[actix_rt::test]
async fn test_stream_reader_stop_on_dial() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let b = Recording::start();
    let (reader, _) = reader(&b, &url, StreamType::Message, |c| c);
    let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the reader dials")
        .expect("accept");
    read_request(&mut conn).await;
    reader.send(StopStream).await.expect("reader alive");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, conn.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stopped reader closes its connection");
}

// Better than etcd (§9.1, §4.5, §9.12): a writer whose reader stops
// reading fills its queue; every message refused then is reported as
// "buffer full", and when the connection breaks every message it still
// held is reported too, one report per message.
#[actix_rt::test]
async fn a_full_queue_and_a_broken_stream_report_every_message_they_held() {
    const OFFERED: u64 = 20_000;
    let a = Serving::start();
    let stalled = a.open_msgapp_stream().await;
    let writer = &a.writer(StreamType::MsgAppV2).0;
    let mut dropped = 0;
    for i in 0..OFFERED {
        let mut m = app(i, 1);
        m.entries[0].data = Some(Bytes::from(vec![1u8; 8 * 1024]));
        if writer
            .send(StreamSend(m))
            .await
            .expect("writer alive")
            .is_err()
        {
            dropped += 1;
        }
    }
    assert!(dropped > 0, "a reader that does not read fills the queue");
    let full = a.raft.wait_unreachable(dropped).await;
    assert_eq!(
        count_unreachable(&full),
        dropped,
        "one report per refused message"
    );
    drop(stalled);
    let held = rafthttp_pipeline::STREAM_BUF_SIZE;
    let events = a.raft.wait_unreachable(dropped + held).await;
    let lost = events.iter().filter(|e| {
        matches!(e, support::Event::Unreachable(r) if r.reason.to_string().starts_with("lost TCP streaming"))
    });
    assert!(lost.count() >= held, "every queued message is reported");
    a.wait_working(StreamType::MsgAppV2, false).await;
}

// Better than etcd (§4.5): messages already handed to the socket when the
// connection breaks are reported too, since the peer may never have read
// them (here a peer that took their bytes and then went away).
#[actix_rt::test]
async fn a_broken_stream_reports_the_messages_it_had_handed_to_the_socket() {
    const SENT: u64 = 100;
    let a = Serving::start();
    let mut peer = a.open_msgapp_stream().await;
    for i in 0..SENT {
        a.send(StreamType::MsgAppV2, app(i, 1)).await;
    }
    read_until_contains(&mut peer, format!("entry {SENT}").as_bytes()).await;
    assert_eq!(
        count_unreachable(&a.raft.events()),
        0,
        "none before the break"
    );
    drop(peer);
    let events = a.raft.wait_unreachable(SENT as usize).await;
    let lost = events.iter().filter(|e| {
        matches!(e, support::Event::Unreachable(r) if r.message_type == MessageType::MsgApp as i32)
    });
    assert_eq!(lost.count(), SENT as usize, "{events:?}");
}

// etcd's reader activates the peer when a stream is established and
// deactivates it when a stream fails (`stream.go:420-440`): here a stream
// that falls silent past the read timeout.
#[actix_rt::test]
async fn a_reader_tells_the_peer_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let b = Recording::start();
    let status = b.peer_status();
    let (_reader, _) = reader(&b, &url, StreamType::Message, |mut c| {
        c.read_timeout = Duration::from_millis(300);
        c.status = Some(status);
        c
    });
    let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the reader dials")
        .expect("accept");
    read_request(&mut conn).await;
    let head = b"HTTP/1.1 200 OK\r\nX-Server-Version: 3.4.23\r\nTransfer-Encoding: chunked\r\n\r\n";
    conn.write_all(head).await.expect("answer");
    let events = b
        .wait_until("active, then inactive", |e| {
            support::status_changes(e) == [true, false]
        })
        .await;
    let inactive = events.iter().find_map(|e| match e {
        support::Event::Status(c) if !c.active => c.reason.clone(),
        _ => None,
    });
    let reason = inactive.expect("a reason");
    assert!(
        reason.starts_with("failed to read 1 on stream Message (i/o timeout"),
        "{reason}"
    );
}

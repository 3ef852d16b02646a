//! The receiver over real HTTP on loopback.
//!
//! Each test starts an actix-web server with the receiver on 127.0.0.1:0 and
//! talks to it with exact bytes over a plain TCP connection, so that status
//! line, headers and body can be checked exactly as etcd 3.4.23 writes them
//! (ETCD-RAFTHTTP.md §5.2.2), and so that every answer can be checked to be
//! a complete HTTP response. Where DESIGN.md §4 improves on etcd (removed
//! member, processing error, malformed headers, size cap) the tests check
//! our answer instead.

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::net::TcpStream;
use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use futures::channel::oneshot;
use prost::Message as _;
use rafthttp_pipeline::internals::check_post_response;
use rafthttp_pipeline::raftpb::{Entry, Message as RaftMessage, MessageType};
use rafthttp_pipeline::receiver::{self, ReceiverConfig, MAX_MESSAGE_BYTES};
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::{Error, Id, Inbound, ProcessError};

/// The receiving member.
const LOCAL: Id = Id(2);
/// The cluster, as in ETCD-RAFTHTTP.md §5.2.2 ("local 1").
const CLUSTER: Id = Id(1);
/// The bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

const DECODE_CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/raftpb/decode_cases.json"
);

// ---------------------------------------------------------------------------
// The user's raft actor, recording what it gets.

/// What the recording raft actor answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    RemovedMember,
    Other,
}

impl Answer {
    fn result(self) -> Result<(), ProcessError> {
        match self {
            Answer::Ok => Ok(()),
            Answer::RemovedMember => Err(ProcessError::RemovedMember),
            Answer::Other => Err(ProcessError::Other("raft stopped".into())),
        }
    }
}

/// Stores every [`Inbound`] and answers it with a fixed [`Answer`]. With
/// `hold = n` it answers nobody until `n` messages are waiting, then all of
/// them: only a receiver that serves requests concurrently gets answers.
struct RecordingRaft {
    answer: Answer,
    hold: usize,
    held: Vec<oneshot::Sender<()>>,
    received: Vec<Inbound>,
}

impl RecordingRaft {
    fn answering(answer: Answer) -> Self {
        RecordingRaft {
            answer,
            hold: 0,
            held: Vec::new(),
            received: Vec::new(),
        }
    }

    fn holding_until(n: usize) -> Self {
        RecordingRaft {
            hold: n,
            ..RecordingRaft::answering(Answer::Ok)
        }
    }
}

impl Actor for RecordingRaft {
    type Context = Context<Self>;
}

impl Handler<Inbound> for RecordingRaft {
    type Result = ResponseFuture<Result<(), ProcessError>>;

    fn handle(&mut self, msg: Inbound, _: &mut Context<Self>) -> Self::Result {
        self.received.push(msg);
        let answer = self.answer.result();
        if self.hold == 0 {
            return Box::pin(async move { answer });
        }
        let (tx, rx) = oneshot::channel();
        self.held.push(tx);
        if self.held.len() >= self.hold {
            for tx in self.held.drain(..) {
                let _ = tx.send(());
            }
        }
        Box::pin(async move {
            let _ = rx.await;
            answer
        })
    }
}

/// Hands over (and forgets) everything received so far.
#[derive(Message)]
#[rtype(result = "Vec<Inbound>")]
struct TakeReceived;

impl Handler<TakeReceived> for RecordingRaft {
    type Result = MessageResult<TakeReceived>;

    fn handle(&mut self, _: TakeReceived, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.received))
    }
}

/// A raft actor that has already stopped: its mailbox is closed.
struct GoneRaft;

impl Actor for GoneRaft {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Inbound> for GoneRaft {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, _: Inbound, _: &mut Context<Self>) -> Self::Result {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// A receiving member on loopback.

struct Member {
    addr: SocketAddr,
    raft: Addr<RecordingRaft>,
    server: ServerHandle,
}

impl Member {
    /// A member with the default configuration.
    async fn start(raft: RecordingRaft) -> Member {
        Member::start_with(raft, |c| c).await
    }

    /// A member whose configuration `tune` adjusts.
    async fn start_with(
        raft: RecordingRaft,
        tune: impl FnOnce(ReceiverConfig) -> ReceiverConfig,
    ) -> Member {
        let raft = raft.start();
        let config = tune(ReceiverConfig::new(
            &LocalMember::new(LOCAL, CLUSTER),
            raft.clone().recipient(),
        ));
        let (addr, server) = serve(config);
        Member { addr, raft, server }
    }

    async fn send(&self, request: &[u8]) -> Response {
        exchange(self.addr, request).await
    }

    async fn received(&self) -> Vec<Inbound> {
        self.raft
            .send(TakeReceived)
            .await
            .expect("raft actor alive")
    }

    async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// Serves `config` on 127.0.0.1 with one worker, so that concurrency
/// within a worker is what the tests see.
fn serve(config: ReceiverConfig) -> (SocketAddr, ServerHandle) {
    let _ = env_logger::builder().is_test(true).try_init();
    let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind loopback");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, handle)
}

// ---------------------------------------------------------------------------
// Requests as exact bytes.

/// The headers etcd 3.4's pipeline sends (ETCD-RAFTHTTP.md §2), from
/// member 0x1a of cluster 1.
fn etcd_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/protobuf".into()),
        ("X-Server-From", "1a".into()),
        ("X-Server-Version", "3.4.23".into()),
        ("X-Min-Cluster-Version", "3.0.0".into()),
        ("X-Etcd-Cluster-ID", CLUSTER.to_string()),
    ]
}

/// `headers` with `name` set to `value`, or removed for `None`.
fn with(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        headers.push((name, v.to_owned()));
    }
    headers
}

/// The head of a request, up to and including the empty line; the caller
/// adds the framing header.
fn head(method: &str, path: &str, headers: &[(&str, String)], framing: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("{framing}\r\n\r\n"));
    out.into_bytes()
}

/// A request with a `Content-Length` body.
fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = head(
        method,
        path,
        headers,
        &format!("Content-Length: {}", body.len()),
    );
    out.extend_from_slice(body);
    out
}

/// `POST /raft` with etcd's headers and `body`.
fn post_raft(body: &[u8]) -> Vec<u8> {
    request("POST", "/raft", &etcd_headers(), body)
}

/// `POST /raft` with a chunked body and no `Content-Length`.
fn chunked_post_raft(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = head(
        "POST",
        "/raft",
        &etcd_headers(),
        "Transfer-Encoding: chunked",
    );
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------------------
// Responses, checked to be complete.

/// A complete HTTP/1.1 response: the connection ended cleanly after it and
/// the body has exactly the announced length.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    /// The header names, lower case, without `date` and `connection`,
    /// which every HTTP server adds.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .filter(|n| n != "date" && n != "connection")
            .collect();
        names.sort();
        names
    }

    /// Asserts Go's `http.Error(w, text, status)`: plain text, `nosniff`,
    /// the text and a newline, with a matching `Content-Length`.
    fn assert_go_error(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body_text(), format!("{text}\n"));
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str())
        );
    }

    fn assert_cluster_id(&self) {
        assert_eq!(self.header("x-etcd-cluster-id"), Some("1"), "{self:?}");
    }
}

/// Sends `request` on a new connection and reads the whole answer, up to
/// the server closing the connection (requests say `Connection: close`).
async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    actix_rt::time::timeout(WAIT, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        write_all(&stream, request).await;
        parse_response(&read_to_end(&stream).await)
    })
    .await
    .expect("the answer came in time")
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

/// Reads to a clean end of stream; a reset means the server aborted the
/// connection, which is what etcd does and we must not.
async fn read_to_end(stream: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream.readable().await.expect("readable");
        match stream.try_read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("connection aborted after {out:?}: {e}"),
        }
    }
}

/// Parses one response and checks that it is complete: a sized body of
/// exactly its `Content-Length`, or a chunked body with its last chunk,
/// and nothing after it.
fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete head: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8(raw[..split].to_vec()).expect("ascii head");
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut response = Response {
        status,
        head,
        headers,
        body: Vec::new(),
    };
    response.body = complete_body(&response, rest);
    response
}

fn complete_body(response: &Response, rest: &[u8]) -> Vec<u8> {
    if response.header("transfer-encoding") == Some("chunked") {
        return dechunk(rest);
    }
    let len: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().expect("content-length"));
    assert_eq!(rest.len(), len, "body length for {:?}", response.head);
    rest.to_vec()
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line (etcd's aborted 500 ends here)");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            assert_eq!(rest, b"\r\n", "nothing after the last chunk");
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---------------------------------------------------------------------------
// Messages.

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn heartbeat() -> RaftMessage {
    RaftMessage {
        r#type: MessageType::MsgHeartbeat as i32,
        to: LOCAL.0,
        from: 0x1a,
        term: 3,
        commit: 7,
        ..Default::default()
    }
}

fn append_with_data(len: usize) -> RaftMessage {
    RaftMessage {
        r#type: MessageType::MsgApp as i32,
        to: LOCAL.0,
        from: 0x1a,
        term: 3,
        entries: vec![Entry {
            term: 3,
            index: 8,
            data: Some(Bytes::from(vec![0xab; len])),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A valid encoding of exactly `len` bytes.
fn encoding_of_len(len: usize) -> Vec<u8> {
    (0..len)
        .map(|n| append_with_data(n).encode_to_vec())
        .find(|b| b.len() == len)
        .expect("some data length encodes to exactly len bytes")
}

// ---------------------------------------------------------------------------
// §5.2.2 row by row.

#[actix_rt::test]
async fn non_post_on_raft_gets_405_allow_post_without_cluster_id() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    for method in ["GET", "PUT", "DELETE"] {
        let resp = member
            .send(&request(method, "/raft", &etcd_headers(), b""))
            .await;
        resp.assert_go_error(405, "Method Not Allowed");
        assert_eq!(resp.header("allow"), Some("POST"));
        assert_eq!(resp.header("content-length"), Some("19"));
        assert_eq!(resp.header("x-etcd-cluster-id"), None, "{method}");
    }
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn cluster_id_mismatch_gets_412_with_our_cluster_id() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    // etcd compares exact strings: a leading zero or a missing header fails.
    for remote in [Some("2"), Some("01"), Some("0x1"), Some(""), None] {
        let headers = with(etcd_headers(), "X-Etcd-Cluster-ID", remote);
        let resp = member.send(&request("POST", "/raft", &headers, b"")).await;
        resp.assert_go_error(412, "cluster ID mismatch");
        resp.assert_cluster_id();
        assert_eq!(
            check_post_response(StatusCode::PRECONDITION_FAILED, &resp.body, "http://x/raft"),
            Err(Error::ClusterIdMismatch),
            "our sender reads it as etcd's does"
        );
    }
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn old_missing_or_too_new_versions_get_412_incompatible_version() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let cases = [
        ("X-Server-Version", Some("2.3.0")),
        ("X-Server-Version", None),
        ("X-Server-Version", Some("")),
        ("X-Server-Version", Some("2.99.99")),
        ("X-Min-Cluster-Version", Some("3.5.0")),
        ("X-Min-Cluster-Version", Some("4.0.0")),
    ];
    for (name, value) in cases {
        let headers = with(etcd_headers(), name, value);
        let resp = member.send(&request("POST", "/raft", &headers, b"")).await;
        resp.assert_go_error(412, "incompatible version");
        resp.assert_cluster_id();
    }
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn compatible_versions_are_compared_by_major_minor_only() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let cases = [
        ("X-Server-Version", Some("3.0.0")),
        ("X-Server-Version", Some("3.6.0-alpha.0+git")),
        ("X-Min-Cluster-Version", Some("3.4.99")),
        // a missing minimum means 2.0.0, which we satisfy
        ("X-Min-Cluster-Version", None),
    ];
    for (name, value) in cases {
        let headers = with(etcd_headers(), name, value);
        let resp = member.send(&request("POST", "/raft", &headers, b"")).await;
        assert_eq!(resp.status, 204, "{name}: {value:?}");
    }
    assert_eq!(member.received().await.len(), cases.len());
    member.stop().await;
}

#[actix_rt::test]
async fn malformed_version_headers_get_412_and_never_panic() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let bad = [
        "garbage",
        "3.4",
        "3.4.x",
        "3.4.23.1",
        "v3.4.23",
        "3.4.23-a..b",
        "3.4.23-é",
        "99999999999999999999.0.0",
    ];
    for name in ["X-Server-Version", "X-Min-Cluster-Version"] {
        for value in bad {
            let headers = with(etcd_headers(), name, Some(value));
            let resp = member.send(&request("POST", "/raft", &headers, b"")).await;
            resp.assert_go_error(412, "incompatible version");
            resp.assert_cluster_id();
        }
    }
    let still_serving = member.send(&post_raft(b"")).await;
    assert_eq!(still_serving.status, 204);
    assert_eq!(member.received().await.len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn version_is_checked_before_cluster_id() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let headers = with(
        with(etcd_headers(), "X-Server-Version", Some("2.3.0")),
        "X-Etcd-Cluster-ID",
        Some("2"),
    );
    let resp = member.send(&request("POST", "/raft", &headers, b"")).await;
    resp.assert_go_error(412, "incompatible version");
    member.stop().await;
}

#[actix_rt::test]
async fn garbage_body_gets_400_error_unmarshalling_raft_message() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let resp = member.send(&post_raft(b"abc")).await;
    resp.assert_go_error(400, "error unmarshalling raft message");
    resp.assert_cluster_id();
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn empty_body_gets_204_with_only_the_cluster_id_and_arrives_as_the_zero_message() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let resp = member.send(&post_raft(b"")).await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.names(), ["x-etcd-cluster-id"]);
    assert!(
        resp.head.contains("\r\nX-Etcd-Cluster-Id: 1"),
        "header names as Go writes them: {}",
        resp.head
    );
    assert!(resp.body.is_empty());
    let received = member.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, RaftMessage::default(), "MsgHup from 0");
    member.stop().await;
}

#[actix_rt::test]
async fn message_arrives_with_its_sender_and_peer_urls() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let message = append_with_data(100);
    let headers = with(
        etcd_headers(),
        "X-PeerURLs",
        Some("http://127.0.0.1:2380,https://127.0.0.1:2381"),
    );
    let resp = member
        .send(&request(
            "POST",
            "/raft",
            &headers,
            &message.encode_to_vec(),
        ))
        .await;
    assert_eq!(resp.status, 204);
    let received = member.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, message);
    assert_eq!(received[0].from, Some(Id(0x1a)));
    assert_eq!(
        received[0].peer_urls,
        ["http://127.0.0.1:2380", "https://127.0.0.1:2381"]
    );
    member.stop().await;
}

#[actix_rt::test]
async fn malformed_sender_headers_are_ignored_and_the_message_still_arrives() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let cases = [
        (Some("zz"), Some("::not a url::")),
        (Some("-1"), Some("http://127.0.0.1:2380,ftp://h:1")),
        (Some("10000000000000000"), Some(",")),
        (None, None),
    ];
    for (from, urls) in cases {
        let headers = with(
            with(etcd_headers(), "X-Server-From", from),
            "X-PeerURLs",
            urls,
        );
        let body = heartbeat().encode_to_vec();
        let resp = member
            .send(&request("POST", "/raft", &headers, &body))
            .await;
        assert_eq!(resp.status, 204, "{from:?} {urls:?}");
    }
    let received = member.received().await;
    assert_eq!(received.len(), cases.len());
    for inbound in received {
        assert_eq!(inbound.message, heartbeat());
        assert_eq!(inbound.from, None);
        assert!(inbound.peer_urls.is_empty());
    }
    member.stop().await;
}

#[actix_rt::test]
async fn removed_member_gets_a_complete_403_that_etcd_senders_map_to_member_removed() {
    let member = Member::start(RecordingRaft::answering(Answer::RemovedMember)).await;
    let resp = member.send(&post_raft(&heartbeat().encode_to_vec())).await;
    // etcd 3.4 answers 500 and aborts the body here (§5.2.1); we answer a
    // whole 403, which etcd's checkPostResponse maps to errMemberRemoved
    // for any body (util.go:96).
    resp.assert_go_error(403, "cannot process message from removed member");
    resp.assert_cluster_id();
    assert_eq!(
        check_post_response(StatusCode::FORBIDDEN, &resp.body, "http://x/raft"),
        Err(Error::MemberRemoved)
    );
    assert_eq!(member.received().await.len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn process_error_gets_a_complete_500_and_the_member_keeps_serving() {
    let member = Member::start(RecordingRaft::answering(Answer::Other)).await;
    for _ in 0..2 {
        let resp = member.send(&post_raft(&heartbeat().encode_to_vec())).await;
        resp.assert_go_error(500, "error processing raft message");
        resp.assert_cluster_id();
        assert_eq!(resp.header("transfer-encoding"), None);
    }
    assert_eq!(member.received().await.len(), 2);
    member.stop().await;
}

#[actix_rt::test]
async fn raft_actor_gone_gets_a_complete_500() {
    let gone = GoneRaft.start();
    let config = ReceiverConfig::new(&LocalMember::new(LOCAL, CLUSTER), gone.recipient());
    let (addr, server) = serve(config);
    let resp = exchange(addr, &post_raft(b"")).await;
    resp.assert_go_error(500, "error processing raft message");
    resp.assert_cluster_id();
    server.stop(true).await;
}

#[actix_rt::test]
async fn unknown_raft_paths_get_404_page_not_found() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    for path in ["/raft/", "/raft/snapshot", "/raft/x/y", "/raft/probing/x"] {
        for method in ["GET", "POST"] {
            let resp = member
                .send(&request(method, path, &etcd_headers(), b""))
                .await;
            resp.assert_go_error(404, "404 page not found");
            assert_eq!(resp.header("x-etcd-cluster-id"), None, "{method} {path}");
        }
    }
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn stream_paths_get_404_without_server_version_so_etcd_falls_back_to_the_pipeline() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let headers = with(etcd_headers(), "X-Raft-To", Some("2"));
    for path in ["/raft/stream/message/1a", "/raft/stream/msgappv2/1a"] {
        let resp = member.send(&request("GET", path, &headers, b"")).await;
        resp.assert_go_error(404, "404 page not found");
        assert_eq!(resp.header("x-server-version"), None, "{path}");
        assert_eq!(
            resp.names(),
            ["content-length", "content-type", "x-content-type-options"]
        );
    }
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Size cap (DESIGN.md §4.6).

#[actix_rt::test]
async fn content_length_over_the_cap_gets_413_before_the_body_is_sent() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    // Only the head goes out; the 413 must come back without the body.
    let announced = format!("Content-Length: {}", MAX_MESSAGE_BYTES + 1);
    let resp = member
        .send(&head("POST", "/raft", &etcd_headers(), &announced))
        .await;
    resp.assert_go_error(413, "raft message too large");
    resp.assert_cluster_id();
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn chunked_body_over_the_cap_is_cut_off_with_413() {
    let member = Member::start_with(RecordingRaft::answering(Answer::Ok), |c| {
        c.max_message_bytes(1024)
    })
    .await;
    let body = append_with_data(2000).encode_to_vec();
    let (a, b) = body.split_at(600);
    let resp = member.send(&chunked_post_raft(&[a, b])).await;
    resp.assert_go_error(413, "raft message too large");
    resp.assert_cluster_id();
    assert!(member.received().await.is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn body_of_exactly_the_cap_is_accepted_with_or_without_content_length() {
    let member = Member::start_with(RecordingRaft::answering(Answer::Ok), |c| {
        c.max_message_bytes(1024)
    })
    .await;
    let body = encoding_of_len(1024);
    let (a, b) = body.split_at(512);
    assert_eq!(member.send(&post_raft(&body)).await.status, 204);
    assert_eq!(member.send(&chunked_post_raft(&[a, b])).await.status, 204);
    let over = request("POST", "/raft", &etcd_headers(), &encoding_of_len(1025));
    member
        .send(&over)
        .await
        .assert_go_error(413, "raft message too large");
    let received = member.received().await;
    assert_eq!(received.len(), 2);
    let expected = RaftMessage::decode(body.as_slice()).unwrap();
    assert!(received.iter().all(|r| r.message == expected));
    member.stop().await;
}

#[actix_rt::test]
async fn body_cut_short_gets_400_error_reading_raft_message() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let mut req = head("POST", "/raft", &etcd_headers(), "Content-Length: 100");
    req.extend_from_slice(&[0x08; 10]);
    let resp = actix_rt::time::timeout(WAIT, async {
        let stream = TcpStream::connect(member.addr).await.expect("connect");
        write_all(&stream, &req).await;
        let std_stream = stream.into_std().expect("std stream");
        std_stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        let stream = TcpStream::from_std(std_stream).expect("tokio stream");
        parse_response(&read_to_end(&stream).await)
    })
    .await
    .expect("the answer came in time");
    resp.assert_go_error(400, "error reading raft message");
    resp.assert_cluster_id();
    assert!(member.received().await.is_empty());
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Decoding: etcd's own accept/reject decisions.

#[actix_rt::test]
async fn every_decode_case_gets_the_answer_etcd_would_give() {
    let text = std::fs::read_to_string(DECODE_CASES).expect("decode_cases.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = cases.as_array().expect("array");
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let mut accepted = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let body = unhex(case["hex"].as_str().expect("hex"));
        let etcd_accepts = case["etcd_accepts"].as_bool().expect("etcd_accepts");
        let ours = RaftMessage::decode(Bytes::from(body.clone()));
        let resp = member.send(&post_raft(&body)).await;
        match (etcd_accepts, ours) {
            (true, Ok(message)) => {
                assert_eq!(resp.status, 204, "{name}");
                assert_eq!(resp.names(), ["x-etcd-cluster-id"], "{name}");
                accepted.push(message);
            }
            // etcd rejects, or our codec deliberately rejects malformed
            // protobuf that gogoproto lets through.
            _ => {
                resp.assert_go_error(400, "error unmarshalling raft message");
                resp.assert_cluster_id();
            }
        }
    }
    let received: Vec<RaftMessage> = member
        .received()
        .await
        .into_iter()
        .map(|i| i.message)
        .collect();
    assert_eq!(received, accepted);
    assert!(received.len() > 100, "most accepted cases decode");
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Concurrency.

#[actix_rt::test]
async fn concurrent_posts_from_one_peer_are_served_concurrently() {
    const N: usize = 4;
    // The raft actor answers nobody until all N requests wait in the
    // receiver: a receiver that served them one by one would never answer.
    let member = Member::start(RecordingRaft::holding_until(N)).await;
    let body = heartbeat().encode_to_vec();
    let request = post_raft(&body);
    let all = futures::future::join_all((0..N).map(|_| exchange(member.addr, &request)));
    let responses = actix_rt::time::timeout(WAIT, all)
        .await
        .expect("all requests answered together");
    assert!(responses.iter().all(|r| r.status == 204));
    assert_eq!(member.received().await.len(), N);
    member.stop().await;
}

// ---------------------------------------------------------------------------
// /raft/probing and /version.

/// Go's `time.RFC3339Nano` in UTC: `2006-01-02T15:04:05[.fraction]Z`, the
/// fraction without trailing zeros.
fn is_rfc3339_nano_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 1 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let fixed = shape.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        other => other == got,
    });
    let fraction = &b[shape.len()..b.len() - 1];
    let fraction_ok = match fraction {
        [] => true,
        [b'.', digits @ ..] => {
            (1..=9).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
                && digits.last() != Some(&b'0')
        }
        _ => false,
    };
    fixed && fraction_ok
}

#[actix_rt::test]
async fn probing_answers_any_method_with_ok_and_the_current_time() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    for method in ["GET", "POST", "PUT"] {
        let resp = member
            .send(&request(method, "/raft/probing", &[], b""))
            .await;
        assert_eq!(resp.status, 200, "{method}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let text = resp.body_text();
        assert!(text.starts_with("{\"OK\":true,\"Now\":\""), "{text}");
        assert!(text.ends_with("\"}\n"), "{text}");
        let health: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(health["OK"], true);
        let now = health["Now"].as_str().expect("Now");
        assert!(is_rfc3339_nano_utc(now), "{now}");
        assert!(now[..4] >= *"2024", "{now}");
    }
    member.stop().await;
}

#[actix_rt::test]
async fn version_route_serves_etcd_versions_when_enabled() {
    let member = Member::start_with(RecordingRaft::answering(Answer::Ok), |c| {
        c.serve_version(true)
    })
    .await;
    let resp = member.send(&request("GET", "/version", &[], b"")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.body_text(),
        r#"{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}"#
    );
    for method in ["POST", "PUT"] {
        let resp = member.send(&request(method, "/version", &[], b"")).await;
        resp.assert_go_error(405, "Method Not Allowed");
        assert_eq!(resp.header("allow"), Some("GET"));
    }
    member.stop().await;
}

#[actix_rt::test]
async fn version_route_is_not_mounted_by_default() {
    let member = Member::start(RecordingRaft::answering(Answer::Ok)).await;
    let resp = member.send(&request("GET", "/version", &[], b"")).await;
    assert_eq!(resp.status, 404);
    member.stop().await;
}

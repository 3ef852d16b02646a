//! The fuzz harnesses: what each target does with one input, shared by the
//! AFL++ targets in `src/bin/` and by the regression tests in `tests/`,
//! which replay every saved input (seeds and past crashes).
//!
//! - [`Target::request`]: one arbitrary request (method, path, headers, body)
//!   through the receiver's real actix-web service;
//! - [`Target::snapshot`]: an arbitrary body for a well-formed `POST
//!   /raft/snapshot`, so that the snapshot frame decoder sees every input;
//! - [`raftpb()`]: an arbitrary `raftpb.Message` encoding, decoded, and
//!   re-encoded when it decodes.
//!
//! Inputs either pass or panic; a panic is what AFL++ records as a crash.

use std::io;
use std::path::PathBuf;

use actix::prelude::*;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{test, App};
use prost::Message as _;
use rafthttp_pipeline::raftpb::Message;
use rafthttp_pipeline::receiver::{
    self, ReceiverConfig, SnapshotConfig, SnapshotSink, SnapshotWriter,
};
use rafthttp_pipeline::{Id, Inbound, LocalMember, ProcessError};

/// The member the requests go to: member 2 of cluster `0xabc`.
const LOCAL: Id = Id(2);
/// The cluster it belongs to.
const CLUSTER: Id = Id(0xabc);

/// A raft actor that answers every message the same way.
struct Raft(Option<&'static str>);

impl Actor for Raft {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Raft {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, _: Inbound, _: &mut Context<Self>) -> Self::Result {
        match self.0 {
            None => Ok(()),
            Some("removed") => Err(ProcessError::RemovedMember),
            Some(other) => Err(ProcessError::Other(other.into())),
        }
    }
}

/// A snapshot sink that keeps nothing, so that fuzzing writes no files.
#[derive(Debug)]
struct Discard;

impl SnapshotSink for Discard {
    fn begin(&self, _index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        Ok(Box::new(Discard))
    }
}

impl SnapshotWriter for Discard {
    fn write(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        Ok(PathBuf::from("discarded"))
    }
}

/// The receiving side every input goes to: raft actors answering each
/// way, on an actix system that lives for the whole run.
pub struct Target {
    system: actix_rt::SystemRunner,
    rafts: Vec<Recipient<Inbound>>,
}

impl Default for Target {
    fn default() -> Self {
        Target::new()
    }
}

impl Target {
    /// Starts the system and the raft actors.
    pub fn new() -> Target {
        let system = actix_rt::System::new();
        let rafts = system.block_on(async {
            [None, Some("removed"), Some("raft: stopped")]
                .into_iter()
                .map(|answer| Raft(answer).start().recipient())
                .collect()
        });
        Target { system, rafts }
    }

    /// Serves one request made of `data` (see [`Request::parse`]) and
    /// returns the answer's status, if the service answered.
    pub fn request(&self, data: &[u8]) -> Option<u16> {
        let request = Request::parse(data);
        let raft = self.rafts[request.answer % self.rafts.len()].clone();
        self.system.block_on(serve(raft, request))
    }

    /// Serves `data` as the body of a well-formed `POST /raft/snapshot`
    /// and returns the answer's status.
    pub fn snapshot(&self, data: &[u8]) -> Option<u16> {
        let request = Request {
            method: Method::POST,
            path: "/raft/snapshot",
            headers: etcd_headers("application/octet-stream"),
            body: data.to_vec(),
            answer: 0,
        };
        self.system.block_on(serve(self.rafts[0].clone(), request))
    }
}

/// Decodes `data` as a `raftpb.Message`; one that decodes must encode and
/// decode back to itself.
pub fn raftpb(data: &[u8]) {
    if let Ok(message) = Message::decode(data) {
        let bytes = message.encode_to_vec();
        assert_eq!(bytes.len(), message.encoded_len(), "encoded_len is exact");
        let again = Message::decode(bytes.as_slice()).expect("our encoding decodes");
        assert_eq!(again, message, "decode(encode(m)) == m");
    }
}

/// One request, as the fuzzer's bytes describe it.
#[derive(Debug)]
pub struct Request {
    method: Method,
    path: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    answer: usize,
}

/// The methods a request may have.
const METHODS: [&str; 6] = ["POST", "GET", "PUT", "HEAD", "DELETE", "PATCH"];

/// The paths a request may go to: every route and a few beside them.
const PATHS: [&str; 8] = [
    "/raft",
    "/raft/snapshot",
    "/raft/probing",
    "/raft/stream/msgapp/1",
    "/raft/stream/message/1",
    "/raft/",
    "/raft/x",
    "/version",
];

impl Request {
    /// Reads a request from `data`: byte 0 picks the method, byte 1 the
    /// path, byte 2's low bit adds etcd's valid headers first and its next
    /// bits pick raft's answer; then header lines (`name: value`) up to an
    /// empty line; the rest is the body. Header lines that are not valid
    /// HTTP are skipped, and so are `Content-Length` and
    /// `Transfer-Encoding`: framing is the HTTP codec's, and the body is
    /// exactly the bytes given.
    pub fn parse(data: &[u8]) -> Request {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0) as usize;
        let method = Method::from_bytes(METHODS[byte(0) % METHODS.len()].as_bytes())
            .expect("a valid method");
        let rest = data.get(3..).unwrap_or_default();
        let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (rest, &[][..]),
        };
        let mut headers = if byte(2) & 1 == 1 {
            etcd_headers("application/protobuf")
        } else {
            Vec::new()
        };
        headers.extend(head.split(|&b| b == b'\n').filter_map(header));
        Request {
            method,
            path: PATHS[byte(1) % PATHS.len()],
            headers,
            body: body.to_vec(),
            answer: byte(2) >> 1,
        }
    }
}

/// A header from a `name: value` line, unless it is not valid HTTP or is a
/// framing header.
fn header(line: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = HeaderName::from_bytes(&line[..colon]).ok()?;
    if name == "content-length" || name == "transfer-encoding" {
        return None;
    }
    let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
    Some((name, value))
}

/// The headers etcd 3.4 sends from member 1 to member 2 of our cluster.
fn etcd_headers(content_type: &str) -> Vec<(HeaderName, HeaderValue)> {
    [
        ("content-type", content_type),
        ("x-server-from", "1"),
        ("x-server-version", "3.4.23"),
        ("x-min-cluster-version", "3.0.0"),
        ("x-etcd-cluster-id", "abc"),
    ]
    .into_iter()
    .map(|(n, v)| {
        (
            HeaderName::from_static(n),
            HeaderValue::from_str(v).unwrap(),
        )
    })
    .collect()
}

/// Serves `request` through the receiver's real service, with `raft`
/// answering, reads the whole answer and returns its status.
async fn serve(raft: Recipient<Inbound>, request: Request) -> Option<u16> {
    let config = ReceiverConfig::new(&LocalMember::new(LOCAL, CLUSTER), raft)
        .serve_version(true)
        .snapshots(SnapshotConfig::new().sink(Discard));
    let app = test::init_service(App::new().configure(receiver::configure(config))).await;
    let mut req = test::TestRequest::default()
        .method(request.method)
        .uri(request.path);
    for header in request.headers {
        req = req.append_header(header);
    }
    let req = req.set_payload(request.body).to_request();
    let response = test::try_call_service(&app, req).await.ok()?;
    let status = response.status().as_u16();
    let _ = actix_web::body::to_bytes(response.into_body()).await;
    Some(status)
}

/// Without AFL++ (a plain build): runs `one` on the contents of every file
/// named on the command line, to replay a crash or a corpus, and prints
/// what it returned.
pub fn replay_args<T: std::fmt::Debug>(mut one: impl FnMut(&[u8]) -> T) {
    for path in std::env::args_os().skip(1) {
        let data = std::fs::read(&path).expect("read an input file");
        let out = one(&data);
        println!("{}: {out:?}", path.to_string_lossy());
    }
}

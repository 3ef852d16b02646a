//! Streamed snapshots, ours to ours over real loopback HTTP: a
//! [`PipelineActor`] sends `POST /raft/snapshot` to our receiver, or a raw
//! socket sends what a misbehaving peer would.

mod support;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use futures::StreamExt;
use rafthttp_pipeline::raftpb::{Message as RaftMessage, MessageType};
use rafthttp_pipeline::receiver::{
    self, DirSink, ReceiverConfig, SnapshotConfig, SnapshotSink, SnapshotWriter,
};
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::{internals::frame_head, SnapshotBody};
use rafthttp_pipeline::{
    Error, Inbound, PipelineActor, PipelineConfig, PipelineStats, ProcessError, ReceivedSnapshot,
    SendSnapshot, SnapshotStatus, Stop,
};
use support::{ids, snapshot_reports, wait_stats, Event, Recording, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The size of the big transfer.
const GIB: u64 = 1024 * 1024 * 1024;

/// The bound on the big transfer: a guard against a hang, not a speed
/// requirement.
const BIG_WAIT: Duration = Duration::from_secs(600);

/// The size of the chunks a test body yields.
const CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------- bodies

/// A database that costs no memory: byte `p` is `block[p % block.len()]`,
/// with a pseudo-random block of 1 MiB + 13 bytes, so that the pattern
/// never lines up with chunk or batch boundaries.
#[derive(Clone)]
struct Pattern(Bytes);

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({} bytes)", self.0.len())
    }
}

impl Pattern {
    fn new() -> Pattern {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block = (0..(1 << 20) + 13)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>();
        Pattern(Bytes::from(block))
    }

    /// The chunk at position `pos`, at most `max` bytes, shared with the
    /// block (no copy).
    fn chunk(&self, pos: u64, max: usize) -> Bytes {
        let start = (pos % self.0.len() as u64) as usize;
        let end = self.0.len().min(start + max);
        self.0.slice(start..end)
    }

    /// `size` bytes of the pattern, generated as they are sent.
    fn stream(&self, size: u64) -> impl futures::Stream<Item = Bytes> + Send + 'static {
        let pattern = self.clone();
        futures::stream::unfold(0u64, move |pos| {
            let left = size - pos;
            let chunk = (left > 0).then(|| pattern.chunk(pos, CHUNK.min(left as usize)));
            futures::future::ready(chunk.map(|c| {
                let next = pos + c.len() as u64;
                (c, next)
            }))
        })
    }

    /// Whether `bytes` are the pattern's bytes from position `pos` on.
    fn matches(&self, mut pos: u64, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let expected = self.chunk(pos, bytes.len());
            let (head, tail) = bytes.split_at(expected.len());
            if head != &expected[..] {
                return false;
            }
            pos += head.len() as u64;
            bytes = tail;
        }
        true
    }
}

fn body(stream: impl futures::Stream<Item = Bytes> + Send + 'static) -> SnapshotBody {
    Box::pin(stream.map(Ok::<_, io::Error>))
}

/// `first`, then nothing more until `gate` opens, then `rest`: lets a test
/// wait for the receiver to start storing before the body goes wrong.
fn gated(first: Bytes, gate: watch::Receiver<Counts>, rest: Vec<Bytes>) -> SnapshotBody {
    let after = futures::stream::once(async move {
        let mut gate = gate;
        let _ = gate.wait_for(|c| c.begun >= 1).await;
        futures::stream::iter(rest)
    })
    .flatten();
    body(futures::stream::once(async move { first }).chain(after))
}

/// A `MsgSnap` from 1 to 2 for the snapshot at `index`.
fn snap(index: u64) -> RaftMessage {
    let mut m = RaftMessage {
        r#type: MessageType::MsgSnap as i32,
        to: 2,
        from: 1,
        term: 3,
        ..Default::default()
    };
    m.snapshot.metadata.index = index;
    m.snapshot.metadata.term = 3;
    m
}

// ---------------------------------------------------------------- sinks

/// What an [`Observed`] sink has seen.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    /// Transfers begun.
    begun: usize,
    /// Bytes written, over all transfers.
    written: u64,
    /// Transfers committed.
    committed: usize,
    /// Writers dropped without commit, after the inner writer was dropped.
    discarded: usize,
}

/// Wraps a sink and counts what happens to it, so tests wait on events;
/// with `fail_writes`, every write fails with `disk full`.
#[derive(Debug, Clone)]
struct Observed {
    inner: Arc<dyn SnapshotSink>,
    counts: Arc<watch::Sender<Counts>>,
    fail_writes: bool,
}

impl Observed {
    fn new(inner: impl SnapshotSink + 'static) -> Observed {
        Observed {
            inner: Arc::new(inner),
            counts: Arc::new(watch::channel(Counts::default()).0),
            fail_writes: false,
        }
    }

    fn failing(mut self) -> Observed {
        self.fail_writes = true;
        self
    }

    fn counts(&self) -> Counts {
        self.counts.borrow().clone()
    }

    async fn wait(&self, what: &str, done: impl Fn(&Counts) -> bool) -> Counts {
        let mut rx = self.counts.subscribe();
        let waited = tokio::time::timeout(WAIT, rx.wait_for(|c| done(c))).await;
        let counts = match waited {
            Ok(Ok(counts)) => counts.clone(),
            _ => panic!("timed out waiting for {what}; sink saw {:?}", self.counts()),
        };
        counts
    }
}

impl SnapshotSink for Observed {
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        let inner = self.inner.begin(index)?;
        self.counts.send_modify(|c| c.begun += 1);
        Ok(Box::new(ObservedWriter {
            inner: Some(inner),
            counts: self.counts.clone(),
            fail_writes: self.fail_writes,
        }))
    }
}

struct ObservedWriter {
    inner: Option<Box<dyn SnapshotWriter>>,
    counts: Arc<watch::Sender<Counts>>,
    fail_writes: bool,
}

impl SnapshotWriter for ObservedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.fail_writes {
            return Err(io::Error::other("disk full"));
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gone"))?;
        inner.write(bytes)?;
        self.counts.send_modify(|c| c.written += bytes.len() as u64);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<PathBuf> {
        let inner = self.inner.take().ok_or_else(|| io::Error::other("gone"))?;
        let path = inner.commit()?;
        self.counts.send_modify(|c| c.committed += 1);
        Ok(path)
    }
}

impl Drop for ObservedWriter {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            self.counts.send_modify(|c| c.discarded += 1);
        }
    }
}

/// A sink that stores nothing and checks every byte against a
/// [`Pattern`], recording how many bytes matched before the first
/// mismatch.
#[derive(Debug, Clone)]
struct Verifying {
    pattern: Pattern,
    result: Arc<Mutex<Verified>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Verified {
    received: u64,
    mismatch_at: Option<u64>,
}

impl Verifying {
    fn new(pattern: &Pattern) -> Verifying {
        Verifying {
            pattern: pattern.clone(),
            result: Arc::default(),
        }
    }

    fn result(&self) -> Verified {
        self.result.lock().unwrap().clone()
    }
}

impl SnapshotSink for Verifying {
    fn begin(&self, _index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        *self.result.lock().unwrap() = Verified::default();
        Ok(Box::new(self.clone()))
    }
}

impl SnapshotWriter for Verifying {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut result = self.result.lock().unwrap();
        if result.mismatch_at.is_none() && !self.pattern.matches(result.received, bytes) {
            result.mismatch_at = Some(result.received);
        }
        result.received += bytes.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        Ok(PathBuf::from(IN_MEMORY))
    }
}

/// Where [`Verifying`] says it stored a database.
const IN_MEMORY: &str = "verified in memory";

// ---------------------------------------------------------------- members

/// How the receiving raft actor answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    Removed,
    Fail,
}

/// One message the receiving raft actor got, and whether its database was
/// on disk (or in the sink) when it did.
#[derive(Debug, Clone)]
struct Got {
    inbound: Inbound,
    stored_before: bool,
}

/// The receiving member's raft actor.
struct Raft {
    answer: Answer,
    got: watch::Sender<Vec<Got>>,
}

impl Actor for Raft {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Raft {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let stored_before = inbound
            .snapshot
            .as_ref()
            .is_some_and(|s| s.path == Path::new(IN_MEMORY) || s.path.exists());
        self.got.send_modify(|g| {
            g.push(Got {
                inbound,
                stored_before,
            })
        });
        match self.answer {
            Answer::Ok => Ok(()),
            Answer::Removed => Err(ProcessError::RemovedMember),
            Answer::Fail => Err(ProcessError::Other("raft: stopped".into())),
        }
    }
}

/// Our receiver, with a sink, on an ephemeral loopback port.
struct Member {
    addr: SocketAddr,
    url: String,
    got: watch::Receiver<Vec<Got>>,
    server: actix_web::dev::ServerHandle,
}

impl Member {
    fn start(sink: impl SnapshotSink + 'static, answer: Answer) -> Member {
        Member::with(SnapshotConfig::new().sink(sink), answer)
    }

    fn with(snapshots: SnapshotConfig, answer: Answer) -> Member {
        let (tx, got) = watch::channel(Vec::new());
        let raft = Raft { answer, got: tx }.start();
        let (_, local, cluster) = ids();
        let config = ReceiverConfig::new(&LocalMember::new(local, cluster), raft.recipient())
            .snapshots(snapshots);
        let server =
            HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind a loopback port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Member {
            addr,
            url: format!("http://{addr}"),
            got,
            server: handle,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.borrow().clone()
    }

    async fn wait_got(&self, n: usize, within: Duration) -> Vec<Got> {
        let mut rx = self.got.clone();
        let waited = tokio::time::timeout(within, rx.wait_for(|g| g.len() >= n)).await;
        let got = match waited {
            Ok(Ok(got)) => got.clone(),
            _ => panic!("timed out waiting for {n} inbound messages"),
        };
        got
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// A pipeline from member 1 to `member` (member 2), reporting to `rec`.
fn pipeline_to(member: &Member, rec: &Recording) -> Addr<PipelineActor> {
    let (local, peer, cluster) = ids();
    let config = PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer,
        vec![member.url.clone()],
    );
    PipelineActor::start(config, rec.recipients()).expect("valid configuration")
}

async fn send(p: &Addr<PipelineActor>, message: RaftMessage, body: SnapshotBody, size: u64) {
    let queued = p.send(SendSnapshot {
        message,
        body,
        size,
    });
    queued.await.expect("pipeline alive").expect("queued");
}

/// A fresh, empty directory for one test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "rafthttp-snapshot-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the temp dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    fn temp_files(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|n| n.starts_with("tmp"))
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failures(events: &[Event]) -> bool {
    snapshot_reports(events) == [SnapshotStatus::Failure] && support::count_unreachable(events) == 1
}

fn unreachable_reason(events: &[Event]) -> Option<Error> {
    events.iter().find_map(|e| match e {
        Event::Unreachable(u) => Some(u.reason.clone()),
        _ => None,
    })
}

/// The receiver kept nothing of a failed snapshot: the sink discarded it,
/// no file is left, and raft got no message. Stops the member.
async fn nothing_kept(sink: &Observed, dir: &TempDir, member: Member) {
    sink.wait("the partial database discarded", |c| c.discarded == 1)
        .await;
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    assert!(member.got().is_empty());
    member.stop().await;
}

/// The sender failed the snapshot for `reason`, and the receiver kept
/// nothing: no file, no delivery. Stops both ends.
async fn failed_cleanly(
    rec: &Recording,
    p: &Addr<PipelineActor>,
    sink: &Observed,
    dir: &TempDir,
    member: Member,
    reason: Error,
) {
    let events = rec.wait_until("snapshot failure", failures).await;
    assert_eq!(unreachable_reason(&events), Some(reason));
    let stats = wait_stats(p, "failed", |s| s.failed == 1).await;
    assert_eq!((stats.delivered, stats.cancelled), (0, 0));
    p.send(Stop).await.unwrap();
    nothing_kept(sink, dir, member).await;
}

// ---------------------------------------------------------------- raw HTTP

/// An answer read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn assert_go_error(&self, status: u16, text: &str) {
        assert_eq!(
            (self.status, self.body.as_str()),
            (status, format!("{text}\n").as_str()),
            "{}",
            self.head
        );
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
    }
}

/// etcd's request headers, with `extra` replacing or adding some.
fn request_head(method: &str, extra: &[(&str, &str)], framing: &str) -> String {
    let mut headers = vec![
        ("Host", "127.0.0.1"),
        ("Content-Type", "application/octet-stream"),
        ("X-Server-From", "1"),
        ("X-Server-Version", "3.4.23"),
        ("X-Min-Cluster-Version", "3.0.0"),
        ("X-Etcd-Cluster-ID", "abc"),
    ];
    for (name, value) in extra {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name, value));
    }
    let mut head = format!("{method} /raft/snapshot HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(framing);
    head.push_str("\r\n");
    head
}

/// Sends a whole request with a `Content-Length` body and reads the answer.
async fn post_raw(addr: SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Raw {
    post_raw_method(addr, "POST", extra, body).await
}

async fn post_raw_method(
    addr: SocketAddr,
    method: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let framing = format!("Content-Length: {}\r\n", body.len());
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = request_head(method, extra, &framing).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("send");
    read_answer(&mut stream).await
}

/// Starts a chunked request whose body begins with `chunk` and goes on
/// for as long as the socket stays open.
async fn start_chunked(addr: SocketAddr, chunk: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = request_head("POST", &[], "Transfer-Encoding: chunked\r\n").into_bytes();
    request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
    request.extend_from_slice(chunk);
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.expect("send");
    stream
}

/// Reads one answer: the head, then `Content-Length` bytes of body.
async fn read_answer(stream: &mut TcpStream) -> Raw {
    let read = async {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read the answer");
            assert_eq!(n, 1, "connection closed before the answer's head ended");
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).expect("ASCII head");
        let status = head[9..12].parse().expect("a status code");
        let mut raw = Raw {
            status,
            head,
            body: String::new(),
        };
        let len: usize = raw
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.expect("read the body");
        raw.body = String::from_utf8(body).expect("text body");
        raw
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("an answer within the wait")
}

/// A `MsgSnap` whose encoding is exactly `len` bytes long.
fn message_of_len(len: usize) -> RaftMessage {
    let mut m = snap(1);
    for n in 0..len {
        m.snapshot.data = Some(Bytes::from(vec![1; n]));
        if prost::Message::encoded_len(&m) == len {
            return m;
        }
    }
    panic!("no MsgSnap of {len} bytes");
}

/// A framed `message` followed by `db`.
fn framed(message: &RaftMessage, db: &[u8]) -> Vec<u8> {
    let mut body = frame_head(message).to_vec();
    body.extend_from_slice(db);
    body
}

// ---------------------------------------------------------------- tests

#[actix_rt::test]
async fn a_one_gib_snapshot_arrives_byte_identical() {
    let pattern = Pattern::new();
    let sink = Verifying::new(&pattern);
    let member = Member::start(sink.clone(), Answer::Ok);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let sent = Arc::new(Mutex::new(0u64));
    let counted = sent.clone();
    let stream = pattern.stream(GIB).inspect(move |c| {
        *counted.lock().unwrap() += c.len() as u64;
    });

    let started = std::time::Instant::now();
    send(&p, snap(0x1234), body(stream), GIB).await;
    let got = member.wait_got(1, BIG_WAIT).await;
    let took = started.elapsed();

    let events = rec
        .wait_until("snapshot finish", |e| {
            snapshot_reports(e) == [SnapshotStatus::Finish]
        })
        .await;
    assert_eq!(support::count_unreachable(&events), 0);
    assert_eq!(*sent.lock().unwrap(), GIB);
    assert_eq!(
        sink.result(),
        Verified {
            received: GIB,
            mismatch_at: None
        }
    );
    let received = got[0].inbound.snapshot.clone().expect("a stored database");
    assert_eq!(received.size, GIB);
    assert_eq!(got[0].inbound.message, snap(0x1234));
    assert!(got[0].stored_before);
    let stats = wait_stats(&p, "delivered", |s| s.delivered == 1).await;
    assert_eq!(stats.failed + stats.cancelled, 0);
    eprintln!(
        "1 GiB snapshot moved in {took:?} ({:.0} MiB/s)",
        1024.0 / took.as_secs_f64()
    );
    p.send(Stop).await.unwrap();
    member.stop().await;
}

#[actix_rt::test]
async fn a_streamed_snapshot_is_stored_under_etcds_name_before_raft_hears_of_it() {
    let dir = TempDir::new("stored");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let pattern = Pattern::new();
    let size = 3 * 1024 * 1024 + 12_345;

    send(&p, snap(0x2a), body(pattern.stream(size)), size).await;
    let got = member.wait_got(1, WAIT).await;

    let path = dir.0.join("000000000000002a.snap.db");
    let ReceivedSnapshot {
        path: stored,
        size: stored_size,
        ..
    } = got[0].inbound.snapshot.clone().expect("a stored database");
    assert_eq!((stored, stored_size), (path.clone(), size));
    assert!(
        got[0].stored_before,
        "raft heard of it before it was stored"
    );
    assert_eq!(got[0].inbound.from, Some(ids().0));
    let db = std::fs::read(&path).expect("the database");
    assert_eq!(db.len() as u64, size);
    assert!(pattern.matches(0, &db));
    assert_eq!(dir.entries(), ["000000000000002a.snap.db"]);
    rec.wait_until("snapshot finish", |e| {
        snapshot_reports(e) == [SnapshotStatus::Finish]
    })
    .await;
    assert_eq!(sink.counts().committed, 1);
    p.send(Stop).await.unwrap();
    member.stop().await;
}

#[actix_rt::test]
async fn a_short_body_fails_on_the_sender_and_leaves_no_file() {
    let dir = TempDir::new("short");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let first = Pattern::new().chunk(0, CHUNK);
    let gate = sink.counts.subscribe();

    send(&p, snap(1), gated(first, gate, Vec::new()), 1024 * 1024).await;

    failed_cleanly(&rec, &p, &sink, &dir, member, Error::ShortRead).await;
}

#[actix_rt::test]
async fn a_long_body_fails_on_the_sender_and_leaves_no_file() {
    let dir = TempDir::new("long");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let pattern = Pattern::new();
    let gate = sink.counts.subscribe();
    let rest = vec![pattern.chunk(CHUNK as u64, CHUNK)];

    let size = CHUNK as u64 + 100;
    send(
        &p,
        snap(1),
        gated(pattern.chunk(0, CHUNK), gate, rest),
        size,
    )
    .await;

    failed_cleanly(&rec, &p, &sink, &dir, member, Error::ExpectEof).await;
}

#[actix_rt::test]
async fn stop_mid_transfer_cancels_reports_and_leaves_no_temp_file() {
    let dir = TempDir::new("stop");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let first = Pattern::new().chunk(0, CHUNK);
    let stalls_forever =
        futures::stream::once(async move { first }).chain(futures::stream::pending());

    send(&p, snap(1), body(stalls_forever), GIB).await;
    sink.wait("the receiver storing", |c| c.begun == 1).await;
    assert_eq!(dir.temp_files().len(), 1);

    let stats: PipelineStats = tokio::time::timeout(Duration::from_secs(1), p.send(Stop))
        .await
        .expect("Stop resolves within 1 s")
        .expect("pipeline alive");
    assert_eq!((stats.cancelled, stats.delivered, stats.failed), (1, 0, 0));
    let events = rec.wait_until("snapshot failure", failures).await;
    assert_eq!(unreachable_reason(&events), Some(Error::Stopped));
    nothing_kept(&sink, &dir, member).await;
}

#[actix_rt::test]
async fn raft_refusing_the_snapshot_answers_500_and_leaves_no_temp_file() {
    let dir = TempDir::new("refused");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Fail);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);
    let size = 2 * 1024 * 1024;

    send(&p, snap(7), body(Pattern::new().stream(size)), size).await;

    let events = rec.wait_until("snapshot failure", failures).await;
    assert!(
        matches!(unreachable_reason(&events), Some(Error::UnexpectedStatus { status, .. }) if status == "Internal Server Error"),
        "{events:?}"
    );
    assert_eq!(member.got().len(), 1);
    // The database was stored before raft was asked; only raft said no.
    assert_eq!(dir.entries(), ["0000000000000007.snap.db"]);

    let raw = post_raw(member.addr, &[], &framed(&snap(8), b"db")).await;
    raw.assert_go_error(500, "failed to process raft message (raft: stopped)");
    assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));
    assert!(dir.temp_files().is_empty());
    p.send(Stop).await.unwrap();
    member.stop().await;
}

#[actix_rt::test]
async fn a_failing_sink_answers_500_failed_to_save_and_leaves_no_temp_file() {
    let dir = TempDir::new("failing");
    let sink = Observed::new(DirSink::new(&dir.0)).failing();
    let member = Member::start(sink.clone(), Answer::Ok);

    let raw = post_raw(member.addr, &[], &framed(&snap(1), b"database")).await;

    raw.assert_go_error(500, "failed to save KV snapshot (disk full)");
    assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));
    nothing_kept(&sink, &dir, member).await;
}

#[actix_rt::test]
async fn a_removed_member_gets_a_complete_403() {
    let dir = TempDir::new("removed");
    let member = Member::start(DirSink::new(&dir.0), Answer::Removed);
    let rec = Recording::start();
    let p = pipeline_to(&member, &rec);

    send(&p, snap(1), body(Pattern::new().stream(1000)), 1000).await;

    let events = rec
        .wait_until("critical error and failure", |e| {
            failures(e) && e.iter().any(|e| matches!(e, Event::Critical(_)))
        })
        .await;
    assert_eq!(unreachable_reason(&events), Some(Error::MemberRemoved));
    let raw = post_raw(member.addr, &[], &framed(&snap(2), b"db")).await;
    raw.assert_go_error(403, "cannot process message from removed member");
    p.send(Stop).await.unwrap();
    member.stop().await;
}

#[actix_rt::test]
async fn a_cut_connection_leaves_no_temp_file() {
    let dir = TempDir::new("cut");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let stream = start_chunked(member.addr, &framed(&snap(1), &[7; 1000])).await;

    sink.wait("the receiver storing", |c| c.begun == 1).await;
    assert_eq!(dir.temp_files().len(), 1);
    drop(stream);

    nothing_kept(&sink, &dir, member).await;
}

#[actix_rt::test]
async fn a_length_over_the_cap_is_refused_with_400_before_any_allocation() {
    let dir = TempDir::new("cap");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::with(
        SnapshotConfig::new().sink(sink.clone()).limit_bytes(1024),
        Answer::Ok,
    );
    let text = "failed to decode raft message (rafthttp: error limit exceeded)";

    // Only the 8-byte length, in an unfinished chunked body: the answer
    // comes without the receiver waiting for (or allocating) the message.
    for len in [u64::MAX, 1025] {
        let mut stream = start_chunked(member.addr, &len.to_be_bytes()).await;
        let raw = read_answer(&mut stream).await;
        raw.assert_go_error(400, text);
        assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));
    }

    // At the cap, a well-formed message passes.
    let big = message_of_len(1024);
    let raw = post_raw(member.addr, &[], &framed(&big, b"db")).await;
    assert_eq!(raw.status, 204, "{raw:?}");
    assert_eq!(sink.counts().begun, 1);
    member.stop().await;
}

#[actix_rt::test]
async fn the_default_cap_refuses_u64_max_too() {
    let dir = TempDir::new("default-cap");
    let member = Member::start(DirSink::new(&dir.0), Answer::Ok);
    let raw = post_raw(member.addr, &[], &u64::MAX.to_be_bytes()).await;
    raw.assert_go_error(
        400,
        "failed to decode raft message (rafthttp: error limit exceeded)",
    );
    member.stop().await;
}

#[actix_rt::test]
async fn a_wrong_message_type_is_refused_with_400() {
    let dir = TempDir::new("wrong-type");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let mut app = snap(1);
    app.r#type = MessageType::MsgApp as i32;

    for body in [framed(&app, b"db"), vec![0; 8]] {
        let raw = post_raw(member.addr, &[], &body).await;
        raw.assert_go_error(400, "wrong raft message type");
        assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));
    }
    assert_eq!(sink.counts().begun, 0);
    assert!(member.got().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn undecodable_frames_get_400_failed_to_decode() {
    let dir = TempDir::new("decode");
    let member = Member::start(DirSink::new(&dir.0), Answer::Ok);
    let truncated = framed(&snap(1), b"");
    let mut garbage = 3u64.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 3]);

    let cases: [(&[u8], &str); 4] = [
        (b"", "EOF"),
        (&[0, 0, 0], "unexpected EOF"),
        (&truncated[..truncated.len() - 4], "unexpected EOF"),
        (&garbage, ""),
    ];
    for (body, err) in cases {
        let raw = post_raw(member.addr, &[], body).await;
        assert_eq!(raw.status, 400, "{raw:?}");
        assert!(
            raw.body.starts_with("failed to decode raft message (")
                && raw.body.ends_with(&format!("{err})\n")),
            "{raw:?}"
        );
    }
    assert!(member.got().is_empty());
    assert!(dir.entries().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn header_checks_come_first_in_etcds_order() {
    let dir = TempDir::new("headers");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let body = framed(&snap(1), b"db");

    let raw = post_raw_method(member.addr, "GET", &[], &body).await;
    raw.assert_go_error(405, "Method Not Allowed");
    assert_eq!(raw.header("allow"), Some("POST"));
    assert_eq!(raw.header("x-etcd-cluster-id"), None);

    let both_wrong = [("X-Server-Version", "2.3.0"), ("X-Etcd-Cluster-ID", "abd")];
    let raw = post_raw(member.addr, &both_wrong, &body).await;
    raw.assert_go_error(412, "incompatible version");
    assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));

    let raw = post_raw(member.addr, &[("X-Etcd-Cluster-ID", "ABC")], &body).await;
    raw.assert_go_error(412, "cluster ID mismatch");
    assert_eq!(raw.header("x-etcd-cluster-id"), Some("abc"));

    assert_eq!(sink.counts().begun, 0);
    assert!(member.got().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn a_server_stopping_mid_transfer_leaves_no_temp_file() {
    let dir = TempDir::new("server-stop");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let stream = start_chunked(member.addr, &framed(&snap(1), &[7; 1000])).await;
    sink.wait("the receiver storing", |c| c.begun == 1).await;

    // The worker drops the request's future with the writer in it.
    member.stop().await;

    sink.wait("the partial database discarded", |c| c.discarded == 1)
        .await;
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    drop(stream);
}

#[actix_rt::test]
async fn a_database_cut_short_answers_500_unexpected_eof_and_leaves_no_temp_file() {
    let dir = TempDir::new("cut-short");
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = Member::start(sink.clone(), Answer::Ok);
    let body = framed(&snap(1), &[7; 1000]);
    let mut stream = TcpStream::connect(member.addr).await.unwrap();
    let framing = format!("Content-Length: {}\r\n", body.len() + 1000);
    let mut request = request_head("POST", &[], &framing).into_bytes();
    request.extend_from_slice(&body);
    stream.write_all(&request).await.unwrap();
    stream.shutdown().await.unwrap();

    let raw = read_answer(&mut stream).await;
    raw.assert_go_error(500, "failed to save KV snapshot (unexpected EOF)");
    nothing_kept(&sink, &dir, member).await;
}

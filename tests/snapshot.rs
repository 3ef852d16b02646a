//! Streamed snapshots, ours to ours over real loopback HTTP: a
//! [`PipelineActor`] sends `POST /raft/snapshot` to our receiver, or a raw
//! socket sends what a misbehaving peer would.

mod support;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use rafthttp_pipeline::internals::frame_head;
use rafthttp_pipeline::raftpb::{Message as RaftMessage, MessageType};
use rafthttp_pipeline::receiver::{DirSink, SnapshotConfig, SnapshotSink, SnapshotWriter};
use rafthttp_pipeline::{
    Error, PipelineActor, PipelineConfig, PipelineStats, ReceivedSnapshot, SendSnapshot,
    SnapshotStatus, Stop,
};
use rafthttp_pipeline::{LocalMember, SnapshotBody};
use support::http::{chunk, exchange, finish, head, open, read_response, request, Headers};
use support::http::{Response, CHUNKED};
use support::member::Member;
use support::messages::{of_encoded_len, snap};
use support::raft::{Answer, Recording, IN_MEMORY};
use support::{count_unreachable, ids, snapshot_reports, wait, wait_stats, Event, WAIT};
use tokio::io::AsyncWriteExt;
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
        wait::until(&self.counts.subscribe(), WAIT, what, done).await
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

// ---------------------------------------------------------------- members

/// Member 2 of cluster 0xabc, storing snapshots as `snapshots` says, its
/// raft answering `answer`.
fn member(snapshots: SnapshotConfig, answer: Answer) -> Member {
    let (_, local, cluster) = ids();
    Member::start(Recording::answering(answer), local, cluster, |c| {
        c.snapshots(snapshots)
    })
}

/// Member 2, storing snapshots in `sink`.
fn start(sink: impl SnapshotSink + 'static, answer: Answer) -> Member {
    member(SnapshotConfig::new().sink(sink), answer)
}

/// Member 2, storing snapshots in a fresh directory named for the test
/// through an [`Observed`] [`DirSink`].
fn observed(name: &str, answer: Answer) -> (TempDir, Observed, Member) {
    let dir = TempDir::new(name);
    let sink = Observed::new(DirSink::new(&dir.0));
    let member = start(sink.clone(), answer);
    (dir, sink, member)
}

/// A pipeline from member 1 to `member` (member 2), and member 1's raft
/// actor, which its reports go to.
fn pipeline_to(member: &Member) -> (Recording, Addr<PipelineActor>) {
    let rec = Recording::start();
    let (local, peer, cluster) = ids();
    let config = PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer,
        vec![member.url.clone()],
    );
    let p = PipelineActor::start(config, rec.recipients()).expect("valid configuration");
    (rec, p)
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
    snapshot_reports(events) == [SnapshotStatus::Failure] && count_unreachable(events) == 1
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
    assert!(member.raft.received().is_empty());
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

/// etcd's headers on `POST /raft/snapshot` from member 1 of cluster 0xabc,
/// with `extra` replacing or adding some.
fn etcd_headers(extra: &[(&str, &str)]) -> Headers {
    let (local, _, cluster) = ids();
    let etcd = Headers::etcd("application/octet-stream", local, cluster);
    extra
        .iter()
        .fold(etcd, |h, (name, value)| h.with(name, value))
}

/// Sends a whole request with a `Content-Length` body and reads the answer.
async fn post_raw(addr: SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Response {
    post_raw_method(addr, "POST", extra, body).await
}

async fn post_raw_method(
    addr: SocketAddr,
    method: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let headers = etcd_headers(extra);
    exchange(addr, &request(method, "/raft/snapshot", &headers, body)).await
}

/// Starts a chunked request whose body begins with `bytes` and goes on
/// for as long as the socket stays open.
async fn start_chunked(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut request = head("POST", "/raft/snapshot", &etcd_headers(&[]), CHUNKED);
    request.extend_from_slice(&chunk(bytes));
    open(addr, &request).await
}

/// A `MsgSnap` whose encoding is exactly `len` bytes long.
fn message_of_len(len: usize) -> RaftMessage {
    of_encoded_len(len, |n| {
        let mut m = snap(1);
        m.snapshot.data = Some(Bytes::from(vec![1; n]));
        m
    })
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
    let member = start(sink.clone(), Answer::Ok);
    let (rec, p) = pipeline_to(&member);
    let sent = Arc::new(Mutex::new(0u64));
    let counted = sent.clone();
    let stream = pattern.stream(GIB).inspect(move |c| {
        *counted.lock().unwrap() += c.len() as u64;
    });

    let started = std::time::Instant::now();
    send(&p, snap(0x1234), body(stream), GIB).await;
    let got = member.raft.wait_received(1, BIG_WAIT).await;
    let took = started.elapsed();

    let events = rec
        .wait_until("snapshot finish", |e| {
            snapshot_reports(e) == [SnapshotStatus::Finish]
        })
        .await;
    assert_eq!(count_unreachable(&events), 0);
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
    let (dir, sink, member) = observed("stored", Answer::Ok);
    let (rec, p) = pipeline_to(&member);
    let pattern = Pattern::new();
    let size = 3 * 1024 * 1024 + 12_345;

    send(&p, snap(0x2a), body(pattern.stream(size)), size).await;
    let got = member.raft.wait_received(1, WAIT).await;

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
    let (dir, sink, member) = observed("short", Answer::Ok);
    let (rec, p) = pipeline_to(&member);
    let first = Pattern::new().chunk(0, CHUNK);
    let gate = sink.counts.subscribe();

    send(&p, snap(1), gated(first, gate, Vec::new()), 1024 * 1024).await;

    failed_cleanly(&rec, &p, &sink, &dir, member, Error::ShortRead).await;
}

#[actix_rt::test]
async fn a_long_body_fails_on_the_sender_and_leaves_no_file() {
    let (dir, sink, member) = observed("long", Answer::Ok);
    let (rec, p) = pipeline_to(&member);
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
    let (dir, sink, member) = observed("stop", Answer::Ok);
    let (rec, p) = pipeline_to(&member);
    let first = Pattern::new().chunk(0, CHUNK);
    let stalls_forever =
        futures::stream::once(async move { first }).chain(futures::stream::pending());

    send(&p, snap(1), body(stalls_forever), GIB).await;
    sink.wait("the receiver storing", |c| c.begun == 1).await;
    assert_eq!(dir.temp_files().len(), 1);

    let stats: PipelineStats = tokio::time::timeout(WAIT, p.send(Stop))
        .await
        .expect("Stop resolves while the body stalls")
        .expect("pipeline alive");
    assert_eq!((stats.cancelled, stats.delivered, stats.failed), (1, 0, 0));
    let events = rec.wait_until("snapshot failure", failures).await;
    assert_eq!(unreachable_reason(&events), Some(Error::Stopped));
    nothing_kept(&sink, &dir, member).await;
}

#[actix_rt::test]
async fn raft_refusing_the_snapshot_answers_500_and_leaves_no_temp_file() {
    let (dir, _sink, member) = observed("refused", Answer::Other);
    let (rec, p) = pipeline_to(&member);
    let size = 2 * 1024 * 1024;

    send(&p, snap(7), body(Pattern::new().stream(size)), size).await;

    let events = rec.wait_until("snapshot failure", failures).await;
    assert!(
        matches!(unreachable_reason(&events), Some(Error::UnexpectedStatus { status, .. }) if status == "Internal Server Error"),
        "{events:?}"
    );
    assert_eq!(member.raft.received().len(), 1);
    // The database was stored before raft was asked; only raft said no.
    assert_eq!(dir.entries(), ["0000000000000007.snap.db"]);

    let raw = post_raw(member.addr, &[], &framed(&snap(8), b"db")).await;
    raw.assert_go_error(500, "failed to process raft message (raft: stopped)");
    raw.assert_cluster_id(ids().2);
    assert!(dir.temp_files().is_empty());
    p.send(Stop).await.unwrap();
    member.stop().await;
}

#[actix_rt::test]
async fn a_failing_sink_answers_500_failed_to_save_and_leaves_no_temp_file() {
    let dir = TempDir::new("failing");
    let sink = Observed::new(DirSink::new(&dir.0)).failing();
    let member = start(sink.clone(), Answer::Ok);

    let raw = post_raw(member.addr, &[], &framed(&snap(1), b"database")).await;

    raw.assert_go_error(500, "failed to save KV snapshot (disk full)");
    raw.assert_cluster_id(ids().2);
    nothing_kept(&sink, &dir, member).await;
}

#[actix_rt::test]
async fn a_removed_member_gets_a_complete_403() {
    let dir = TempDir::new("removed");
    let member = start(DirSink::new(&dir.0), Answer::RemovedMember);
    let (rec, p) = pipeline_to(&member);

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
    let (dir, sink, member) = observed("cut", Answer::Ok);
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
    let member = member(
        SnapshotConfig::new().sink(sink.clone()).limit_bytes(1024),
        Answer::Ok,
    );
    let text = "failed to decode raft message (rafthttp: error limit exceeded)";

    // Only the 8-byte length, in an unfinished chunked body: the answer
    // comes without the receiver waiting for (or allocating) the message.
    for len in [u64::MAX, 1025] {
        let mut stream = start_chunked(member.addr, &len.to_be_bytes()).await;
        let raw = read_response(&mut stream).await;
        raw.assert_go_error(400, text);
        raw.assert_cluster_id(ids().2);
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
    let member = start(DirSink::new(&dir.0), Answer::Ok);
    let raw = post_raw(member.addr, &[], &u64::MAX.to_be_bytes()).await;
    raw.assert_go_error(
        400,
        "failed to decode raft message (rafthttp: error limit exceeded)",
    );
    member.stop().await;
}

#[actix_rt::test]
async fn a_wrong_message_type_is_refused_with_400() {
    let (_dir, sink, member) = observed("wrong-type", Answer::Ok);
    let mut app = snap(1);
    app.r#type = MessageType::MsgApp as i32;

    for body in [framed(&app, b"db"), vec![0; 8]] {
        let raw = post_raw(member.addr, &[], &body).await;
        raw.assert_go_error(400, "wrong raft message type");
        raw.assert_cluster_id(ids().2);
    }
    assert_eq!(sink.counts().begun, 0);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn undecodable_frames_get_400_failed_to_decode() {
    let dir = TempDir::new("decode");
    let member = start(DirSink::new(&dir.0), Answer::Ok);
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
        let text = raw.body_text();
        assert!(
            text.starts_with("failed to decode raft message (")
                && text.ends_with(&format!("{err})\n")),
            "{raw:?}"
        );
    }
    assert!(member.raft.received().is_empty());
    assert!(dir.entries().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn header_checks_come_first_in_etcds_order() {
    let (_dir, sink, member) = observed("headers", Answer::Ok);
    let body = framed(&snap(1), b"db");

    let raw = post_raw_method(member.addr, "GET", &[], &body).await;
    raw.assert_go_error(405, "Method Not Allowed");
    assert_eq!(raw.header("allow"), Some("POST"));
    assert_eq!(raw.header("x-etcd-cluster-id"), None);

    let both_wrong = [("X-Server-Version", "2.3.0"), ("X-Etcd-Cluster-ID", "abd")];
    let raw = post_raw(member.addr, &both_wrong, &body).await;
    raw.assert_go_error(412, "incompatible version");
    raw.assert_cluster_id(ids().2);

    let raw = post_raw(member.addr, &[("X-Etcd-Cluster-ID", "ABC")], &body).await;
    raw.assert_go_error(412, "cluster ID mismatch");
    raw.assert_cluster_id(ids().2);

    assert_eq!(sink.counts().begun, 0);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn a_server_stopping_mid_transfer_leaves_no_temp_file() {
    let (dir, sink, member) = observed("server-stop", Answer::Ok);
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
    let (dir, sink, member) = observed("cut-short", Answer::Ok);
    let body = framed(&snap(1), &[7; 1000]);
    let framing = format!("Content-Length: {}", body.len() + 1000);
    let mut request = head("POST", "/raft/snapshot", &etcd_headers(&[]), &framing);
    request.extend_from_slice(&body);
    let mut stream = open(member.addr, &request).await;
    stream.shutdown().await.unwrap();

    let raw = finish(stream).await;
    raw.assert_go_error(500, "failed to save KV snapshot (unexpected EOF)");
    nothing_kept(&sink, &dir, member).await;
}

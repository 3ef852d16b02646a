//! The receiver's resource bounds, attacked as a peer would attack them,
//! over real HTTP on loopback (RELIABILITY.md, "Receiver resource bounds").
//!
//! The memory attacks run against a member in a child process: this test
//! binary started again, serving a receiver, under an address-space limit
//! (`RLIMIT_AS`), as in many containers. An allocation the limit refuses
//! aborts the child, so "alive" means the limit was never reached; the
//! child's peak RSS (`VmHWM`) and open descriptors are read from `/proc`.
//! The other bounds are checked against a member in this process.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use prost::Message as _;
use rafthttp_pipeline::internals::frame_head;
use rafthttp_pipeline::receiver::{DirSink, ReceiverConfig, SnapshotConfig, MAX_MESSAGE_BYTES};
use rafthttp_pipeline::Id;
use support::http::{chunk, exchange, head, open, read_response, request, Headers, CHUNKED};
use support::member::Member;
use support::messages::{append_with_data, heartbeat, snap};
use support::raft::{Answer, Recording};
use support::WAIT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The receiving member.
const LOCAL: Id = Id(2);
/// Its cluster.
const CLUSTER: Id = Id(0xabc);
/// The member the attacks claim to come from.
const ATTACKER: Id = Id(0x1a);

/// The address space the child member may map: 2 GiB. Enough for the
/// member and its whole default memory budget (1 GiB); four reservations
/// of `MAX_MESSAGE_BYTES` would not fit.
const AS_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Requests.

/// etcd 3.4's pipeline headers from `from`.
fn headers_from(from: Id) -> Headers {
    Headers::etcd("application/protobuf", from, CLUSTER)
}

/// `POST /raft` from `from` with `body`.
fn post_raft_from(from: Id, body: &[u8]) -> Vec<u8> {
    request("POST", "/raft", &headers_from(from), body)
}

/// `POST /raft` of a heartbeat from the attacker's id.
fn heartbeat_request() -> Vec<u8> {
    post_raft_from(ATTACKER, &heartbeat().encode_to_vec())
}

/// The head of a `POST /raft` from `from` announcing `len` body bytes.
fn announcing(from: Id, len: usize) -> Vec<u8> {
    head(
        "POST",
        "/raft",
        &headers_from(from),
        &format!("Content-Length: {len}"),
    )
}

// ---------------------------------------------------------------------------
// The member in a child process.

/// Set in the child's environment: the memory budget it serves with, or
/// `default` for the default configuration.
const CHILD_ENV: &str = "RECEIVER_BOUNDS_CHILD";
/// What the child prints once it listens, before its address.
const READY: &str = "receiver-bounds-child listening on ";

/// The child's configuration, when this process is a child.
fn child_budget() -> Option<Option<usize>> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    Some(spec.parse().ok())
}

/// Serves a receiver with the default configuration (and `budget`, if
/// given) until killed, and prints its address for the parent.
async fn serve_as_child(budget: Option<usize>) {
    let member = Member::start(
        Recording::answering(Answer::Ok),
        LOCAL,
        CLUSTER,
        |c| match budget {
            Some(bytes) => c.memory_budget_bytes(bytes),
            None => c,
        },
    );
    println!("{READY}{}", member.addr);
    std::future::pending::<()>().await;
}

/// A receiving member in a child process under [`AS_LIMIT`]; killed when
/// dropped.
struct Child {
    process: std::process::Child,
    addr: SocketAddr,
}

/// What `/proc/<pid>/status` says of a process's memory, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    /// `VmRSS`: resident now.
    rss: u64,
    /// `VmHWM`: the peak resident since start or the last reset.
    peak: u64,
    /// `VmSize`: the address space mapped now.
    mapped: u64,
}

impl Child {
    /// Starts this binary's test `test` as a child member with `budget`
    /// (`None`: every default).
    fn spawn(test: &str, budget: Option<usize>) -> Child {
        let spec = budget.map_or_else(|| "default".to_owned(), |b| b.to_string());
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec)
            // glibc's arenas reserve 64 MiB of address space per thread;
            // two keep the member's own mappings small and steady.
            .env("MALLOC_ARENA_MAX", "2")
            .stdout(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: AS_LIMIT,
                    rlim_max: AS_LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut process = command.spawn().expect("start the child member");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the child printed its address before it exited")
                .expect("read the child's stdout");
            // libtest has written `test <name> ... ` on the same line.
            if let Some(at) = line.find(READY) {
                break line[at + READY.len()..].parse().expect("a socket address");
            }
        };
        Child { process, addr }
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Whether the child is still running.
    fn alive(&mut self) -> bool {
        self.process
            .try_wait()
            .expect("wait on the child")
            .is_none()
    }

    /// The child's memory now.
    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the child's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in {status}"))
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
            mapped: field("VmSize:"),
        }
    }

    /// Starts the peak RSS over from the RSS now (`clear_refs` 5); false
    /// where the kernel does not allow it, and then the peak counts from
    /// the start.
    fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// The child's open file descriptors.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the child's fds")
            .count()
    }

    /// Waits until the child has at most `fds` descriptors open.
    async fn wait_fds_at_most(&self, fds: usize) -> usize {
        let wait = async {
            loop {
                let now = self.fds();
                if now <= fds {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("the child closed its connections: {} fds", self.fds()))
    }

    /// Asserts the child answers a heartbeat with 204.
    async fn assert_answers(&mut self) {
        assert!(self.alive(), "the child member is alive");
        let resp = exchange(self.addr, &heartbeat_request()).await;
        assert_eq!(resp.status, 204, "{resp:?}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The peak RSS growth over `before`, in MiB.
fn growth_mib(before: Memory, after: Memory) -> u64 {
    after.peak.saturating_sub(before.rss) / 1024
}

// ---------------------------------------------------------------------------
// Memory.

/// Six held connections announcing `Content-Length: 536870912` with valid
/// etcd headers used to make the receiver reserve 512 MiB each before any
/// body byte, and a member under an address-space limit aborted. Now
/// nothing is reserved from a header: the member answers throughout, its
/// RSS barely moves, and the read-idle timeout (etcd's 5 s) answers the
/// held requests 408 and frees their connections.
#[actix_rt::test]
async fn six_held_connections_announcing_512_mib_leave_the_member_alive_under_an_address_space_limit(
) {
    if let Some(budget) = child_budget() {
        return serve_as_child(budget).await;
    }
    let mut child = Child::spawn(
        "six_held_connections_announcing_512_mib_leave_the_member_alive_under_an_address_space_limit",
        None,
    );
    child.assert_answers().await;
    let fds_before = child.fds();
    child.reset_peak();
    let before = child.memory();
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut req = announcing(ATTACKER, MAX_MESSAGE_BYTES);
        req.extend_from_slice(&heartbeat().encode_to_vec()[..4]);
        held.push(open(child.addr, &req).await);
    }
    // Each held request reached the body: a heartbeat behind them is
    // answered, and the member is alive.
    child.assert_answers().await;
    let during = child.memory();
    for stream in &mut held {
        let resp = read_response(stream).await;
        resp.assert_go_error(408, "error reading raft message");
        resp.assert_cluster_id(CLUSTER);
    }
    drop(held);
    let fds_after = child.wait_fds_at_most(fds_before).await;
    child.assert_answers().await;
    let after = child.memory();
    eprintln!(
        "six held connections: RSS {} KiB before, peak {} KiB, {} KiB after; \
         mapped {} KiB of {} KiB allowed; fds {fds_before} before, {fds_after} after",
        before.rss,
        after.peak,
        after.rss,
        during.mapped,
        AS_LIMIT / 1024
    );
    assert!(
        growth_mib(before, after) < 32,
        "the peak RSS grew by {} MiB: {before:?} {after:?}",
        growth_mib(before, after)
    );
}

/// A 32 MiB body of 16 Mi empty entries (`3a 00`) used to decode into
/// 16 Mi `Entry`s, taking the member from 6 to about 910 MiB. Now the
/// entries are counted before decoding, and the body is refused with 413:
/// decoding it would allocate 896 MiB, 28 times its size, over the bound
/// of 8.
#[actix_rt::test]
async fn a_32_mib_body_of_16_mi_empty_entries_gets_413_without_the_memory_blow_up() {
    if let Some(budget) = child_budget() {
        return serve_as_child(budget).await;
    }
    let mut child = Child::spawn(
        "a_32_mib_body_of_16_mi_empty_entries_gets_413_without_the_memory_blow_up",
        None,
    );
    child.assert_answers().await;
    child.reset_peak();
    let before = child.memory();
    let body = [0x3a, 0x00].repeat(16 * MIB);
    assert_eq!(body.len(), 32 * MIB);
    let resp = exchange(child.addr, &post_raft_from(ATTACKER, &body)).await;
    resp.assert_go_error(413, "raft message too large");
    resp.assert_cluster_id(CLUSTER);
    child.assert_answers().await;
    let after = child.memory();
    eprintln!(
        "16 Mi empty entries: RSS {} KiB before, peak {} KiB, {} KiB after",
        before.rss, after.peak, after.rss
    );
    // The body itself, read into a buffer that doubles as it arrives (32
    // MiB, with the 16 MiB it grew from), and the server's buffers.
    assert!(
        growth_mib(before, after) < 96,
        "the peak RSS grew by {} MiB: {before:?} {after:?}",
        growth_mib(before, after)
    );
}

/// What one endless body got: its answer's status, if the connection
/// still carried it, how many bytes were sent, and whether the member
/// closed the connection before [`WAIT`] was up.
#[derive(Debug)]
struct Endless {
    status: Option<u16>,
    sent: usize,
    closed: bool,
}

/// Sends a chunked `POST /raft` body that never ends, in 1 MiB chunks,
/// until the member closes the connection (or [`WAIT`] is up), then reads
/// what answer is left on it.
async fn endless_body(addr: SocketAddr) -> Endless {
    let mut stream = open(
        addr,
        &head("POST", "/raft", &headers_from(ATTACKER), CHUNKED),
    )
    .await;
    let piece = chunk(&vec![0x0a; MIB]);
    let mut sent = 0;
    let write = async {
        while stream.write_all(&piece).await.is_ok() {
            sent += MIB;
        }
    };
    let closed = tokio::time::timeout(WAIT, write).await.is_ok();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await;
    let status = std::str::from_utf8(raw.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok());
    Endless {
        status,
        sent,
        closed,
    }
}

/// Three endless bodies at once used to reach 1.5 GiB. Now all bodies in
/// flight share one memory budget (64 MiB here): each is refused with 503
/// once it would go over, the member's RSS stays within the budget, and
/// all of it comes back afterwards.
#[actix_rt::test]
async fn concurrent_endless_bodies_are_held_to_the_memory_budget() {
    const BUDGET: usize = 64 * MIB;
    if let Some(budget) = child_budget() {
        return serve_as_child(budget).await;
    }
    let mut child = Child::spawn(
        "concurrent_endless_bodies_are_held_to_the_memory_budget",
        Some(BUDGET),
    );
    child.assert_answers().await;
    let fds_before = child.fds();
    child.reset_peak();
    let before = child.memory();
    let (a, b, c) = tokio::join!(
        endless_body(child.addr),
        endless_body(child.addr),
        endless_body(child.addr)
    );
    let after_attack = child.memory();
    eprintln!(
        "three endless bodies, budget {} MiB: {a:?} {b:?} {c:?} ({} MiB sent); RSS {} KiB before, peak {} KiB",
        BUDGET / MIB,
        (a.sent + b.sent + c.sent) / MIB,
        before.rss,
        after_attack.peak
    );
    for endless in [&a, &b, &c] {
        assert!(
            endless.closed,
            "the member closed the connection: {endless:?}"
        );
        assert!(
            matches!(endless.status, None | Some(503)),
            "503 or a closed connection: {endless:?}"
        );
    }
    assert!(
        [&a, &b, &c].iter().any(|e| e.status == Some(503)),
        "at least one answer made it back: {a:?} {b:?} {c:?}"
    );
    assert!(
        growth_mib(before, after_attack) < (BUDGET / MIB) as u64 + 32,
        "the peak RSS grew by {} MiB over a budget of {} MiB",
        growth_mib(before, after_attack),
        BUDGET / MIB
    );
    let fds_after = child.wait_fds_at_most(fds_before).await;
    eprintln!("three endless bodies: fds {fds_before} before, {fds_after} after");
    // The whole budget came back: a 16 MiB message (a 16 MiB buffer grown
    // from 8) fits again.
    child.assert_answers().await;
    let big = post_raft_from(ATTACKER, &append_with_data(16 * MIB).encode_to_vec());
    assert_eq!(exchange(child.addr, &big).await.status, 204);
}

// ---------------------------------------------------------------------------
// The other bounds, against a member in this process.

/// Member 2 of cluster 0xabc, its raft answering 204, its configuration
/// adjusted by `tune`.
fn start_with(tune: impl FnOnce(ReceiverConfig) -> ReceiverConfig) -> Member {
    Member::start(Recording::answering(Answer::Ok), LOCAL, CLUSTER, tune)
}

#[actix_rt::test]
async fn a_body_announced_over_the_free_budget_gets_503_before_it_is_read() {
    let member = start_with(|c| c.memory_budget_bytes(MIB));
    // Only the head is sent: the answer cannot wait for the body.
    let mut stream = open(member.addr, &announcing(ATTACKER, 2 * MIB)).await;
    let resp = read_response(&mut stream).await;
    resp.assert_go_error(503, "receiver memory budget exhausted");
    resp.assert_cluster_id(CLUSTER);
    // A body that fits is taken, and gives its share back.
    let fits = post_raft_from(ATTACKER, &append_with_data(100 * 1024).encode_to_vec());
    assert_eq!(exchange(member.addr, &fits).await.status, 204);
    assert_eq!(member.raft.received().len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn the_budget_is_given_back_however_a_request_ends() {
    let mut config = None;
    let member = start_with(|c| {
        let c = c.memory_budget_bytes(4 * MIB);
        config = Some(c.clone());
        c
    });
    let config = config.expect("the member's configuration");
    let ok = post_raft_from(ATTACKER, &append_with_data(MIB).encode_to_vec());
    assert_eq!(exchange(member.addr, &ok).await.status, 204);
    let too_costly = post_raft_from(ATTACKER, &[0x3a, 0x00].repeat(64 * 1024));
    assert_eq!(exchange(member.addr, &too_costly).await.status, 413);
    let garbage = post_raft_from(ATTACKER, &[0xff; 1024]);
    assert_eq!(exchange(member.addr, &garbage).await.status, 400);
    let mut cut = announcing(ATTACKER, MIB);
    cut.extend_from_slice(&[0x08; 1000]);
    let mut stream = open(member.addr, &cut).await;
    stream.shutdown().await.expect("half close");
    assert_eq!(read_response(&mut stream).await.status, 400);
    assert_eq!(config.memory_in_use(), 0, "every lease was given back");
    member.stop().await;
}

#[actix_rt::test]
async fn a_stalled_raft_body_is_answered_408_after_the_idle_timeout() {
    let member = start_with(|c| c.read_idle_timeout(Duration::from_millis(300)));
    let mut req = announcing(ATTACKER, 100);
    req.extend_from_slice(&[0x08; 10]);
    let mut stream = open(member.addr, &req).await;
    let resp = read_response(&mut stream).await;
    resp.assert_go_error(408, "error reading raft message");
    resp.assert_cluster_id(CLUSTER);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn a_slow_body_that_never_idles_for_the_timeout_is_taken() {
    let member = start_with(|c| c.read_idle_timeout(Duration::from_secs(1)));
    let body = append_with_data(1200).encode_to_vec();
    let mut stream = open(member.addr, &announcing(ATTACKER, body.len())).await;
    // Twelve pieces 100 ms apart: longer than the timeout in all, never
    // idle for it.
    for piece in body.chunks(body.len().div_ceil(12)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(piece).await.expect("send a piece");
    }
    assert_eq!(read_response(&mut stream).await.status, 204);
    assert_eq!(member.raft.received().len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn the_per_member_cap_refuses_the_request_over_it_with_429() {
    let member = start_with(|c| c.max_requests_per_member(2).read_idle_timeout(WAIT));
    let body = append_with_data(1000).encode_to_vec();
    let (start, rest) = body.split_at(10);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut req = announcing(ATTACKER, body.len());
        req.extend_from_slice(start);
        held.push(open(member.addr, &req).await);
    }
    // Until the member has counted both held requests, a third may still
    // get in; then it is refused.
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            let resp = exchange(member.addr, &heartbeat_request()).await;
            if resp.status == 429 {
                return resp;
            }
            assert_eq!(resp.status, 204, "{resp:?}");
        }
    })
    .await
    .expect("the third request is refused once two are held");
    refused.assert_go_error(429, "too many requests in flight from this member");
    refused.assert_cluster_id(CLUSTER);
    // Another member is not held up.
    let other = post_raft_from(Id(0x1b), &heartbeat().encode_to_vec());
    assert_eq!(exchange(member.addr, &other).await.status, 204);
    for mut stream in held {
        stream.write_all(rest).await.expect("finish the body");
        assert_eq!(read_response(&mut stream).await.status, 204);
    }
    assert_eq!(
        exchange(member.addr, &heartbeat_request()).await.status,
        204
    );
    member.stop().await;
}

// ---------------------------------------------------------------------------
// The snapshot database.

/// A fresh directory for one test's snapshots, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "rafthttp-receiver-bounds-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    /// The names in the directory; none when it was never created.
    fn entries(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A member storing snapshots in `dir`, taking databases up to `max`.
fn snapshot_member(dir: &TempDir, max: u64) -> Member {
    let snapshots = SnapshotConfig::new()
        .sink(DirSink::new(&dir.0))
        .max_db_bytes(max);
    start_with(|c| c.snapshots(snapshots))
}

/// etcd's snapshot headers from the attacker's id.
fn snapshot_headers() -> Headers {
    Headers::etcd("application/octet-stream", ATTACKER, CLUSTER)
}

#[actix_rt::test]
async fn a_snapshot_database_over_the_limit_is_refused_and_its_temp_file_removed() {
    let dir = TempDir::new("over");
    let member = snapshot_member(&dir, MIB as u64);
    let frame = frame_head(&snap(7));
    let mut req = head("POST", "/raft/snapshot", &snapshot_headers(), CHUNKED);
    req.extend_from_slice(&chunk(&frame));
    // One byte over the limit, in pieces, and the body does not end: the
    // member refuses it as soon as the bytes pass the limit.
    for _ in 0..4 {
        req.extend_from_slice(&chunk(&vec![0x5a; 256 * 1024]));
    }
    req.extend_from_slice(&chunk(b"!"));
    let mut stream = open(member.addr, &req).await;
    let resp = read_response(&mut stream).await;
    resp.assert_go_error(
        413,
        "failed to save KV snapshot (database larger than 1048576 bytes)",
    );
    resp.assert_cluster_id(CLUSTER);
    assert!(
        dir.entries().is_empty(),
        "no temp file: {:?}",
        dir.entries()
    );
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn a_snapshot_database_announced_over_the_limit_is_refused_before_it_is_written() {
    let dir = TempDir::new("announced");
    let member = snapshot_member(&dir, MIB as u64);
    let frame = frame_head(&snap(7));
    let len = frame.len() + 3 * MIB;
    let mut req = head(
        "POST",
        "/raft/snapshot",
        &snapshot_headers(),
        &format!("Content-Length: {len}"),
    );
    req.extend_from_slice(&frame);
    // The frame only: the answer comes before any database byte.
    let mut stream = open(member.addr, &req).await;
    let resp = read_response(&mut stream).await;
    resp.assert_go_error(
        413,
        "failed to save KV snapshot (database larger than 1048576 bytes)",
    );
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
    member.stop().await;
}

#[actix_rt::test]
async fn a_snapshot_database_of_exactly_the_limit_is_stored() {
    let dir = TempDir::new("exact");
    let member = snapshot_member(&dir, MIB as u64);
    let mut body = frame_head(&snap(7)).to_vec();
    body.extend_from_slice(&vec![0x5a; MIB]);
    let req = request("POST", "/raft/snapshot", &snapshot_headers(), &body);
    assert_eq!(exchange(member.addr, &req).await.status, 204);
    assert_eq!(dir.entries(), ["0000000000000007.snap.db"]);
    member.stop().await;
}

#[actix_rt::test]
async fn a_snapshot_frame_of_empty_entries_gets_413_before_decoding() {
    let dir = TempDir::new("entries");
    let member = snapshot_member(&dir, MIB as u64);
    let encoded = [0x3a, 0x00].repeat(64 * 1024);
    let mut body = (encoded.len() as u64).to_be_bytes().to_vec();
    body.extend_from_slice(&encoded);
    let req = request("POST", "/raft/snapshot", &snapshot_headers(), &body);
    exchange(member.addr, &req)
        .await
        .assert_go_error(413, "raft message too large");
    assert!(dir.entries().is_empty());
    member.stop().await;
}

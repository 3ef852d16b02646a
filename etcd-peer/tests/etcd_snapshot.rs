//! A real etcd 3.4.23 catches our member up by streaming its database to
//! it.
//!
//! One etcd, started with `--snapshot-count 100`, and two members from
//! the `etcd-peer` binary: A acknowledges etcd's appends, so etcd and A
//! form a quorum; B is held down (its port bound, connections refused).
//! `etcdctl check datascale` writes 10 000 keys, one raft entry each, and
//! etcd compacts its log far past B, keeping 5 000 entries after each
//! snapshot. Then B comes up; at B's first heartbeat answer etcd sends
//! `POST /raft/snapshot` with its bbolt database, which our receiver streams
//! into B's data dir. The tests check that:
//!
//! - the saved file is etcd's database: `etcdctl snapshot status` accepts it,
//!   and its `totalSize` equals the bytes our receiver counted;
//! - etcd then replicates to B: a put made afterwards reaches B as a `MsgApp`
//!   that B acknowledges;
//! - when B's receiver answers 500, or has its connection cut, for the first
//!   3 attempts, etcd's retries end in success, no temp file is left, and B's
//!   peak memory does not grow across the attempts.
//!
//! The members are the `etcd-peer` binary, run as child processes
//! (`support/peer.rs`), so each has its own `VmHWM` (peak RSS, read from
//! `/proc/self/status` by B at each snapshot event). Every process is killed
//! by PID when its test ends, pass or fail, and dies with the thread that
//! started it (`PR_SET_PDEATHSIG`). All traffic is on 127.0.0.1. The tests
//! run one at a time.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::etcd::{etcd_available, free_port, loopback_url, Etcd, EtcdConfig, TempDir};
use support::peer::Peer;

/// The bound for steps that take one round trip or a few.
const SHORT: Duration = Duration::from_secs(20);
/// The bound for writing 10 000 keys and for etcd's snapshot retries, on a
/// slow shared machine.
const LONG: Duration = Duration::from_secs(120);
/// etcd's heartbeat and election timeout: fast enough that the snapshot
/// retries come quickly, slow enough that a loaded machine does not make
/// etcd lose its quorum (it checks it every election timeout).
const TIMERS_MS: (u64, u64) = (25, 500);
/// The largest growth of B's peak RSS allowed from its first failed transfer
/// to its successful one. A receiver that held each attempt's database
/// would grow by about the database's size, 20 MiB, per attempt.
const MAX_PEAK_GROWTH_KB: u64 = 8 * 1024;

/// One etcd test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// The cluster

/// etcd, A and B, as the tests stage them.
struct Cluster {
    etcd: Etcd,
    a: Peer,
    b: Peer,
    /// B's data dir, where its snapshots go.
    b_data: PathBuf,
    _dir: TempDir,
}

/// How B's first snapshot transfers fail: `None`, or `(count, mode)` for
/// `--fail-snapshots count --fail-mode mode`.
type Failures = Option<(u64, &'static str)>;

/// Starts A, then B held down, then etcd, and waits until etcd is healthy
/// (it has A's vote and acks). Retried with fresh ports when a port was
/// taken between picking it and binding it.
fn start_cluster(token: &str, failures: Failures) -> Cluster {
    let mut errors = Vec::new();
    for _ in 0..3 {
        let dir = TempDir::new("rafthttp-etcd-snapshot").expect("temp dir");
        let (a_url, b_url) = (loopback_url(free_port()), loopback_url(free_port()));
        let config = EtcdConfig::new("etcd", token)
            .member("a", &a_url)
            .member("b", &b_url)
            .timers(TIMERS_MS.0, TIMERS_MS.1)
            .arg("--snapshot-count", "100");
        let member_args = |name: &str, url: &str| -> Vec<String> {
            [
                "--name",
                name,
                "--initial-cluster",
                &config.initial_cluster(),
                "--initial-cluster-token",
                token,
                "--listen-peer-urls",
                url,
            ]
            .map(str::to_owned)
            .to_vec()
        };
        let mut a = Peer::spawn("a", &member_args("a", &a_url), dir.path());
        if let Err(e) = a.try_wait_for(SHORT, |e| e["event"] == "up") {
            errors.push(format!("a: {e}\n{}", a.log_tail(5)));
            continue;
        }
        let b_data = dir.path().join("snap");
        let mut b_args = member_args("b", &b_url);
        b_args.extend(
            [
                "--data-dir",
                &b_data.display().to_string(),
                "--down-until-signal",
                "--events",
            ]
            .map(str::to_owned),
        );
        if let Some((count, mode)) = failures {
            b_args.extend([
                "--fail-snapshots".to_owned(),
                count.to_string(),
                "--fail-mode".to_owned(),
                mode.to_owned(),
            ]);
        }
        let mut b = Peer::spawn("b", &b_args, dir.path());
        if let Err(e) = b.try_wait_for(SHORT, |e| e["event"] == "down") {
            errors.push(format!("b: {e}\n{}", b.log_tail(5)));
            continue;
        }
        match Etcd::start(config) {
            Ok(etcd) => {
                etcd.wait_healthy(SHORT).expect("etcd healthy with A");
                return Cluster {
                    etcd,
                    a,
                    b,
                    b_data,
                    _dir: dir,
                };
            }
            Err(e) => errors.push(e),
        }
    }
    panic!("the cluster did not start:\n{}", errors.join("\n---\n"));
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// etcd's status as `etcdctl endpoint status -w json` gives it.
fn endpoint_status(etcd: &Etcd) -> Value {
    let out = etcd.etcdctl(&["endpoint", "status", "-w", "json"], SHORT);
    assert!(out.status.success(), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    status[0]["Status"].clone()
}

/// etcd's log lines whose message is `msg`, as JSON.
fn etcd_log(etcd: &Etcd, msg: &str) -> Vec<Value> {
    etcd.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["msg"] == msg)
        .collect()
}

fn kb(event: &Value) -> u64 {
    event["memory"]["vm_hwm_kb"]
        .as_u64()
        .expect("VmHWM in the event")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The whole catch-up, with `failures` injected in B's first transfers.
fn catch_up(token: &str, failures: Failures) {
    let started = Instant::now();
    let mut cluster = start_cluster(token, failures);
    let setup = started.elapsed();
    let etcd = &cluster.etcd;

    // 10 000 puts of 1 KiB from 50 clients: 10 000 raft entries.
    let t = Instant::now();
    let out = etcd.etcdctl(&["check", "datascale"], LONG);
    assert!(out.status.success(), "datascale: {}", text(&out));
    let datascale = t.elapsed();

    // etcd compacts its log behind each snapshot, keeping 5 000 entries.
    // B's log ends at the 3 bootstrap entries, so once the log starts after
    // them, only a snapshot can catch B up.
    let deadline = Instant::now() + SHORT;
    let compacted = loop {
        let index = etcd_log(etcd, "compacted Raft logs")
            .iter()
            .filter_map(|l| l["compact-index"].as_u64())
            .max()
            .unwrap_or(0);
        if index > 1_000 {
            break index;
        }
        assert!(Instant::now() < deadline, "etcd compacted only to {index}");
        thread::sleep(Duration::from_millis(50));
    };
    let before = endpoint_status(etcd);
    let _ = cluster.b.try_wait_for(Duration::ZERO, |_| false);
    assert!(
        cluster.b.seen("snapshot_begin").is_empty(),
        "B was down, yet received a snapshot"
    );

    // B comes up; etcd sends its database at B's first heartbeat answer.
    let up_at = Instant::now();
    cluster.b.signal(libc::SIGUSR1);
    let up = cluster
        .b
        .wait_for("up event", SHORT, |e| e["event"] == "up");
    let saved = cluster
        .b
        .wait_for("saved snapshot", LONG, |e| e["event"] == "snapshot_saved");
    let caught_up = up_at.elapsed();
    let answered = cluster.b.wait_for("the 204", SHORT, |e| {
        e["event"] == "snapshot_answer" && e["status"] == 204
    });

    // The attempts: the failed ones as injected, then the one that worked.
    // A cut request may have no answer: its connection is gone.
    let (expected_failures, mode) = failures.unwrap_or((0, "none"));
    let requests = cluster.b.seen("snapshot_request");
    let answers = cluster.b.seen("snapshot_answer");
    let discarded = cluster.b.seen("snapshot_discarded");
    let begun = cluster.b.seen("snapshot_begin");
    assert_eq!(requests.len() as u64, expected_failures + 1, "{requests:?}");
    assert_eq!(begun.len(), requests.len(), "{begun:?}");
    assert_eq!(discarded.len() as u64, expected_failures, "{discarded:?}");
    for (k, request) in requests.iter().enumerate() {
        let attempt = k as u64 + 1;
        assert_eq!(request["attempt"], attempt);
        let answer = answers.iter().find(|a| a["attempt"] == attempt);
        let status = answer.and_then(|a| a["status"].as_u64());
        let cut = request["cut"].as_bool();
        match (attempt <= expected_failures, mode) {
            (false, _) => assert_eq!((cut, status), (Some(false), Some(204)), "{request}"),
            (true, "500") => assert_eq!((cut, status), (Some(false), Some(500)), "{request}"),
            (true, _) => assert!(cut == Some(true) && status != Some(204), "{request}"),
        }
    }
    assert_eq!(answered["attempt"], expected_failures + 1);
    for d in &discarded {
        assert!(
            d["written"].as_u64() > Some(0),
            "a temp file with data was discarded: {d}"
        );
    }

    // The saved file is etcd's database, whole.
    let index = saved["index"].as_u64().expect("snapshot index");
    let size = saved["size"].as_u64().expect("database size");
    let path = PathBuf::from(saved["path"].as_str().expect("database path"));
    assert_eq!(
        path,
        cluster.b_data.join(format!("{index:016x}.snap.db")),
        "etcd's file name"
    );
    assert_eq!(saved["answer"], index, "acked at the snapshot's index");
    assert!(
        index > compacted,
        "index {index} after compaction {compacted}"
    );
    assert_eq!(fs::metadata(&path).expect("saved file").len(), size);
    assert_eq!(
        files(&cluster.b_data),
        [format!("{index:016x}.snap.db")],
        "only the database: no temp file left"
    );
    let status = etcd.etcdctl(
        &[
            "snapshot",
            "status",
            &path.display().to_string(),
            "-w",
            "json",
        ],
        SHORT,
    );
    assert!(status.status.success(), "{}", text(&status));
    let status: Value = serde_json::from_slice(&status.stdout).expect("snapshot status JSON");
    assert_eq!(status["totalSize"].as_u64(), Some(size), "{status}");
    assert!(
        status["totalKey"].as_u64() >= Some(10_000),
        "etcd's keys: {status}"
    );

    // etcd sent it: one success, and one failure per injected failure.
    let sent = etcd_log(etcd, "sent database snapshot");
    let failed = etcd_log(etcd, "failed to send database snapshot");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(failed.len() as u64, expected_failures, "{failed:?}");

    // etcd then replicates to B: a put made now reaches B as a MsgApp that
    // B acks, past the snapshot.
    let put = etcd.etcdctl(&["put", "after-catch-up", "yes"], SHORT);
    assert!(put.status.success(), "{}", text(&put));
    let committed = endpoint_status(etcd)["raftIndex"]
        .as_u64()
        .expect("raftIndex");
    cluster.b.wait_for("ack of the put", SHORT, |e| {
        e["event"] == "append" && e["reject"] == false && e["answer"].as_u64() >= Some(committed)
    });
    let appends = cluster.b.seen("append");
    let rejected = appends.iter().filter(|e| e["reject"] == true).count();
    // etcd's raft probes from its own snapshot's index, which can sit a
    // little below the merged snapshot's (etcd merges at its applied index),
    // but never below the compaction: nothing was replayed from the log.
    for a in &appends {
        assert!(
            a["index"].as_u64() > Some(compacted),
            "etcd resumed from the snapshot: {a}"
        );
    }

    // Memory: B's peak RSS, from before the first transfer to the success.
    let up_kb = kb(&up);
    let saved_kb = kb(&saved);
    assert!(
        (saved_kb - up_kb) * 1024 < size / 2,
        "B's peak grew by {} KiB receiving a {size}-byte database",
        saved_kb - up_kb
    );
    if let Some(first) = discarded.first() {
        let growth = saved_kb.saturating_sub(kb(first));
        assert!(
            growth <= MAX_PEAK_GROWTH_KB,
            "B's peak RSS grew by {growth} KiB across {} attempts",
            requests.len()
        );
    }

    // etcd first, while A and B can still take its leadership transfer.
    let checked = started.elapsed();
    let _ = cluster.etcd.terminate(SHORT);
    cluster.b.stop(SHORT);
    cluster.a.stop(SHORT);
    let a_counts = cluster.a.last_counts().unwrap_or_default();

    println!("etcd snapshot catch-up ({mode} x {expected_failures}):");
    println!(
        "  etcd: {} raft entries, db {} bytes, log compacted to {compacted}",
        before["raftIndex"], before["dbSize"]
    );
    println!(
        "  database received: {size} bytes ({:.1} MiB) at index {index}, \
         {:.0} ms from the request to the fsynced file, {:.3} s from SIGUSR1",
        mib(size),
        saved["took_ms"].as_f64().unwrap_or(f64::NAN),
        caught_up.as_secs_f64()
    );
    println!(
        "  attempts: {} ({expected_failures} failed as injected); etcd logged {} failure(s): {:?}",
        requests.len(),
        failed.len(),
        failed
            .iter()
            .map(|f| f["error"].as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
    );
    let peaks: Vec<u64> = discarded.iter().map(kb).collect();
    println!(
        "  B's peak RSS (VmHWM): {up_kb} KiB when up, {peaks:?} KiB after each failure, \
         {saved_kb} KiB once saved"
    );
    println!(
        "  after the snapshot: {} MsgApp to B, {rejected} rejected, the put at {committed} acked",
        appends.len()
    );
    println!(
        "  A: {} MsgApp received, {} rejected (out of order over etcd's 4 connections) and recovered",
        a_counts["in"]["MsgApp"], a_counts["rejected_appends"]
    );
    println!(
        "  timings: setup {:.1} s, datascale {:.1} s, checks done at {:.1} s, stopped at {:.1} s",
        setup.as_secs_f64(),
        datascale.as_secs_f64(),
        checked.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn etcd_catches_up_our_member_by_streaming_its_database() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    catch_up("tok-snap", None);
}

#[test]
fn etcd_retries_when_our_receiver_answers_500_until_it_succeeds() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    catch_up("tok-snap-500", Some((3, "500")));
}

#[test]
fn etcd_retries_when_our_receiver_cuts_the_connection_until_it_succeeds() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    catch_up("tok-snap-cut", Some((3, "cut")));
}

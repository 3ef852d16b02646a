//! etcd's streams as etcd's own log tells them: which of the four streams
//! with a remote peer etcd says it established.

#![allow(dead_code)] // each test binary uses a different part of it

use std::time::{Duration, Instant};

use super::etcd::Etcd;

/// What etcd logs when one of its stream writers or readers is up
/// (`rafthttp/stream.go`).
pub const ESTABLISHED: &str = "established TCP streaming connection with remote peer";

/// etcd's log lines saying a stream with `remote` is up, as
/// `(kind, stream type)`: `writer`/`reader` and `stream Message`/`stream
/// MsgApp v2`.
pub fn established(log: &str, remote: &str) -> Vec<(String, String)> {
    let field = |line: &str, key: &str| {
        let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_owned())
    };
    let mut found: Vec<(String, String)> = log
        .lines()
        .filter(|l| {
            l.contains(ESTABLISHED) && field(l, "remote-peer-id").as_deref() == Some(remote)
        })
        .filter_map(|l| {
            let writer = field(l, "stream-writer-type").map(|t| ("writer".to_owned(), t));
            writer.or_else(|| field(l, "stream-reader-type").map(|t| ("reader".to_owned(), t)))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The four streams etcd reports, as [`established`] lists them.
pub fn all_four() -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = [
        ("reader", "stream MsgApp v2"),
        ("reader", "stream Message"),
        ("writer", "stream MsgApp v2"),
        ("writer", "stream Message"),
    ]
    .iter()
    .map(|(k, t)| (k.to_string(), t.to_string()))
    .collect();
    want.sort();
    want
}

/// Waits until etcd's log shows all four streams with `remote` up.
pub fn wait_all_four(etcd: &Etcd, remote: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let found = established(&etcd.log(), remote);
        if found == all_four() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "etcd established only {found:?}; log tail:\n{}",
            etcd.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until etcd's log, from byte `offset` on, shows all four streams
/// with `remote` up: streams established again after `offset` was taken
/// (e.g. `etcd.log().len()` before a peer restarts), not the old ones.
pub fn wait_all_four_since(etcd: &Etcd, remote: &str, offset: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let log = etcd.log();
        let found = established(log.get(offset..).unwrap_or(""), remote);
        if found == all_four() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "since byte {offset}, etcd established only {found:?}; log tail:\n{}",
            etcd.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! Our metric families against a real etcd 3.4.23's own `/metrics`: the
//! same names, types, help texts and buckets for all fifteen rafthttp
//! families.
//!
//! etcd, like every client_golang program, leaves a labelled family out of
//! its exposition until it has a series, so the test makes three real
//! etcd members produce every one of them:
//!
//! - A and B start with C in their initial cluster but C down: their posts
//!   to C fail (`peer_sent_failures_total`), they exchange traffic
//!   (`peer_sent_bytes_total`, `peer_received_bytes_total`,
//!   `active_peers`) and probe each other
//!   (`peer_round_trip_time_seconds`);
//! - `etcdctl check datascale` writes 10 000 keys with
//!   `--snapshot-count 100`, so their logs are compacted past C's;
//! - C starts behind a loopback proxy that cuts the first
//!   `POST /raft/snapshot` (`snapshot_send_failures`); the leader retries
//!   and C receives the database (`snapshot_send_*`, `snapshot_receive_*`
//!   on C);
//! - a garbage `POST /raft` with the right headers makes A count a
//!   `peer_received_failures_total`, and a `GET /raft/snapshot` a
//!   `snapshot_receive_failures`;
//! - C stops, and A and B count it in `disconnected_peers_total`.
//!
//! All traffic is on 127.0.0.1; every etcd dies with the test.

mod support;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rafthttp_pipeline::metrics::prometheus::{Encoder, Registry, TextEncoder};
use rafthttp_pipeline::metrics::Metrics;
use rafthttp_pipeline::Id;
use serde_json::Value;
use support::etcd::{etcd_available, free_port, http_get, loopback_url, Etcd, EtcdConfig};

/// The bound on steps of a round trip or a few.
const SHORT: Duration = Duration::from_secs(30);
/// The bound on writing 10 000 keys and on catching C up, on a slow shared
/// machine.
const LONG: Duration = Duration::from_secs(180);
/// Heartbeat and election timeout, in ms.
const TIMERS_MS: (u64, u64) = (25, 500);

/// One family as an exposition describes it.
#[derive(Debug, Clone, PartialEq)]
struct Family {
    kind: String,
    help: String,
    /// The `le` values of a histogram, as printed, `+Inf` included.
    buckets: Vec<String>,
}

/// The families in a text exposition.
fn families(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    let blank = || Family {
        kind: String::new(),
        help: String::new(),
        buckets: Vec::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.into()).or_insert_with(blank).help = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            out.entry(name.into()).or_insert_with(blank).kind = kind.into();
        } else if let Some((name, le)) = bucket(line) {
            let family = out.get_mut(name).expect("a bucket after its TYPE");
            if !family.buckets.iter().any(|b| b == le) {
                family.buckets.push(le.into());
            }
        }
    }
    out
}

/// `(family, le)` of a `_bucket` sample line.
fn bucket(line: &str) -> Option<(&str, &str)> {
    let (name, labels) = line.split_once('{')?;
    let family = name.strip_suffix("_bucket")?;
    let le = labels.split("le=\"").nth(1)?.split('"').next()?;
    Some((family, le))
}

/// Our families, each given one series.
fn ours() -> BTreeMap<String, Family> {
    let registry = Registry::new();
    let m = Metrics::register(&registry).unwrap();
    let (a, b) = (Id(1), Id(2));
    m.peer_active(a, b);
    m.peer_inactive(a, b);
    m.sent(b, 1);
    m.send_failed(b);
    m.received(b, 1);
    m.receive_failed(Some(b));
    m.round_trip(b, Duration::from_millis(1));
    drop(m.snapshot_send_started(b));
    m.snapshot_sent(b, 1, Duration::from_secs(1));
    m.snapshot_send_failed(b);
    drop(m.snapshot_receive_started(b));
    m.snapshot_received(b, Duration::from_secs(1));
    m.snapshot_receive_failed(Some(b));
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    families(&String::from_utf8(text).unwrap())
}

/// The `etcd_network_*` families on a member's client port `/metrics`.
fn try_scrape(etcd: &Etcd) -> io::Result<BTreeMap<String, Family>> {
    let answer = http_get(("127.0.0.1", etcd.config.client_port), "/metrics")?;
    assert_eq!(answer.status, 200);
    Ok(families(&answer.body)
        .into_iter()
        .filter(|(name, _)| name.starts_with("etcd_network_"))
        .collect())
}

fn scrape(etcd: &Etcd) -> BTreeMap<String, Family> {
    try_scrape(etcd).expect("GET /metrics")
}

/// Scrapes `members` until one of them has `family`, at most `bound`. A
/// member busy applying a snapshot may not answer in time: that counts as
/// not yet.
fn wait_for_family(members: &[&Etcd], family: &str, bound: Duration) {
    let deadline = Instant::now() + bound;
    let has = |m: &&Etcd| try_scrape(m).is_ok_and(|f| f.contains_key(family));
    while !members.iter().any(has) {
        assert!(
            Instant::now() < deadline,
            "no etcd exposed {family} within {bound:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// etcd's log lines whose message is `msg`.
fn etcd_log(etcd: &Etcd, msg: &str) -> Vec<Value> {
    etcd.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["msg"] == msg)
        .collect()
}

/// A loopback TCP proxy in front of C's peer port that cuts the first
/// connection carrying `POST /raft/snapshot` and passes everything else.
struct Proxy {
    port: u16,
    cut: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (cut2, stop2) = (cut.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let cut = cut2.clone();
                        thread::spawn(move || {
                            let _ = relay(client, upstream, &cut);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return,
                }
            }
        });
        Proxy { port, cut, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relay(client: TcpStream, upstream: u16, cut: &AtomicUsize) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream))?;
    let (mut server_r, mut client_w) = (server.try_clone()?, client.try_clone()?);
    let down = thread::spawn(move || {
        let _ = io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let _ = forward_until_snapshot(client.try_clone()?, server.try_clone()?, cut);
    let _ = server.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}

/// Copies `from` to `to` until EOF, or until the first
/// `POST /raft/snapshot` seen by any relay, where it cuts both
/// connections. etcd reuses kept-alive connections, so the request may
/// come at any point of one.
fn forward_until_snapshot(
    mut from: TcpStream,
    mut to: TcpStream,
    cut: &AtomicUsize,
) -> io::Result<()> {
    const SNAPSHOT: &[u8] = b"POST /raft/snapshot";
    let mut buf = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        tail.extend_from_slice(&buf[..n]);
        let seen = tail.windows(SNAPSHOT.len()).any(|w| w == SNAPSHOT);
        if seen && cut.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = from.shutdown(Shutdown::Both);
            return to.shutdown(Shutdown::Both);
        }
        let keep = tail.len().saturating_sub(SNAPSHOT.len() - 1);
        tail.drain(..keep);
        to.write_all(&buf[..n])?;
    }
}

/// A `POST /raft` that passes etcd's header checks with a body that is no
/// raft message: etcd answers 400 and counts a receive failure.
fn post_garbage(etcd: &Etcd) -> String {
    let port = etcd.config.peer_port;
    // etcd sets its cluster id on every /raft answer, even a refusal.
    let probe = raw_post(port, "0", b"")
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-etcd-cluster-id:")
                .map(|v| v.trim().to_owned())
        })
        .expect("X-Etcd-Cluster-ID on etcd's answer");
    raw_post(port, &probe, &[0xff; 16])
}

fn raw_post(port: u16, cluster: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    let head = format!(
        "POST /raft HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/protobuf\r\n\
         X-Server-From: 99\r\nX-Server-Version: 3.4.23\r\nX-Min-Cluster-Version: 3.0.0\r\n\
         X-Etcd-Cluster-ID: {cluster}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn member(name: &str, token: &str, peer_port: u16) -> EtcdConfig {
    let mut config = EtcdConfig::new(name, token)
        .timers(TIMERS_MS.0, TIMERS_MS.1)
        .arg("--snapshot-count", "100");
    config.peer_port = peer_port;
    config
}

#[test]
fn our_families_are_the_ones_etcd_3_4_23_exposes() {
    if !etcd_available() {
        return;
    }
    let token = format!("metrics-{}", std::process::id());
    let c_listen = free_port();
    let proxy = Proxy::start(c_listen);
    let (a_port, b_port) = (free_port(), free_port());
    let urls = [
        ("a", loopback_url(a_port)),
        ("b", loopback_url(b_port)),
        ("c", loopback_url(proxy.port)),
    ];
    let config = |name: &str, port: u16| {
        urls.iter()
            .filter(|(n, _)| *n != name)
            .fold(member(name, &token, port), |c, (n, u)| c.member(n, u))
    };
    let a = Etcd::start(config("a", a_port)).expect("etcd a");
    let b = Etcd::start(config("b", b_port)).expect("etcd b");
    a.wait_healthy(SHORT).unwrap();

    let out = a.etcdctl(&["check", "datascale"], LONG);
    assert!(out.status.success(), "datascale: {out:?}");
    let deadline = Instant::now() + SHORT;
    while [&a, &b]
        .iter()
        .all(|m| etcd_log(m, "compacted Raft logs").is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "no compaction after 10 000 writes"
        );
        thread::sleep(Duration::from_millis(50));
    }

    let c_config = config("c", proxy.port).arg("--listen-peer-urls", &loopback_url(c_listen));
    let mut c = Etcd::start(c_config).expect("etcd c");
    wait_for_family(&[&c], "etcd_network_snapshot_receive_success", LONG);
    assert!(
        proxy.cut.load(Ordering::SeqCst) >= 2,
        "a retry followed the cut"
    );
    let answer = post_garbage(&a);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let refused = http_get(("127.0.0.1", a.config.peer_port), "/raft/snapshot").unwrap();
    assert_eq!(refused.status, 405, "etcd takes only POST there");
    wait_for_family(
        &[&a, &b],
        "etcd_network_peer_round_trip_time_seconds",
        SHORT,
    );
    let from_c = scrape(&c);
    c.terminate(SHORT).expect("c stops");
    wait_for_family(&[&a, &b], "etcd_network_disconnected_peers_total", SHORT);

    let mut theirs = from_c;
    for m in [&a, &b] {
        for (name, family) in scrape(m) {
            if let Some(seen) = theirs.get(&name) {
                assert_eq!(seen, &family, "{name} differs between members");
            }
            theirs.insert(name, family);
        }
    }
    let ours = ours();
    assert_eq!(ours.len(), 15);
    for (name, family) in &ours {
        assert_eq!(theirs.get(name), Some(family), "{name}");
    }
}

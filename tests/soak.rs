//! The soak: a million messages through one pipeline and a fault proxy that
//! fails 1% of the requests (alternately a reset and a 500), to a receiver
//! in a child process, so that each side's memory is its own. Both RSS
//! must stay flat after warm-up, the file descriptors must come back, and
//! the counters must add up.
//!
//! Long, so ignored by default; run it with
//! `cargo test --release -p rafthttp-pipeline --test soak -- --ignored --nocapture`
//! (`SOAK_MESSAGES` sets the count, default one million).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::{
    Envelope, GetStats, Inbound, LocalMember, PipelineActor, PipelineConfig, ProcessError,
    Recipients, ReportSnapshot, ReportUnreachable, Stop,
};
use support::member::routes;
use support::proxy::{Fault, FaultProxy};
use support::server;
use support::*;

/// Messages sent unless `SOAK_MESSAGES` says otherwise.
const MESSAGES: u64 = 1_000_000;
/// One request in this many fails.
const FAULT_EVERY: usize = 100;
/// Messages of the soak sent before its RSS baseline is taken (buffers,
/// pools and allocator arenas reach their working size).
const WARM_UP: u64 = 20_000;
/// Messages of the warm-up run before the soak, which starts every lazily
/// made thread and descriptor.
const WARM_UP_MESSAGES: u64 = 1_000;
/// How far either side's RSS may rise above its baseline: the bound the
/// soak states. The working set is a few dozen buffers of 64 messages and
/// four connections; a leak of even 100 bytes a message would pass it.
const RSS_BOUND_KIB: u64 = 32 * 1024;
/// Messages offered between two looks at the queue.
const WINDOW: u64 = 16;
/// The queue length at which the sender waits for room: with [`WINDOW`]
/// more, the queue stays under its 64 places, so no message is dropped.
const ROOM: u64 = 32;
/// The environment variable that makes [`soak_receiver_role`] serve.
const ROLE: &str = "SOAK_RECEIVER_ROLE";

/// The receiver's raft: counts what it takes and notes any message taken
/// twice, in a bitmap of fixed size (no growth with the run).
struct CountingRaft {
    seen: Vec<u64>,
    taken: u64,
    twice: u64,
}

impl Actor for CountingRaft {
    type Context = Context<Self>;
}

impl Handler<Inbound> for CountingRaft {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let index = inbound.message.index as usize;
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        match self.seen.get_mut(word) {
            Some(w) if *w & bit != 0 => self.twice += 1,
            Some(w) => *w |= bit,
            None => self.twice += 1,
        }
        self.taken += 1;
        Ok(())
    }
}

/// Asks the [`CountingRaft`] for `(taken, twice)`.
#[derive(Message)]
#[rtype(result = "(u64, u64)")]
struct Counts;

impl Handler<Counts> for CountingRaft {
    type Result = MessageResult<Counts>;

    fn handle(&mut self, _: Counts, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.taken, self.twice))
    }
}

/// The sender's raft: counts the reports, keeping none.
#[derive(Default)]
struct CountingReports {
    unreachable: u64,
}

impl Actor for CountingReports {
    type Context = Context<Self>;
}

impl Handler<ReportUnreachable> for CountingReports {
    type Result = ();

    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {
        self.unreachable += 1;
    }
}

impl Handler<ReportSnapshot> for CountingReports {
    type Result = ();

    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

/// Asks the [`CountingReports`] for the unreachable count.
#[derive(Message)]
#[rtype(result = "u64")]
struct Unreachable;

impl Handler<Unreachable> for CountingReports {
    type Result = u64;

    fn handle(&mut self, _: Unreachable, _: &mut Context<Self>) -> u64 {
        self.unreachable
    }
}

fn messages() -> u64 {
    std::env::var("SOAK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MESSAGES)
}

/// The child's part: serves member 2 and prints `LISTEN <addr>`; on a line
/// on stdin, prints `COUNTS <taken> <twice>`; exits at end of input. Does
/// nothing unless [`ROLE`] is set, so that `--ignored` runs stay short.
#[actix_rt::test]
#[ignore = "long: the soak's receiver, started by the soak itself"]
async fn soak_receiver_role() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let (_, peer, cluster) = ids();
    let raft = CountingRaft {
        seen: vec![0; (messages() + WARM_UP_MESSAGES) as usize / 64 + 2],
        taken: 0,
        twice: 0,
    }
    .start();
    let config = rafthttp_pipeline::receiver::ReceiverConfig::new(
        &LocalMember::new(peer, cluster),
        raft.clone().recipient(),
    );
    let (addr, _server) = server::serve(routes(config), 0, server::no_hook);
    println!("LISTEN {addr}");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() || tx.send(()).is_err() {
                return;
            }
        }
    });
    while rx.recv().await.is_some() {
        let (taken, twice) = raft.send(Counts).await.expect("raft alive");
        println!("COUNTS {taken} {twice}");
    }
}

/// The receiver in a child process.
struct Receiver {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    addr: SocketAddr,
}

impl Receiver {
    fn start() -> Receiver {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--ignored", "--exact", "soak_receiver_role", "--nocapture"])
            .env(ROLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = Receiver::line(&mut lines, "LISTEN ")
            .parse()
            .expect("an address");
        Receiver { child, lines, addr }
    }

    fn line(lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>, tag: &str) -> String {
        for line in lines.by_ref() {
            if let Some(rest) = line.expect("read the receiver").strip_prefix(tag) {
                return rest.to_owned();
            }
        }
        panic!("the receiver ended before {tag}");
    }

    /// `(taken, twice)` from the receiver's raft.
    fn counts(&mut self) -> (u64, u64) {
        writeln!(self.child.stdin.as_mut().unwrap()).expect("ask the receiver");
        let line = Receiver::line(&mut self.lines, "COUNTS ");
        let mut n = line.split(' ').map(|v| v.parse::<u64>().expect("a count"));
        (n.next().unwrap(), n.next().unwrap())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// RSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

/// Waits until fewer than [`ROOM`] messages are queued. Asks every
/// millisecond: the pause paces the asking and orders nothing.
async fn wait_for_room(p: &Addr<PipelineActor>) {
    while p.send(GetStats).await.expect("pipeline alive").queued >= ROOM {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sends `n` messages from `first` on through a pipeline to `url` and stops
/// it: the warm-up that starts every lazily made thread, pool and
/// descriptor before the baselines are taken.
async fn warm_up(url: &str, first: u64, n: u64) {
    let reports = CountingReports::default().start();
    let p =
        PipelineActor::start(config(url), Recipients::from_addr(&reports)).expect("valid config");
    for index in first..first + n {
        let _ = p.send(Envelope(message(MessageType::MsgApp, index))).await;
        if index % WINDOW == 0 {
            wait_for_room(&p).await;
        }
    }
    p.send(Stop).await.expect("pipeline alive");
}

fn config(url: &str) -> PipelineConfig {
    let (local, peer, cluster) = ids();
    PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer,
        vec![url.to_owned()],
    )
}

/// The descriptors of `pid`, as `fd -> target` lines, for the record.
fn fd_list(pid: u32) -> Vec<String> {
    let mut list: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let target = std::fs::read_link(e.path()).unwrap_or_default();
                    format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        target.display()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort();
    list
}

/// The receiver's descriptors once its side of the closed connections is
/// closed too: at most `before`, waiting at most [`WAIT`] for it.
fn settled_fds(pid: u32, before: usize) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = fds(pid);
        if now <= before || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The receiver's descriptors once they stop changing (its side of the
/// warm-up's connections closed): the same count 200 ms apart, waiting at
/// most [`WAIT`].
fn steady_fds(pid: u32) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut last = fds(pid);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = fds(pid);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Start, peak and end of one process's RSS, in KiB.
#[derive(Debug, Default)]
struct Rss {
    start: u64,
    peak: u64,
    end: u64,
}

impl Rss {
    fn sample(&mut self, pid: u32, baseline: bool) {
        let now = rss_kib(pid);
        if baseline {
            self.start = now;
        }
        self.peak = self.peak.max(now);
        self.end = now;
    }
}

#[actix_rt::test]
#[ignore = "long: run with cargo test --release --test soak -- --ignored --nocapture"]
async fn soak_one_million_messages_with_one_percent_faults() {
    let total = messages();
    let mut receiver = Receiver::start();
    let me = std::process::id();
    let proxy = FaultProxy::start(receiver.addr).await;
    // Warm up through a passing proxy, with indexes past the soak's.
    warm_up(&proxy.url, total + 1, WARM_UP_MESSAGES).await;
    proxy.wait_idle().await;
    let (fds_sender_before, fds_receiver_before) = (fds(me), steady_fds(receiver.pid()));
    let (list_sender_before, list_receiver_before) = (fd_list(me), fd_list(receiver.pid()));
    let (taken_before, _) = receiver.counts();
    proxy.set(Fault::Flaky(FAULT_EVERY));
    let reports = CountingReports::default().start();
    let p = PipelineActor::start(config(&proxy.url), Recipients::from_addr(&reports))
        .expect("valid config");

    let (mut sender_rss, mut receiver_rss) = (Rss::default(), Rss::default());
    let started = Instant::now();
    let mut offered = 0;
    while offered < total {
        let index = offered + 1;
        let _ = p
            .send(Envelope(message(MessageType::MsgApp, index)))
            .await
            .expect("pipeline alive");
        offered += 1;
        if offered % WINDOW == 0 {
            wait_for_room(&p).await;
        }
        if offered % 10_000 == 0 {
            let baseline = offered == WARM_UP;
            sender_rss.sample(me, baseline);
            receiver_rss.sample(receiver.pid(), baseline);
        }
    }
    let offered = offered;
    wait_stats(&p, "every outcome", |s| s.queued == 0 && s.in_flight == 0).await;
    let took = started.elapsed();
    let stats = tokio::time::timeout(Duration::from_secs(5), p.send(Stop))
        .await
        .expect("Stop finishes promptly")
        .expect("pipeline alive");
    proxy.wait_idle().await;
    sender_rss.sample(me, false);
    receiver_rss.sample(receiver.pid(), false);
    let (taken, twice) = receiver.counts();
    let taken = taken - taken_before;
    let unreachable = reports.send(Unreachable).await.unwrap();
    let (seen, injected) = proxy.flaky_counts();
    let fds_sender_after = fds(me);
    let fds_receiver_after = settled_fds(receiver.pid(), fds_receiver_before);

    println!(
        "soak: {offered} messages in {took:?} ({:.0}/s); {stats:?}",
        offered as f64 / took.as_secs_f64()
    );
    println!("soak: proxy saw {seen} requests and failed {injected}; receiver took {taken}, twice {twice}; {unreachable} unreachable reports");
    println!("soak: sender RSS KiB {sender_rss:?}; receiver RSS KiB {receiver_rss:?}");
    println!(
        "soak: fds sender {fds_sender_before} -> {fds_sender_after}, receiver {fds_receiver_before} -> {fds_receiver_after}"
    );

    assert_eq!(stats.offered, offered);
    assert_eq!(stats.delivered + stats.reported(), offered, "{stats:?}");
    assert_eq!(
        unreachable,
        stats.reported(),
        "one report per undelivered message"
    );
    assert_eq!(twice, 0, "no message arrived twice");
    assert_eq!(
        taken, stats.delivered,
        "the failed requests never reached raft"
    );
    assert_eq!(
        stats.failed as usize, injected,
        "every injected fault, and only those, failed a message"
    );
    assert_eq!(
        seen as u64,
        stats.delivered + stats.failed,
        "every send went through the proxy"
    );
    assert_eq!(injected, seen / FAULT_EVERY, "1% failed");
    for (side, rss) in [("sender", &sender_rss), ("receiver", &receiver_rss)] {
        assert!(
            rss.peak <= rss.start + RSS_BOUND_KIB,
            "{side} RSS stays within {RSS_BOUND_KIB} KiB of its baseline: {rss:?}"
        );
    }
    if fds_sender_after != fds_sender_before || fds_receiver_after > fds_receiver_before {
        let (sender, receiver) = (fd_list(me), fd_list(receiver.pid()));
        println!("soak: sender fds before {list_sender_before:?}\nafter {sender:?}");
        println!("soak: receiver fds before {list_receiver_before:?}\nafter {receiver:?}");
    }
    assert_eq!(stats.dropped, 0, "the sender never overfilled the queue");
    assert_eq!(
        fds_sender_after, fds_sender_before,
        "the sender's descriptors come back"
    );
    assert!(
        fds_receiver_after <= fds_receiver_before,
        "the receiver's descriptors come back"
    );
    drop(receiver.child.stdin.take());
    let _ = receiver.child.wait();
}

//! The fault battery: a pipeline posts through a loopback fault proxy
//! ([`support::proxy`]) to a real receiver, and every case ends with the
//! accounting checked message by message, nothing left running, and a
//! `Stop` that finishes within a bound.
//!
//! Every message carries its own `index`, so the receiver's raft actor
//! shows which messages arrived: none twice, none that was not offered.
//! The pipeline's counters must add up (`offered == delivered +
//! reported`, nothing queued or in flight), raft must hear one
//! `ReportUnreachable` for every message not delivered and one
//! `ReportSnapshot` for every snapshot, and where the fault never lets a
//! request through whole, the messages raft received are exactly the
//! delivered ones.

mod support;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::receiver::{SnapshotConfig, SnapshotSink, SnapshotWriter};
use rafthttp_pipeline::{
    Envelope, Error, LocalMember, PipelineActor, PipelineConfig, PipelineStats, SendSnapshot,
    SnapshotStatus, Stop,
};
use support::member::Member;
use support::messages::snap;
use support::proxy::{Fault, FaultProxy};
use support::raft::IN_MEMORY;
use support::*;

/// The bound on `Stop`: it cancels what is queued and in flight, so it
/// never waits on the network.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Short timeouts, so that faults show within the battery's time.
const TIMEOUT: Duration = Duration::from_millis(400);

/// The bytes of every streamed snapshot.
const SNAPSHOT_BYTES: usize = 256 * 1024;

/// A sink that keeps nothing: it counts the bytes and stores "in memory".
#[derive(Debug, Clone)]
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
        Ok(PathBuf::from(IN_MEMORY))
    }
}

/// Whether the messages raft received must be exactly the delivered ones,
/// or may include some whose answer was lost to the fault or to `Stop`
/// (at most once, as etcd: the sender reports those as not delivered).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arrivals {
    Exact,
    AnswerMayBeLost,
}

/// A pipeline from member 1 through a fault proxy to member 2's real
/// receiver, and what was offered to it.
struct Rig {
    member: Member,
    proxy: FaultProxy,
    /// Member 1's raft: the pipeline's reports.
    rec: Recording,
    p: Addr<PipelineActor>,
    next: u64,
    offered: Vec<u64>,
    snapshots: u64,
}

impl Rig {
    /// The rig, with the pipeline posting to `urls(proxy)`.
    async fn start(urls: impl FnOnce(&FaultProxy) -> Vec<String>) -> Rig {
        let (local, peer, cluster) = ids();
        let member = Member::start(Recording::start(), peer, cluster, |c| {
            c.snapshots(SnapshotConfig::new().sink(Discard))
        });
        let proxy = FaultProxy::start(member.addr).await;
        let config = PipelineConfig::new(&LocalMember::new(local, cluster), peer, urls(&proxy))
            .dial_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .snapshot_stall_timeout(TIMEOUT);
        let rec = Recording::start();
        let p = PipelineActor::start(config, rec.recipients()).expect("valid config");
        Rig {
            member,
            proxy,
            rec,
            p,
            next: 1,
            offered: Vec::new(),
            snapshots: 0,
        }
    }

    /// A rig posting to the proxy alone.
    async fn through_proxy() -> Rig {
        Rig::start(|proxy| vec![proxy.url.clone()]).await
    }

    /// Offers `n` `MsgApp`s, each with its own index; a refused one
    /// (buffer full) counts as offered too, as it was reported.
    async fn offer(&mut self, n: usize) {
        for _ in 0..n {
            let index = self.take_index();
            let m = message(MessageType::MsgApp, index);
            let _ = self.p.send(Envelope(m)).await.expect("pipeline alive");
        }
    }

    /// Offers one streamed snapshot of [`SNAPSHOT_BYTES`].
    async fn offer_snapshot(&mut self) {
        let index = self.take_index();
        let mut m = snap(index);
        m.index = index;
        let body = futures::stream::iter(
            (0..SNAPSHOT_BYTES / 4096).map(|_| Ok::<_, io::Error>(Bytes::from(vec![7u8; 4096]))),
        );
        let send = SendSnapshot {
            message: m,
            body: Box::pin(body),
            size: SNAPSHOT_BYTES as u64,
        };
        let _ = self.p.send(send).await.expect("pipeline alive");
        self.snapshots += 1;
    }

    fn take_index(&mut self) -> u64 {
        let index = self.next;
        self.next += 1;
        self.offered.push(index);
        index
    }

    /// Waits until every message offered so far has its outcome.
    async fn settle(&self) -> PipelineStats {
        let offered = self.offered.len() as u64;
        wait_stats(&self.p, "every outcome", |s| {
            s.offered == offered && s.queued == 0 && s.in_flight == 0
        })
        .await
    }

    /// Waits until at least `n` messages in all were delivered.
    async fn delivered(&self, n: u64) -> PipelineStats {
        wait_stats(&self.p, "deliveries", |s| s.delivered >= n).await
    }

    /// Stops the pipeline within [`STOP_WITHIN`] and checks the accounting
    /// message by message and that nothing is left running.
    async fn finish(self, arrivals: Arrivals) -> PipelineStats {
        let stopping = std::time::Instant::now();
        let stats = tokio::time::timeout(STOP_WITHIN, self.p.send(Stop))
            .await
            .expect("Stop finishes promptly")
            .expect("pipeline alive");
        let stopped = stopping.elapsed();
        self.check(&stats, arrivals).await;
        self.proxy.wait_idle().await;
        println!(
            "stopped in {stopped:?}, connections closed {:?} after Stop; offered {} delivered {} failed {} dropped {} cancelled {}",
            stopping.elapsed(),
            stats.offered,
            stats.delivered,
            stats.failed,
            stats.dropped,
            stats.cancelled
        );
        self.member.stop().await;
        stats
    }

    async fn check(&self, stats: &PipelineStats, arrivals: Arrivals) {
        let offered = self.offered.len() as u64;
        assert_eq!(stats.offered, offered, "every offer counted: {stats:?}");
        assert_eq!((stats.queued, stats.in_flight), (0, 0), "{stats:?}");
        assert_eq!(stats.delivered + stats.reported(), offered, "{stats:?}");

        let reported = stats.reported() as usize;
        let events = self
            .rec
            .wait_until("one report per undelivered message", |e| {
                count_unreachable(e) >= reported
            })
            .await;
        assert_eq!(count_unreachable(&events), reported, "{stats:?}");
        let snaps = snapshot_reports(&events);
        assert_eq!(
            snaps.len() as u64,
            self.snapshots,
            "one ReportSnapshot each"
        );

        let mut got: Vec<u64> = self
            .member
            .raft
            .received()
            .iter()
            .map(|r| r.inbound.message.index)
            .collect();
        got.sort_unstable();
        let before = got.len();
        got.dedup();
        assert_eq!(got.len(), before, "no message arrived twice: {got:?}");
        assert!(
            got.iter().all(|i| self.offered.contains(i)),
            "only offered messages arrive: {got:?}"
        );
        let arrived = got.len() as u64;
        match arrivals {
            Arrivals::Exact => assert_eq!(arrived, stats.delivered, "{stats:?}"),
            Arrivals::AnswerMayBeLost => assert!(
                (stats.delivered..=stats.delivered + stats.failed + stats.cancelled)
                    .contains(&arrived),
                "{arrived} arrived; {stats:?}"
            ),
        }
    }
}

/// A fault that lets nothing through: every message during it is
/// reported, and once the proxy passes again, every message is delivered.
async fn fails_then_recovers(fault: Fault, messages: usize) -> (PipelineStats, Vec<Event>) {
    let mut rig = Rig::through_proxy().await;
    rig.proxy.set(fault);
    rig.offer(messages).await;
    let during = rig.settle().await;
    assert_eq!(during.delivered, 0, "{fault:?} lets nothing through");
    assert_eq!(during.reported(), messages as u64, "{fault:?}");
    let healed = std::time::Instant::now();
    rig.proxy.set(Fault::Pass);
    rig.offer(10).await;
    let after = rig.settle().await;
    assert_eq!(after.delivered, 10, "{fault:?} healed: all delivered");
    println!(
        "{fault:?}: {} of {messages} reported; 10 more delivered {:?} after the heal",
        during.reported(),
        healed.elapsed()
    );
    let events = rig.rec.events();
    (rig.finish(Arrivals::Exact).await, events)
}

#[actix_rt::test]
async fn refused_connections_are_reported_then_heal() {
    let (stats, events) = fails_then_recovers(Fault::Refuse, 20).await;
    assert_eq!(stats.failed, 20);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Unreachable(r) if matches!(r.reason, Error::Transport(_) | Error::Timeout(_))
    )));
}

#[actix_rt::test]
async fn a_reset_mid_request_is_reported() {
    let (stats, _) = fails_then_recovers(Fault::Reset, 20).await;
    assert_eq!(stats.failed, 20);
}

#[actix_rt::test]
async fn a_peer_that_never_answers_times_out() {
    let (stats, events) = fails_then_recovers(Fault::Blackhole, 8).await;
    assert_eq!(stats.failed, 8);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Unreachable(r) if matches!(r.reason, Error::Timeout(_)))));
}

#[actix_rt::test]
async fn headers_then_a_stall_time_out() {
    let (stats, _) = fails_then_recovers(Fault::HeadersThenStall, 8).await;
    assert_eq!(stats.failed, 8);
}

#[actix_rt::test]
async fn a_peer_reading_one_byte_a_second_times_out() {
    let (stats, _) = fails_then_recovers(Fault::Slow, 4).await;
    assert_eq!(stats.failed, 4);
}

#[actix_rt::test]
async fn a_5xx_storm_is_reported_then_passes() {
    let (stats, _) = fails_then_recovers(Fault::Answer(500), 60).await;
    assert_eq!(stats.failed + stats.dropped, 60);
}

#[actix_rt::test]
async fn a_snapshot_cut_mid_stream_fails_and_the_next_one_arrives() {
    let mut rig = Rig::through_proxy().await;
    rig.proxy.set(Fault::CutAfter(SNAPSHOT_BYTES / 4));
    rig.offer_snapshot().await;
    let during = rig.settle().await;
    assert_eq!((during.delivered, during.failed), (0, 1));
    rig.proxy.set(Fault::Pass);
    rig.offer_snapshot().await;
    let after = rig.settle().await;
    assert_eq!(after.delivered, 1);
    assert_eq!(
        snapshot_reports(&rig.rec.events()),
        [SnapshotStatus::Failure, SnapshotStatus::Finish]
    );
    let received = rig.member.raft.received();
    assert_eq!(received.len(), 1, "only the whole snapshot reached raft");
    assert!(received[0].stored_before);
    rig.finish(Arrivals::Exact).await;
}

/// A 412 or 403 in the middle of a run: the messages before it delivered,
/// those during it reported with raft told why, those after it delivered.
async fn precondition_mid_run(status: u16) -> Vec<Event> {
    let mut rig = Rig::through_proxy().await;
    rig.offer(10).await;
    rig.settle().await;
    rig.proxy.set(Fault::Answer(status));
    rig.offer(10).await;
    rig.offer_snapshot().await;
    let during = rig.settle().await;
    assert_eq!((during.delivered, during.failed), (10, 11), "{status}");
    rig.proxy.set(Fault::Pass);
    rig.offer(10).await;
    let after = rig.settle().await;
    assert_eq!(after.delivered, 20, "{status}");
    let events = rig.rec.events();
    assert_eq!(
        snapshot_reports(&events),
        [SnapshotStatus::Failure],
        "{status}"
    );
    rig.finish(Arrivals::Exact).await;
    events
}

#[actix_rt::test]
async fn a_412_mid_run_is_reported_and_passes() {
    let events = precondition_mid_run(412).await;
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Unreachable(r) if r.reason == Error::ClusterIdMismatch
    )));
}

#[actix_rt::test]
async fn a_403_mid_run_is_a_critical_error() {
    let events = precondition_mid_run(403).await;
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Critical(c) if c.error == Error::MemberRemoved
    )));
}

#[actix_rt::test]
async fn a_partition_heals_and_traffic_resumes() {
    let mut rig = Rig::through_proxy().await;
    rig.offer(20).await;
    rig.delivered(1).await;
    rig.proxy.set(Fault::Refuse);
    rig.offer(20).await;
    let cut = rig.settle().await;
    assert!(
        cut.reported() >= 20,
        "the partition fails what is sent in it"
    );
    rig.proxy.set(Fault::Pass);
    rig.offer(20).await;
    let healed = rig.settle().await;
    assert_eq!(
        healed.delivered,
        cut.delivered + 20,
        "all delivered after the heal"
    );
    rig.finish(Arrivals::AnswerMayBeLost).await;
}

#[actix_rt::test]
async fn fails_over_across_three_urls_two_dead() {
    let dead = [dead_url(), dead_url()];
    let mut rig =
        Rig::start(|proxy| vec![dead[0].clone(), dead[1].clone(), proxy.url.clone()]).await;
    // The picker starts at the first URL sorted as text and moves on after
    // each failure, so every dead URL sorted before the live one fails one
    // message, and no more.
    let dead_first = dead.iter().filter(|&d| *d < rig.proxy.url).count() as u64;
    let mut tries = 0;
    while rig.settle().await.delivered == 0 {
        tries += 1;
        assert!(tries <= 10, "the picker reaches the live URL");
        rig.offer(1).await;
    }
    let before = rig.settle().await.delivered;
    rig.offer(20).await;
    let after = rig.settle().await;
    assert_eq!(
        after.delivered,
        before + 20,
        "the live URL keeps the traffic"
    );
    assert_eq!(
        after.failed, dead_first,
        "each dead URL before it failed once"
    );
    rig.finish(Arrivals::Exact).await;
}

/// Stop while `fault` holds messages in flight: everything queued and in
/// flight is cancelled and reported, promptly.
async fn stop_during(fault: Fault) {
    let mut rig = Rig::through_proxy().await;
    rig.proxy.set(fault);
    rig.offer(20).await;
    rig.offer_snapshot().await;
    if fault != Fault::Refuse {
        rig.proxy.wait_accepted(1).await;
    }
    // Only a cut connection lets whole requests through before the cut.
    let passes = matches!(fault, Fault::CutAfter(_));
    let arrivals = if passes {
        Arrivals::AnswerMayBeLost
    } else {
        Arrivals::Exact
    };
    println!("stop during {fault:?}:");
    let stats = rig.finish(arrivals).await;
    if !passes {
        assert_eq!(stats.delivered, 0, "{fault:?} lets nothing through");
    }
    assert!(stats.reported() >= 1, "{fault:?}: {stats:?}");
}

#[actix_rt::test]
async fn stop_during_each_fault_is_prompt_and_loses_nothing() {
    for fault in [
        Fault::Refuse,
        Fault::Reset,
        Fault::Blackhole,
        Fault::HeadersThenStall,
        Fault::Slow,
        Fault::CutAfter(SNAPSHOT_BYTES / 4),
        Fault::Answer(500),
        Fault::Answer(412),
        Fault::Answer(403),
    ] {
        stop_during(fault).await;
    }
}

#[actix_rt::test]
async fn stop_during_a_partition_heal_is_prompt_and_loses_nothing() {
    let mut rig = Rig::through_proxy().await;
    rig.offer(10).await;
    rig.proxy.set(Fault::Refuse);
    rig.offer(10).await;
    rig.proxy.set(Fault::Pass);
    rig.offer(10).await;
    rig.finish(Arrivals::AnswerMayBeLost).await;
}

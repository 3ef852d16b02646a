//! The per-peer core without a runtime, sockets or clock: every rule of
//! the accounting, dispatch, picker, status and drop log, event by event.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::*;
use crate::raftpb::{Message, MessageType};

use MessageType::{MsgApp, MsgHeartbeat, MsgSnap, MsgVote};

/// A payload the core carries: which message it is, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Msg {
    id: u64,
    len: u64,
}

impl WireLen for Msg {
    fn wire_len(&self) -> u64 {
        self.len
    }
}

const A: &str = "http://a:1";
const B: &str = "http://b:1";
const C: &str = "http://c:1";

fn picker(urls: &[&str]) -> UrlPicker {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    UrlPicker::new(&urls).expect("valid URLs")
}

/// The test's clock: instants from one origin, and the wall clock.
struct Clock {
    origin: Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn wall(&self, ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
    }
}

/// A core to peer 2 with `connections` senders, a queue of `buffer`, and
/// URLs A and B, driven by the test.
struct Harness {
    core: PeerCore<Msg>,
    clock: Clock,
    next_id: u64,
    encoded: u64,
}

impl Harness {
    fn new(connections: usize, buffer: usize) -> Self {
        Harness {
            core: PeerCore::new(Id(2), connections, buffer, picker(&[B, A])),
            clock: Clock::new(),
            next_id: 0,
            encoded: 0,
        }
    }

    /// Offers a message of `kind`, numbered by its `to`, so every report
    /// names the message it is about.
    fn offer(&mut self, kind: MessageType) -> (u64, Result<(), Dropped>) {
        self.offer_as(kind, false)
    }

    /// Offers a message that must be accepted; returns its number.
    fn queue(&mut self, kind: MessageType) -> u64 {
        let (id, result) = self.offer(kind);
        result.expect("accepted");
        id
    }

    fn offer_as(&mut self, kind: MessageType, streamed: bool) -> (u64, Result<(), Dropped>) {
        self.next_id += 1;
        let id = self.next_id;
        let message = Message {
            r#type: kind as i32,
            to: id,
            ..Default::default()
        };
        let offer = match streamed {
            false => Offer::message(&message),
            true => Offer::snapshot(&message),
        };
        let encoded = &mut self.encoded;
        let payload = || {
            *encoded += 1;
            Msg { id, len: 100 + id }
        };
        let result = self.core.handle_offer(offer, payload, self.clock.at(0));
        (id, result)
    }

    fn transmits(&mut self, ms: u64) -> Vec<Transmit<Msg>> {
        std::iter::from_fn(|| self.core.poll_transmit(self.clock.at(ms))).collect()
    }

    fn outcome(&mut self, slot: Slot, result: Result<(), Error>, ms: u64) {
        let (now, wall) = (self.clock.at(ms), self.clock.wall(ms));
        self.core.handle_outcome(slot, result, now, wall);
    }

    fn reports(&mut self) -> Vec<Report> {
        std::iter::from_fn(|| self.core.poll_report()).collect()
    }

    fn assert_accounted(&self) {
        let s = self.core.stats();
        assert_eq!(
            s.offered,
            s.delivered + s.reported() + s.queued + s.in_flight,
            "{s:?}"
        );
    }
}

fn unreachable(to: u64, kind: MessageType, reason: Error) -> Report {
    Report::Unreachable {
        to: Id(to),
        message_type: kind as i32,
        reason,
    }
}

fn snapshot(to: u64, status: SnapshotStatus) -> Report {
    Report::Snapshot { to: Id(to), status }
}

fn reset() -> Error {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    Error::transport("failed to send", io)
}

fn bad_status() -> Error {
    Error::UnexpectedStatus {
        status: "Internal Server Error".into(),
        url: "http://a:1/raft".into(),
    }
}

#[test]
fn accepts_connections_plus_buffer_then_drops_with_a_report() {
    let mut h = Harness::new(4, 64);
    for _ in 0..68 {
        assert!(h.offer(MsgApp).1.is_ok());
        h.transmits(0);
    }
    let (id, dropped) = h.offer(MsgApp);
    let dropped = dropped.unwrap_err();
    assert_eq!(dropped.reason, Error::BufferFull);
    assert_eq!(dropped.msg_type(), Some(MsgApp));
    assert_eq!(
        dropped.to_string(),
        format!(
            "dropped MsgApp to {}: dropped since sending buffer is full",
            Id(id)
        )
    );
    let reports = h.reports();
    assert!(reports.contains(&unreachable(id, MsgApp, Error::BufferFull)));
    let s = h.core.stats();
    assert_eq!(
        (s.offered, s.dropped, s.queued, s.in_flight),
        (69, 1, 64, 4)
    );
    assert_eq!(h.encoded, 68, "the dropped message was never encoded");
    h.assert_accounted();
}

#[test]
fn a_dropped_msg_snap_also_fails_its_snapshot() {
    let mut h = Harness::new(1, 1);
    h.queue(MsgApp);
    h.transmits(0);
    h.queue(MsgApp);
    let (id, result) = h.offer(MsgSnap);
    assert!(result.is_err());
    assert_eq!(
        h.reports(),
        [
            Report::DroppedInactive {
                to: Id(id),
                message_type: MsgSnap as i32
            },
            unreachable(id, MsgSnap, Error::BufferFull),
            snapshot(id, SnapshotStatus::Failure),
        ]
    );
}

#[test]
fn delivery_counts_bytes_and_latency_and_activates_the_peer_once() {
    let mut h = Harness::new(4, 64);
    let first = h.queue(MsgApp);
    let second = h.queue(MsgHeartbeat);
    let sent = h.transmits(10);
    assert_eq!(sent.len(), 2);
    h.outcome(sent[0].slot, Ok(()), 35);
    h.outcome(sent[1].slot, Ok(()), 40);
    assert_eq!(
        h.reports(),
        [Report::Active {
            since: h.clock.wall(35)
        }]
    );
    let s = h.core.stats();
    assert_eq!(s.delivered, 2);
    assert_eq!(s.sent_bytes, (100 + first) + (100 + second));
    assert_eq!(
        (s.follower.success, s.follower.current_ms),
        (1, 25.0),
        "MsgApp latency from handover to answer; heartbeats do not count"
    );
    h.assert_accounted();
}

#[test]
fn a_failure_reports_the_message_and_deactivates_the_peer_once() {
    let mut h = Harness::new(4, 64);
    h.queue(MsgHeartbeat);
    let ok = h.transmits(0);
    h.outcome(ok[0].slot, Ok(()), 1);
    let ids: Vec<u64> = (0..3).map(|_| h.queue(MsgApp)).collect();
    let failing = h.transmits(2);
    for t in &failing {
        h.outcome(t.slot, Err(bad_status()), 3);
    }
    let reason = "failed to write 2 on pipeline (unexpected http status Internal Server Error while posting to \"http://a:1/raft\")";
    let mut want = vec![Report::Active {
        since: h.clock.wall(1),
    }];
    for (n, id) in ids.iter().enumerate() {
        want.push(match n {
            0 => Report::Inactive {
                reason: reason.into(),
            },
            _ => Report::StillInactive {
                reason: reason.into(),
            },
        });
        want.push(unreachable(*id, MsgApp, bad_status()));
    }
    assert_eq!(h.reports(), want);
    let s = h.core.stats();
    assert_eq!((s.failed, s.follower.fail, s.delivered), (3, 3, 1));
    h.assert_accounted();
}

#[test]
fn status_notifies_on_transitions_only() {
    let mut h = Harness::new(1, 8);
    let mut changes = Vec::new();
    for (n, ok) in [true, true, false, false, false, true, true, false]
        .into_iter()
        .enumerate()
    {
        h.queue(MsgHeartbeat);
        let t = h.transmits(n as u64).remove(0);
        let result = if ok { Ok(()) } else { Err(Error::Stopped) };
        h.outcome(t.slot, result, n as u64);
        for r in h.reports() {
            match r {
                Report::Active { .. } => changes.push(true),
                Report::Inactive { .. } => changes.push(false),
                _ => {}
            }
        }
    }
    assert_eq!(changes, [true, false, true, false]);
}

#[test]
fn transport_failures_give_their_whole_cause_in_the_status_reason() {
    let mut h = Harness::new(1, 1);
    h.queue(MsgHeartbeat);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Ok(()), 0);
    h.queue(MsgHeartbeat);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Err(reset()), 1);
    let inactive = h.reports().into_iter().find_map(|r| match r {
        Report::Inactive { reason } => Some(reason),
        _ => None,
    });
    assert_eq!(
        inactive.as_deref(),
        Some("failed to write 2 on pipeline (failed to send: reset by peer)")
    );
}

#[test]
fn member_removed_is_a_critical_error_and_reported() {
    let mut h = Harness::new(4, 64);
    let id = h.queue(MsgApp);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Err(Error::MemberRemoved), 1);
    let reports = h.reports();
    assert_eq!(
        reports[1..],
        [
            Report::Critical {
                error: Error::MemberRemoved
            },
            unreachable(id, MsgApp, Error::MemberRemoved),
        ]
    );
    assert!(matches!(reports[0], Report::StillInactive { .. }));
}

#[test]
fn msg_snap_ends_with_a_snapshot_report_either_way() {
    let mut h = Harness::new(4, 64);
    let ok = h.queue(MsgSnap);
    let fails = h.queue(MsgSnap);
    let sent = h.transmits(0);
    h.outcome(sent[0].slot, Ok(()), 1);
    h.outcome(sent[1].slot, Err(Error::ClusterIdMismatch), 1);
    let reports: Vec<Report> = h
        .reports()
        .into_iter()
        .filter(|r| !matches!(r, Report::Active { .. } | Report::Inactive { .. }))
        .collect();
    assert_eq!(
        reports,
        [
            snapshot(ok, SnapshotStatus::Finish),
            unreachable(fails, MsgSnap, Error::ClusterIdMismatch),
            snapshot(fails, SnapshotStatus::Failure),
        ]
    );
}

#[test]
fn a_streamed_snapshot_fails_as_etcds_snapshot_sender() {
    let mut h = Harness::new(4, 64);
    let (id, result) = h.offer_as(MsgSnap, true);
    assert!(result.is_ok());
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Ok(()), 0);
    assert!(h.offer_as(MsgSnap, true).1.is_ok());
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Err(Error::ShortRead), 1);
    let reports = h.reports();
    assert_eq!(reports[1], snapshot(id, SnapshotStatus::Finish));
    assert_eq!(
        reports[2],
        Report::Inactive {
            reason: "failed to post 2 on sendMsgSnap (ioutil: short read)".into()
        }
    );
}

#[test]
fn a_streamed_snapshot_that_is_not_msg_snap_is_refused_as_failed() {
    let mut h = Harness::new(4, 64);
    let (id, result) = h.offer_as(MsgApp, true);
    let dropped = result.unwrap_err();
    assert_eq!(dropped.reason, Error::WrongMessageType);
    assert_eq!(
        h.reports(),
        [unreachable(id, MsgApp, Error::WrongMessageType)]
    );
    let s = h.core.stats();
    assert_eq!((s.offered, s.failed), (1, 1));
    assert_eq!(h.encoded, 0);
    h.assert_accounted();
}

#[test]
fn stop_cancels_queued_and_in_flight_messages_once() {
    let mut h = Harness::new(2, 4);
    let mut sent = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(h.queue(MsgApp));
        sent.extend(h.transmits(0));
    }
    let snap = h.queue(MsgSnap);
    assert_eq!(sent.len(), 2);
    assert_eq!(h.core.stats().queued, 4);
    h.core.handle_stop(h.clock.at(1));
    let reports = h.reports();
    let mut cancelled: Vec<u64> = reports
        .iter()
        .filter_map(|r| match r {
            Report::Unreachable { to, reason, .. } if *reason == Error::Stopped => Some(to.0),
            _ => None,
        })
        .collect();
    cancelled.sort_unstable();
    let mut want = ids.clone();
    want.push(snap);
    assert_eq!(cancelled, want, "queued and in flight, each once");
    assert!(reports.contains(&snapshot(snap, SnapshotStatus::Failure)));
    // The senders answer late: already reported, so ignored.
    h.outcome(sent[0].slot, Ok(()), 2);
    h.outcome(sent[1].slot, Err(Error::Stopped), 2);
    assert_eq!(h.reports(), []);
    assert!(h.transmits(3).is_empty());
    let s = h.core.stats();
    assert_eq!((s.cancelled, s.delivered, s.failed), (6, 0, 0));
    assert_eq!((s.queued, s.in_flight), (0, 0));
    assert_eq!(s.offered, s.delivered + s.reported());
}

#[test]
fn offers_after_stop_are_refused_as_cancelled_and_never_encoded() {
    let mut h = Harness::new(4, 64);
    h.core.handle_stop(h.clock.at(0));
    let (id, result) = h.offer(MsgSnap);
    assert_eq!(result.unwrap_err().reason, Error::Stopped);
    assert_eq!(
        h.reports(),
        [
            unreachable(id, MsgSnap, Error::Stopped),
            snapshot(id, SnapshotStatus::Failure)
        ]
    );
    let s = h.core.stats();
    assert_eq!((s.offered, s.cancelled), (1, 1));
    assert_eq!(h.encoded, 0);
    h.core.handle_stop(h.clock.at(1));
    assert_eq!(h.reports(), [], "a second stop has nothing left to report");
}

#[test]
fn a_stopped_sender_fails_its_message_and_its_slot_is_used_again() {
    let mut h = Harness::new(1, 4);
    let held = h.queue(MsgApp);
    let t = h.transmits(0).remove(0);
    h.queue(MsgApp);
    assert!(h.transmits(0).is_empty(), "the only sender is busy");
    h.outcome(t.slot, Err(Error::SenderStopped), 1);
    assert!(h
        .reports()
        .contains(&unreachable(held, MsgApp, Error::SenderStopped)));
    let next = h.transmits(2);
    assert_eq!(next.len(), 1, "the restarted sender carries the next one");
    assert_eq!(next[0].slot.sender, 0);
    h.outcome(next[0].slot, Ok(()), 3);
    // An outcome replayed for the old handover changes nothing.
    h.outcome(t.slot, Ok(()), 4);
    let s = h.core.stats();
    assert_eq!((s.failed, s.delivered, s.in_flight), (1, 1, 0));
    h.assert_accounted();
}

#[test]
fn an_outcome_for_another_handover_of_the_same_sender_is_ignored() {
    let mut h = Harness::new(1, 4);
    h.queue(MsgApp);
    let first = h.transmits(0).remove(0);
    h.outcome(first.slot, Ok(()), 1);
    h.queue(MsgApp);
    let second = h.transmits(1).remove(0);
    assert_eq!(first.slot.sender, second.slot.sender);
    h.outcome(first.slot, Err(Error::Stopped), 2);
    assert_eq!(h.core.stats().in_flight, 1, "the second is still in flight");
    h.outcome(second.slot, Ok(()), 3);
    assert_eq!(h.core.stats().delivered, 2);
}

#[test]
fn work_goes_round_robin_to_idle_senders() {
    let mut h = Harness::new(4, 64);
    let mut order = Vec::new();
    for n in 0..8 {
        h.queue(MsgApp);
        let t = h.transmits(n).remove(0);
        order.push(t.slot.sender);
        h.outcome(t.slot, Ok(()), n);
    }
    assert_eq!(order, [0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn the_snapshot_lane_keeps_a_sender_for_heartbeats() {
    let mut h = Harness::new(4, 64);
    let snaps: Vec<u64> = (0..5).map(|_| h.queue(MsgSnap)).collect();
    let vote = h.queue(MsgVote);
    let carried: Vec<u64> = h.transmits(0).iter().map(|t| t.payload.id).collect();
    assert_eq!(carried, [snaps[0], snaps[1], snaps[2], vote]);
    let s = h.core.stats();
    assert_eq!((s.in_flight, s.queued), (4, 2));
}

#[test]
fn the_picker_moves_on_after_a_failure_on_its_url() {
    let mut h = Harness::new(1, 4);
    h.queue(MsgApp);
    let first = h.transmits(0).remove(0);
    assert_eq!(first.url, 0, "the first sorted URL ({A})");
    h.outcome(first.slot, Err(Error::Stopped), 1);
    h.queue(MsgApp);
    let second = h.transmits(1).remove(0);
    assert_eq!(second.url, 1, "then {B}");
    h.outcome(second.slot, Ok(()), 2);
    h.queue(MsgApp);
    assert_eq!(h.transmits(2)[0].url, 1, "a success keeps the pick");
}

// etcd's picker advances only when the failed URL is still the current
// pick, so several senders failing on one URL advance it once.
#[test]
fn failures_on_one_url_advance_the_picker_once() {
    let mut h = Harness::new(4, 64);
    h.core.handle_urls(picker(&[A, B, C]));
    for _ in 0..4 {
        h.queue(MsgApp);
    }
    let sent = h.transmits(0);
    assert!(sent.iter().all(|t| t.url == 0));
    for t in &sent {
        h.outcome(t.slot, Err(Error::Stopped), 1);
    }
    h.queue(MsgApp);
    assert_eq!(h.transmits(2)[0].url, 1, "B, not C");
}

// etcd TestURLPickerUpdate: new URLs, and the pick starts again at the
// first of them.
#[test]
fn update_urls_picks_from_the_new_urls() {
    let mut h = Harness::new(1, 4);
    h.queue(MsgApp);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Err(Error::Stopped), 1);
    h.queue(MsgApp);
    assert_eq!(h.transmits(1)[0].url, 1, "moved to B");
    h.core.handle_urls(picker(&[C, B]));
    let s = h.core.stats();
    assert_eq!(s.in_flight, 1);
    h.core.handle_stop(h.clock.at(2));
    let mut h = Harness::new(1, 4);
    h.core
        .handle_urls(picker(&["http://localhost:4002", "http://localhost:4001"]));
    h.queue(MsgApp);
    assert_eq!(h.transmits(0)[0].url, 0, "the first of the new, sorted");
}

#[test]
fn failures_of_messages_sent_before_update_urls_do_not_move_the_new_picker() {
    let mut h = Harness::new(2, 4);
    h.queue(MsgApp);
    let old = h.transmits(0).remove(0);
    h.core.handle_urls(picker(&[B, C]));
    h.outcome(old.slot, Err(Error::Stopped), 1);
    let s = h.core.stats();
    assert_eq!(s.failed, 1, "still counted and reported");
    h.queue(MsgApp);
    assert_eq!(h.transmits(2)[0].url, 0, "the new picker stays at B");
}

#[test]
fn a_burst_of_ten_thousand_drops_is_logged_in_a_few_lines_that_add_up() {
    let mut h = Harness::new(1, 1);
    h.queue(MsgHeartbeat);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Ok(()), 0);
    h.queue(MsgApp);
    h.transmits(0);
    h.queue(MsgApp);
    h.reports();
    let mut lines = Vec::new();
    // 10 000 drops in 0.5 s; the shell ticks when the core asks.
    for i in 0..10_000u64 {
        let now = h.clock.at(i / 20);
        if let Some(due) = h.core.poll_timeout().filter(|at| *at <= now) {
            h.core.handle_tick(due);
        }
        let result = h.core.handle_offer(
            Offer::message(&Message {
                r#type: MsgApp as i32,
                to: 2,
                ..Default::default()
            }),
            || Msg { id: 0, len: 1 },
            now,
        );
        assert!(result.is_err());
        lines.extend(h.reports());
    }
    let due = h.core.poll_timeout().expect("the burst's tail waits");
    assert_eq!(due, h.clock.at(1_000), "one interval after the first line");
    h.core.handle_tick(due);
    lines.extend(h.reports());
    assert_eq!(h.core.poll_timeout(), None, "no timer once logged");
    let logged: Vec<u64> = lines
        .iter()
        .filter_map(|r| match r {
            Report::BufferFull { dropped } => Some(*dropped),
            _ => None,
        })
        .collect();
    assert_eq!(
        logged,
        [1, 9_999],
        "the first at once, the rest at the tick"
    );
    assert_eq!(h.core.stats().dropped, 10_000);
    let text = Report::BufferFull { dropped: 9_999 }
        .log_text(Id(2))
        .to_string();
    assert_eq!(
        text,
        "dropped internal raft message to 2 since pipeline's sending buffer is full (bad/overloaded network) [merged 9999 repeated]"
    );
}

#[test]
fn stop_logs_the_drops_still_waiting() {
    let mut h = Harness::new(1, 1);
    h.queue(MsgHeartbeat);
    let t = h.transmits(0).remove(0);
    h.outcome(t.slot, Ok(()), 0);
    h.queue(MsgApp);
    h.transmits(0);
    h.queue(MsgApp);
    for _ in 0..3 {
        assert!(h.offer(MsgApp).1.is_err());
    }
    assert!(h.core.poll_timeout().is_some());
    h.reports();
    h.core.handle_stop(h.clock.at(10));
    let lines: Vec<Report> = h
        .reports()
        .into_iter()
        .filter(|r| matches!(r, Report::BufferFull { .. }))
        .collect();
    assert_eq!(lines, [Report::BufferFull { dropped: 2 }]);
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn drops_while_inactive_are_debug_lines_and_need_no_timer() {
    let mut h = Harness::new(1, 1);
    h.queue(MsgApp);
    h.transmits(0);
    h.queue(MsgApp);
    let (id, result) = h.offer(MsgVote);
    assert!(result.is_err(), "the queue is full");
    let reports = h.reports();
    assert_eq!(
        reports[0],
        Report::DroppedInactive {
            to: Id(id),
            message_type: MsgVote as i32
        }
    );
    assert_eq!(reports[0].log_level(), Some(log::Level::Debug));
    assert_eq!(
        reports[0].log_text(Id(2)).to_string(),
        format!("dropped MsgVote to {id} since pipeline's sending buffer is full")
    );
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn reports_read_as_etcd_logs_them() {
    let peer = Id(0x1a);
    let cases = [
        (
            Report::Active {
                since: SystemTime::UNIX_EPOCH,
            },
            Some(log::Level::Info),
            "peer 1a became active",
        ),
        (
            Report::Inactive {
                reason: "failed to write 1a on pipeline (stopped)".into(),
            },
            Some(log::Level::Warn),
            "peer 1a became inactive (message send to peer failed): failed to write 1a on pipeline (stopped)",
        ),
        (
            Report::BufferFull { dropped: 1 },
            Some(log::Level::Warn),
            "dropped internal raft message to 1a since pipeline's sending buffer is full (bad/overloaded network)",
        ),
        (
            unreachable(0x1a, MsgApp, Error::Stopped),
            None,
            "MsgApp to 1a not delivered: stopped",
        ),
        (
            unreachable(0x1a, MsgHeartbeat, reset()),
            None,
            "MsgHeartbeat to 1a not delivered: failed to send: reset by peer",
        ),
    ];
    for (report, level, text) in cases {
        assert_eq!(report.log_level(), level, "{report:?}");
        assert_eq!(report.log_text(peer).to_string(), text);
    }
}

#[test]
fn typed_message_kinds_show_by_name() {
    let report = ReportUnreachableFor::new(MsgHeartbeat as i32);
    assert_eq!(report.0.msg_type(), Some(MsgHeartbeat));
    assert_eq!(
        report.0.to_string(),
        "MsgHeartbeat to 2 not delivered: stopped"
    );
    let unknown = ReportUnreachableFor::new(99);
    assert_eq!(unknown.0.msg_type(), None);
    assert_eq!(
        unknown.0.to_string(),
        "message type 99 to 2 not delivered: stopped"
    );
    let transport = crate::messages::ReportUnreachable {
        reason: reset(),
        ..report.0.clone()
    };
    assert_eq!(
        transport.to_string(),
        "MsgHeartbeat to 2 not delivered: failed to send: reset by peer",
        "the reason with its causes"
    );
    let dropped = Dropped {
        to: Id(2),
        message_type: 99,
        reason: Error::Stopped,
    };
    assert_eq!(dropped.to_string(), "dropped message type 99 to 2: stopped");
}

struct ReportUnreachableFor(crate::messages::ReportUnreachable);

impl ReportUnreachableFor {
    fn new(message_type: i32) -> Self {
        ReportUnreachableFor(crate::messages::ReportUnreachable {
            to: Id(2),
            message_type,
            reason: Error::Stopped,
        })
    }
}

/// A tiny xorshift generator: reproducible sequences without a crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the property test saw happen to each message.
#[derive(Default)]
struct Ledger {
    kinds: HashMap<u64, MessageType>,
    transmitted: HashSet<u64>,
    delivered: HashSet<u64>,
    unreachable: HashMap<u64, u32>,
    snapshot: HashMap<u64, Vec<SnapshotStatus>>,
    critical: u32,
    member_removed: u32,
    status: Vec<bool>,
}

impl Ledger {
    fn record(&mut self, reports: Vec<Report>) {
        for r in reports {
            match r {
                Report::Unreachable { to, .. } => *self.unreachable.entry(to.0).or_default() += 1,
                Report::Snapshot { to, status } => {
                    self.snapshot.entry(to.0).or_default().push(status)
                }
                Report::Critical { .. } => self.critical += 1,
                Report::Active { .. } => self.status.push(true),
                Report::Inactive { .. } => self.status.push(false),
                _ => {}
            }
        }
    }

    /// Every message ended exactly once, delivered or reported, and each
    /// `MsgSnap` with the matching snapshot report.
    fn check(&self) {
        for (id, kind) in &self.kinds {
            let delivered = self.delivered.contains(id);
            let reported = self.unreachable.get(id).copied().unwrap_or(0);
            assert_eq!(
                u32::from(delivered) + reported,
                1,
                "message {id} ({kind:?}): delivered {delivered}, reported {reported}"
            );
            let snapshots = self.snapshot.get(id).cloned().unwrap_or_default();
            let want = match (kind, delivered) {
                (MsgSnap, true) => vec![SnapshotStatus::Finish],
                (MsgSnap, false) => vec![SnapshotStatus::Failure],
                _ => vec![],
            };
            assert_eq!(snapshots, want, "message {id} ({kind:?})");
        }
        assert_eq!(self.critical, self.member_removed);
        let alternating = self.status.windows(2).all(|w| w[0] != w[1]);
        assert!(alternating && self.status.first() != Some(&false));
    }
}

fn random_failure(rng: &mut XorShift) -> Error {
    match rng.below(5) {
        0 => Error::MemberRemoved,
        1 => Error::SenderStopped,
        2 => Error::Timeout(Duration::from_secs(5)),
        3 => Error::ShortRead,
        _ => bad_status(),
    }
}

/// One random run: offers of random kinds, outcomes in random order,
/// URL updates, ticks, replayed stale outcomes, a stop and offers after
/// it. After every event the counters balance; at the end every message
/// ended exactly once.
fn random_run(seed: u64) {
    let mut rng = XorShift(seed);
    let connections = 1 + rng.below(4) as usize;
    let buffer = rng.below(6) as usize;
    let mut h = Harness::new(connections, buffer);
    let mut ledger = Ledger::default();
    let mut live: Vec<(Slot, u64)> = Vec::new();
    let mut dead: Vec<Slot> = Vec::new();
    let mut ms = 0;
    let stop_at = 150 + rng.below(100);
    for step in 0..300 {
        ms += rng.below(300);
        if step == stop_at {
            h.core.handle_stop(h.clock.at(ms));
            dead.extend(live.drain(..).map(|(slot, _)| slot));
        }
        match rng.below(10) {
            0..=3 => {
                let kind = [MsgApp, MsgHeartbeat, MsgSnap, MsgVote][rng.below(4) as usize];
                let streamed = rng.below(8) == 0;
                let (id, result) = h.offer_as(kind, streamed);
                ledger.kinds.insert(id, kind);
                if let Err(dropped) = result {
                    assert_eq!(dropped.to, Id(id));
                }
            }
            4..=7 if !live.is_empty() => {
                let (slot, id) = live.swap_remove(rng.below(live.len() as u64) as usize);
                let result = match rng.below(3) {
                    0 => Err(random_failure(&mut rng)),
                    _ => Ok(()),
                };
                if matches!(result, Err(Error::MemberRemoved)) {
                    ledger.member_removed += 1;
                }
                if result.is_ok() {
                    ledger.delivered.insert(id);
                }
                h.outcome(slot, result, ms);
                dead.push(slot);
            }
            8 if !dead.is_empty() => {
                let slot = dead[rng.below(dead.len() as u64) as usize];
                h.outcome(slot, Ok(()), ms);
            }
            8 => h
                .core
                .handle_urls(picker(&[[A, B, C][rng.below(3) as usize], C])),
            _ => {
                if let Some(at) = h.core.poll_timeout() {
                    h.core.handle_tick(at.max(h.clock.at(ms)));
                }
            }
        }
        for t in h.transmits(ms) {
            assert!(ledger.transmitted.insert(t.payload.id), "sent twice");
            assert!(live.iter().all(|(s, _)| s.sender != t.slot.sender));
            live.push((t.slot, t.payload.id));
        }
        let snapshots = live
            .iter()
            .filter(|(_, id)| ledger.kinds[id] == MsgSnap)
            .count();
        assert!(snapshots <= connections.saturating_sub(1).max(1));
        ledger.record(h.reports());
        h.assert_accounted();
    }
    h.core.handle_stop(h.clock.at(ms));
    for (slot, _) in live.drain(..) {
        h.outcome(slot, Ok(()), ms);
    }
    ledger.record(h.reports());
    let s = h.core.stats();
    assert_eq!(s.offered, ledger.kinds.len() as u64);
    assert_eq!(s.delivered, ledger.delivered.len() as u64);
    assert_eq!(s.offered, s.delivered + s.reported(), "{s:?}");
    assert_eq!((s.queued, s.in_flight), (0, 0));
    assert_eq!(h.core.poll_timeout(), None, "the drop log was flushed");
    ledger.check();
}

#[test]
fn random_runs_deliver_or_report_every_message_exactly_once() {
    for seed in 1..=300u64 {
        random_run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}

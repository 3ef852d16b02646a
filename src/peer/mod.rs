//! The per-peer core: everything the pipeline to one peer decides, with no
//! I/O, no actors and no clock of its own, in the style of quinn-proto and
//! raft-rs.
//!
//! [`PeerCore`] owns the queue and its dispatch policy, the URL picker and
//! its generations, the peer status, the counters and the drop-log
//! throttle. Events come in through `handle_*` methods, with the time
//! passed in; decisions go out as plain data through `poll_*` methods:
//! which message to hand to which sender and which URL
//! ([`Transmit`]), and what to tell raft, the user and the log
//! ([`Report`]). The [`PipelineActor`](crate::PipelineActor) is a thin
//! shell that forwards events and carries decisions out.
//!
//! The accounting rule it keeps: every message offered ends in exactly one
//! outcome, delivered or reported, so at any time
//! `offered == delivered + reported() + queued + in_flight`.

mod drop_log;
mod metrics;
mod outgoing;
mod report;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use crate::dispatch::Dispatch;
use crate::error::{chain_text, Error};
use crate::id::Id;
use crate::messages::{Dropped, SnapshotStatus};
use crate::peer_status::PeerStatus;
use crate::picker::UrlPicker;
use crate::stats::PipelineStats;

use drop_log::DropLog;
pub(crate) use metrics::PeerMetrics;
pub(crate) use outgoing::{Offer, WireLen};
use outgoing::{Outgoing, Sent};
pub(crate) use report::Report;

/// A handover of one message to one sender. The outcome names it, so an
/// outcome that comes after its message was cancelled is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The sender's index, `0..connections`.
    pub(crate) sender: usize,
    /// The handover's number.
    ticket: u64,
}

/// A decision: hand `payload` to sender `slot.sender`, to post to the
/// peer's URL number `url` (in the sorted list of the picker in force).
#[derive(Debug)]
pub(crate) struct Transmit<P> {
    /// The sender, and the handle to give the outcome back with.
    pub(crate) slot: Slot,
    /// The URL's position in the picker's sorted list.
    pub(crate) url: usize,
    /// Bytes on the wire, for the response timeout.
    pub(crate) wire_len: u64,
    /// What to send.
    pub(crate) payload: P,
}

/// The pipeline to one peer, as a pure state machine. `P` is the payload
/// the shell sends (an encoded message or a snapshot stream); the core
/// carries it without looking inside.
#[derive(Debug)]
pub(crate) struct PeerCore<P> {
    peer: Id,
    connections: usize,
    dispatch: Dispatch<Outgoing<P>>,
    picker: UrlPicker,
    generation: u64,
    status: PeerStatus,
    stats: PipelineStats,
    drop_log: DropLog,
    metrics: PeerMetrics,
    stopping: bool,
    tickets: u64,
    reports: VecDeque<Report>,
}

impl<P: WireLen> PeerCore<P> {
    /// The core of a pipeline to `peer` with `connections` senders and a
    /// queue of `buffer`, posting to the URLs of `picker`.
    pub(crate) fn new(peer: Id, connections: usize, buffer: usize, picker: UrlPicker) -> Self {
        PeerCore {
            peer,
            connections,
            dispatch: Dispatch::new(connections, buffer),
            picker,
            generation: 0,
            status: PeerStatus::default(),
            stats: PipelineStats::default(),
            drop_log: DropLog::default(),
            metrics: PeerMetrics::default(),
            stopping: false,
            tickets: 0,
            reports: VecDeque::new(),
        }
    }

    /// Counts in `metrics` too, beside the stats.
    pub(crate) fn with_metrics(mut self, metrics: PeerMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// A message is offered at `now`. It is queued, and `payload` is made,
    /// only when there is room and the pipeline is not stopping; otherwise
    /// it is refused, reported, and the caller learns why. A streamed
    /// snapshot whose head is not a `MsgSnap` is refused too.
    pub(crate) fn handle_offer(
        &mut self,
        offer: Offer,
        payload: impl FnOnce() -> P,
        now: Instant,
    ) -> Result<(), Dropped> {
        self.stats.offered += 1;
        if offer.streamed && !offer.is_snapshot() {
            self.stats.failed += 1;
            self.metrics.failed(&offer);
            return Err(self.refuse(offer, Error::WrongMessageType));
        }
        if self.stopping {
            self.stats.cancelled += 1;
            return Err(self.refuse(offer, Error::Stopped));
        }
        if self.dispatch.is_full() {
            return Err(self.drop_full(offer, now));
        }
        self.dispatch
            .offer(Outgoing::new(offer, payload()))
            .map_err(|item| self.drop_full(item.offer, now))
    }

    /// The sender of `slot` finished at `now` (`wall` by the wall clock):
    /// delivered (`Ok`) or not. An outcome for a message already cancelled
    /// by a stop is ignored: that message was reported then.
    pub(crate) fn handle_outcome(
        &mut self,
        slot: Slot,
        result: Result<(), Error>,
        now: Instant,
        wall: SystemTime,
    ) {
        let Some(item) = self.take_in_flight(slot) else {
            return;
        };
        match result {
            Ok(()) => self.delivered(item, now, wall),
            Err(err) => self.failed(item, err),
        }
    }

    /// The peer's URLs changed (etcd's `urlPicker.update`): post to
    /// `picker`'s from now on. Failures of messages sent to the old URLs no
    /// longer move the picker.
    pub(crate) fn handle_urls(&mut self, picker: UrlPicker) {
        self.picker = picker;
        self.generation += 1;
    }

    /// The pipeline stops at `now`: every message queued or in flight is
    /// cancelled and reported, the drops waiting for a log line are logged,
    /// and every later offer is refused.
    pub(crate) fn handle_stop(&mut self, now: Instant) {
        if !self.stopping && self.status.is_active() {
            self.metrics.stopped_active();
        }
        self.stopping = true;
        let mut cancelled = self.dispatch.drain_queue();
        cancelled.extend((0..self.connections).filter_map(|s| self.dispatch.finish(s)));
        for item in cancelled {
            self.stats.cancelled += 1;
            self.report_undelivered(item.offer, Error::Stopped);
        }
        if let Some(line) = self.drop_log.flush(now) {
            self.reports.push_back(Report::BufferFull {
                dropped: line.dropped,
            });
        }
    }

    /// The timer the shell set from [`PeerCore::poll_timeout`] fired at
    /// `now`.
    pub(crate) fn handle_tick(&mut self, now: Instant) {
        if let Some(line) = self.drop_log.tick(now) {
            self.reports.push_back(Report::BufferFull {
                dropped: line.dropped,
            });
        }
    }

    /// The next message to hand to an idle sender at `now`, round-robin,
    /// with the URL to post it to; `None` when nothing can move.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<P>> {
        let sender = self.dispatch.assign()?;
        self.tickets += 1;
        let sent = Sent {
            ticket: self.tickets,
            generation: self.generation,
            url: self.picker.picked_index(),
            at: now,
        };
        let in_flight = self
            .metrics
            .in_flight(&self.dispatch.slot_mut(sender)?.offer);
        let item = self.dispatch.slot_mut(sender)?;
        item.sent = Some(sent);
        item.in_flight = in_flight;
        // An item is assigned once, so its payload is still here.
        let payload = item.payload.take()?;
        Some(Transmit {
            slot: Slot {
                sender,
                ticket: sent.ticket,
            },
            url: sent.url,
            wire_len: item.wire_len,
            payload,
        })
    }

    /// The next thing to tell raft, the user or the log, in order.
    pub(crate) fn poll_report(&mut self) -> Option<Report> {
        self.reports.pop_front()
    }

    /// When the shell should call [`PeerCore::handle_tick`]; `None` while
    /// no timer is needed (no drops wait for their log line).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.drop_log.deadline()
    }

    /// The counters now, with what is queued and in flight.
    pub(crate) fn stats(&self) -> PipelineStats {
        PipelineStats {
            queued: self.dispatch.queued() as u64,
            in_flight: self.dispatch.in_flight() as u64,
            ..self.stats.clone()
        }
    }

    /// The message `slot` carries, freed from its sender, unless the
    /// sender carries another by now (or none).
    fn take_in_flight(&mut self, slot: Slot) -> Option<Outgoing<P>> {
        let item = self.dispatch.slot_mut(slot.sender)?;
        let ticket = item.sent.map(|sent| sent.ticket);
        if ticket != Some(slot.ticket) {
            return None;
        }
        self.dispatch.finish(slot.sender)
    }

    fn delivered(&mut self, item: Outgoing<P>, now: Instant, wall: SystemTime) {
        self.stats.delivered += 1;
        self.stats.sent_bytes += item.wire_len;
        let took = item
            .sent
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s.at));
        self.metrics.delivered(&item.offer, item.wire_len, took);
        if self.status.activate(wall) {
            self.metrics.active();
            self.reports.push_back(Report::Active { since: wall });
        }
        if let (true, Some(sent)) = (item.offer.is_append(), item.sent) {
            self.stats
                .follower
                .succ(now.saturating_duration_since(sent.at));
        }
        if item.offer.is_snapshot() {
            self.reports.push_back(Report::Snapshot {
                to: item.offer.to,
                status: SnapshotStatus::Finish,
            });
        }
    }

    fn failed(&mut self, item: Outgoing<P>, err: Error) {
        self.stats.failed += 1;
        self.metrics.failed(&item.offer);
        if let Some(sent) = item.sent.filter(|s| s.generation == self.generation) {
            if let Some(url) = self.picker.urls().get(sent.url).cloned() {
                self.picker.unreachable(&url);
            }
        }
        let reason = item
            .offer
            .failure_type()
            .describe(self.peer, &chain_text(&err));
        match self.status.deactivate() {
            true => {
                self.metrics.inactive();
                self.reports.push_back(Report::Inactive { reason });
            }
            false => self.reports.push_back(Report::StillInactive { reason }),
        }
        if item.offer.is_append() {
            self.stats.follower.fail();
        }
        if err.is_member_removed() {
            self.reports
                .push_back(Report::Critical { error: err.clone() });
        }
        self.report_undelivered(item.offer, err);
    }

    /// Counts and logs a drop on a full queue, reports it, and says why.
    fn drop_full(&mut self, offer: Offer, now: Instant) -> Dropped {
        self.stats.dropped += 1;
        self.metrics.dropped(&offer);
        if !self.status.is_active() {
            self.reports.push_back(Report::DroppedInactive {
                to: offer.to,
                message_type: offer.message_type,
            });
        } else if let Some(line) = self.drop_log.record(now) {
            self.reports.push_back(Report::BufferFull {
                dropped: line.dropped,
            });
        }
        self.refuse(offer, Error::BufferFull)
    }

    /// Reports `offer` as not delivered and says why to the caller.
    fn refuse(&mut self, offer: Offer, reason: Error) -> Dropped {
        self.report_undelivered(offer, reason.clone());
        Dropped {
            to: offer.to,
            message_type: offer.message_type,
            reason,
        }
    }

    /// Raft's reports for a message not delivered: unreachable, and a
    /// failed snapshot for a `MsgSnap`.
    fn report_undelivered(&mut self, offer: Offer, reason: Error) {
        self.reports.push_back(Report::Unreachable {
            to: offer.to,
            message_type: offer.message_type,
            reason,
        });
        if offer.is_snapshot() {
            self.reports.push_back(Report::Snapshot {
                to: offer.to,
                status: SnapshotStatus::Failure,
            });
        }
    }
}

#[cfg(test)]
mod tests;

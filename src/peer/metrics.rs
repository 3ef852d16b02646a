//! The per-peer core's Prometheus counting: each call sits beside the
//! [`PipelineStats`](crate::PipelineStats) counter it mirrors, so the two
//! cannot disagree:
//!
//! - `peer_sent_bytes_total{To}` = `sent_bytes` (with a streamed
//!   snapshot's bytes, as etcd counts `TotalSize`);
//! - `peer_sent_failures_total{To}` = `failed + dropped` (etcd counts
//!   failed posts and full-buffer drops; messages cancelled by a stop are
//!   not failures, as etcd drops them uncounted);
//! - `active_peers` / `disconnected_peers_total` on the peer status's
//!   transitions, and `active_peers` − 1 when an active peer's pipeline
//!   stops;
//! - the `snapshot_send_*` families for streamed snapshots.

use std::time::Duration;

use crate::id::Id;
use crate::metrics::{InFlight, Metrics};

use super::outgoing::Offer;

/// Where the core counts; a no-op without [`Metrics`].
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerMetrics {
    metrics: Option<Metrics>,
    local: Id,
    peer: Id,
}

impl PeerMetrics {
    /// Counts the pipeline from `local` to `peer` in `metrics`.
    pub(crate) fn new(metrics: Option<Metrics>, local: Id, peer: Id) -> Self {
        PeerMetrics {
            metrics,
            local,
            peer,
        }
    }

    /// `offer`, `bytes` long, was delivered `took` after its handover.
    pub(crate) fn delivered(&self, offer: &Offer, bytes: u64, took: Duration) {
        let Some(m) = &self.metrics else { return };
        match offer.streamed {
            true => m.snapshot_sent(offer.to, bytes, took),
            false => m.sent(offer.to, bytes),
        }
    }

    /// `offer` failed after its handover, or was refused as malformed.
    pub(crate) fn failed(&self, offer: &Offer) {
        let Some(m) = &self.metrics else { return };
        match offer.streamed {
            true => m.snapshot_send_failed(offer.to),
            false => m.send_failed(offer.to),
        }
    }

    /// `offer` was dropped on a full buffer (etcd peer.go:279).
    pub(crate) fn dropped(&self, offer: &Offer) {
        if let Some(m) = &self.metrics {
            m.send_failed(offer.to);
        }
    }

    /// The peer became active.
    pub(crate) fn active(&self) {
        if let Some(m) = &self.metrics {
            m.peer_active(self.local, self.peer);
        }
    }

    /// The peer became inactive.
    pub(crate) fn inactive(&self) {
        if let Some(m) = &self.metrics {
            m.peer_inactive(self.local, self.peer);
        }
    }

    /// The pipeline stopped while the peer was active.
    pub(crate) fn stopped_active(&self) {
        if let Some(m) = &self.metrics {
            m.peer_stopped(self.local, self.peer);
        }
    }

    /// A streamed snapshot was handed to a sender: in flight until the
    /// returned guard, kept with the message, is dropped.
    pub(crate) fn in_flight(&self, offer: &Offer) -> Option<InFlight> {
        let m = self.metrics.as_ref().filter(|_| offer.streamed)?;
        Some(m.snapshot_send_started(offer.to))
    }
}

//! Counters of the pipeline and etcd's followerStats for MsgApp latency.

use std::time::Duration;

/// MsgApp success and failure counts and latency (etcd's
/// `v2stats.FollowerStats`, `etcdserver/api/v2stats/leader.go:97-128`).
/// Latencies are in milliseconds, like etcd's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowerStats {
    /// MsgApps delivered.
    pub success: u64,
    /// MsgApps whose POST failed (not those dropped or cancelled before
    /// being sent, as in etcd).
    pub fail: u64,
    /// The last MsgApp's latency.
    pub current_ms: f64,
    /// The average latency.
    pub average_ms: f64,
    /// The standard deviation of the latency.
    pub standard_deviation_ms: f64,
    /// The smallest latency seen.
    pub minimum_ms: f64,
    /// The largest latency seen.
    pub maximum_ms: f64,
    sum_ms: f64,
    sum_sq_ms: f64,
}

impl FollowerStats {
    /// Records a delivered MsgApp that took `d` (etcd's `Succ`).
    pub fn succ(&mut self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        self.success += 1;
        self.current_ms = ms;
        self.sum_ms += ms;
        self.sum_sq_ms += ms * ms;
        let n = self.success as f64;
        self.average_ms = self.sum_ms / n;
        let variance = (self.sum_sq_ms / n - self.average_ms * self.average_ms).max(0.0);
        self.standard_deviation_ms = variance.sqrt();
        if self.success == 1 || ms < self.minimum_ms {
            self.minimum_ms = ms;
        }
        if ms > self.maximum_ms {
            self.maximum_ms = ms;
        }
    }

    /// Records a MsgApp whose POST failed (etcd's `Fail`).
    pub fn fail(&mut self) {
        self.fail += 1;
    }
}

/// What a pipeline has done with the messages it was offered.
///
/// Every [`Envelope`](crate::Envelope) and
/// [`SendSnapshot`](crate::SendSnapshot) ends in exactly one outcome, so at
/// any time `offered == delivered + reported() + queued + in_flight`, and
/// after [`Stop`](crate::Stop) `offered == delivered + reported()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineStats {
    /// Messages offered to the pipeline, including those it refused at once
    /// (dropped, or cancelled because it was stopping).
    pub offered: u64,
    /// Messages the peer answered with 204.
    pub delivered: u64,
    /// Messages that were sent but not delivered: the POST failed (connect
    /// or transport error, timeout, any answer but 204), or the sender
    /// carrying it stopped ([`ResetConnections`](crate::ResetConnections)).
    /// Also a [`SendSnapshot`](crate::SendSnapshot) refused because it did
    /// not carry a `MsgSnap`.
    pub failed: u64,
    /// Messages refused at once because the queue was full (etcd's
    /// "sending buffer is full").
    pub dropped: u64,
    /// Messages cancelled by [`Stop`](crate::Stop): queued or in flight at
    /// that moment, or offered after it.
    pub cancelled: u64,
    /// Messages waiting in the queue now.
    pub queued: u64,
    /// Messages being posted now.
    pub in_flight: u64,
    /// Bytes of the messages delivered (etcd's `sentBytes`).
    pub sent_bytes: u64,
    /// MsgApp counts and latency.
    pub follower: FollowerStats,
}

impl PipelineStats {
    /// Messages reported to raft as not delivered: failed, dropped or
    /// cancelled.
    pub fn reported(&self) -> u64 {
        self.failed + self.dropped + self.cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_stats_track_latency() {
        let mut s = FollowerStats::default();
        s.succ(Duration::from_millis(2));
        s.succ(Duration::from_millis(4));
        s.fail();
        assert_eq!((s.success, s.fail), (2, 1));
        assert_eq!(s.current_ms, 4.0);
        assert_eq!(s.minimum_ms, 2.0);
        assert_eq!(s.maximum_ms, 4.0);
        assert!((s.average_ms - 3.0).abs() < 1e-9);
        assert!((s.standard_deviation_ms - 1.0).abs() < 1e-9);
    }

    #[test]
    fn reported_sums_the_failure_kinds() {
        let s = PipelineStats {
            failed: 1,
            dropped: 2,
            cancelled: 3,
            ..Default::default()
        };
        assert_eq!(s.reported(), 6);
    }
}

//! What the probes found about one peer (xiang90/probing `status.go`), and
//! what etcd's monitor makes of it (rafthttp/probing_status.go).
//!
//! Pure: the caller passes the time.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::answer::PeerClock;

/// How often a peer is probed: etcd's `proberInterval`, `ConnReadTimeout -
/// 1s` (probing_status.go:36, peer.go:40).
pub(super) const PROBER_INTERVAL: Duration = Duration::from_secs(4);
/// How often a healthy peer's status is checked (etcd's
/// `statusMonitoringInterval`, probing_status.go:37).
pub(super) const STATUS_MONITORING_INTERVAL: Duration = Duration::from_secs(30);
/// How often an unhealthy peer's status is checked, and when the first
/// check comes (etcd's `statusErrorInterval`, probing_status.go:38).
pub(super) const STATUS_ERROR_INTERVAL: Duration = Duration::from_secs(5);
/// The clock difference past which etcd warns (probing_status.go:84).
pub(super) const MAX_CLOCK_DIFFERENCE: Duration = Duration::from_secs(1);
/// How long a probe may take: etcd's probes share the pipeline's
/// transport, whose reads time out after `ConnReadTimeout` (peer.go:40).
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The weight of a new round trip in the smoothed one (xiang90/probing
/// `status.go` `α`): `SRTT = (1-α)·SRTT + α·RTT`.
pub(super) const SRTT_WEIGHT: f64 = 0.125;

/// The prober's intervals and thresholds; [`Default`] gives etcd's.
#[derive(Debug, Clone, PartialEq)]
pub struct ProberConfig {
    /// Time between two probes of a peer (`PROBER_INTERVAL`).
    pub interval: Duration,
    /// Time between two checks of a healthy peer
    /// (`STATUS_MONITORING_INTERVAL`).
    pub monitoring_interval: Duration,
    /// Time to the first check, and between two checks of an unhealthy
    /// peer (`STATUS_ERROR_INTERVAL`).
    pub error_interval: Duration,
    /// The clock difference past which a check warns
    /// (`MAX_CLOCK_DIFFERENCE`).
    pub max_clock_difference: Duration,
    /// How long one probe may take, connection included
    /// (`PROBE_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            interval: PROBER_INTERVAL,
            monitoring_interval: STATUS_MONITORING_INTERVAL,
            error_interval: STATUS_ERROR_INTERVAL,
            max_clock_difference: MAX_CLOCK_DIFFERENCE,
            timeout: PROBE_TIMEOUT,
        }
    }
}

/// How far the peer's clock is from ours, after allowing for half the
/// round trip (xiang90/probing `status.go` `record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOffset {
    /// The peer's clock is behind ours by this much (etcd's `ClockDiff`
    /// is positive).
    Behind(Duration),
    /// The peer's clock is ahead of ours by this much (etcd's `ClockDiff`
    /// is negative).
    Ahead(Duration),
}

impl ClockOffset {
    /// How far apart the clocks are, either way.
    pub fn magnitude(self) -> Duration {
        match self {
            ClockOffset::Behind(d) | ClockOffset::Ahead(d) => d,
        }
    }

    /// Our time `now` minus the peer's `peer`, less `half_rtt`.
    fn between(now: SystemTime, peer: SystemTime, half_rtt: Duration) -> ClockOffset {
        let nanos = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        let diff = match now.duration_since(peer) {
            Ok(behind) => nanos(behind),
            Err(ahead) => -nanos(ahead.duration()),
        } - nanos(half_rtt);
        let magnitude =
            Duration::from_nanos(u64::try_from(diff.unsigned_abs()).unwrap_or(u64::MAX));
        if diff >= 0 {
            ClockOffset::Behind(magnitude)
        } else {
            ClockOffset::Ahead(magnitude)
        }
    }
}

impl fmt::Display for ClockOffset {
    /// etcd's `clock-drift` value: positive when the peer is behind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockOffset::Behind(d) => write!(f, "{d:?}"),
            ClockOffset::Ahead(d) => write!(f, "-{d:?}"),
        }
    }
}

/// What the probes found about one peer (xiang90/probing `Status`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerHealth {
    /// Whether the last probe succeeded; `false` until one has.
    pub healthy: bool,
    /// The smoothed round-trip time (`SRTT_WEIGHT`); zero until a probe
    /// succeeded.
    pub srtt: Duration,
    /// The peer's clock against ours, from the last successful probe that
    /// told a time.
    pub clock_offset: Option<ClockOffset>,
    /// Probes answered or failed.
    pub total: u64,
    /// Probes failed.
    pub loss: u64,
    /// Why the last probe failed; `None` after a success.
    pub error: Option<String>,
}

impl PeerHealth {
    /// A probe came back healthy after `rtt`, at our time `now`, telling
    /// the peer's clock if it did.
    pub fn record(&mut self, rtt: Duration, clock: Option<PeerClock>, now: SystemTime) {
        self.total += 1;
        self.healthy = true;
        self.srtt = self.srtt.mul_f64(1.0 - SRTT_WEIGHT) + rtt.mul_f64(SRTT_WEIGHT);
        if let Some(clock) = clock {
            self.clock_offset = Some(ClockOffset::between(now, clock.estimate(), self.srtt / 2));
        }
        self.error = None;
    }

    /// A probe failed with `error`.
    pub fn record_failure(&mut self, error: String) {
        self.total += 1;
        self.loss += 1;
        self.healthy = false;
        self.error = Some(error);
    }
}

/// What one monitor check found (etcd's `monitorProbingStatus`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    /// Warn "prober detected unhealthy status".
    pub unhealthy: bool,
    /// Warn "prober found high clock drift", with the offset.
    pub drift: Option<ClockOffset>,
    /// When the next check is due: [`ProberConfig::error_interval`] while
    /// unhealthy, [`ProberConfig::monitoring_interval`] otherwise.
    pub next: Duration,
}

/// Checks `health` as etcd's monitor does, except that a clock ahead of
/// ours warns too (etcd compares the signed difference with 1 s, so it
/// only sees peers whose clock is behind).
pub(super) fn check(health: &PeerHealth, config: &ProberConfig) -> Check {
    let drift = health
        .clock_offset
        .filter(|o| o.magnitude() > config.max_clock_difference);
    Check {
        unhealthy: !health.healthy,
        drift,
        next: if health.healthy {
            config.monitoring_interval
        } else {
            config.error_interval
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const MS: Duration = Duration::from_millis(1);

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn srtt_is_smoothed_with_etcds_weight() {
        let mut h = PeerHealth::default();
        h.record(80 * MS, None, at(0));
        assert_eq!(h.srtt, 10 * MS);
        h.record(80 * MS, None, at(0));
        // 0.875 * 10 + 0.125 * 80 = 18.75 ms
        assert_eq!(h.srtt, Duration::from_micros(18_750));
        assert_eq!((h.total, h.loss, h.healthy), (2, 0, true));
    }

    #[test]
    fn clock_offset_allows_for_half_the_round_trip() {
        // srtt stays 100 ms: the peer's time is taken 50 ms before now.
        let mut h = PeerHealth {
            srtt: 100 * MS,
            ..PeerHealth::default()
        };
        h.record(100 * MS, Some(PeerClock::Now(at(10_000))), at(12_050));
        assert_eq!(h.clock_offset, Some(ClockOffset::Behind(2000 * MS)));
        h.record(100 * MS, Some(PeerClock::Now(at(10_000))), at(8_050));
        assert_eq!(h.clock_offset, Some(ClockOffset::Ahead(2000 * MS)));
        assert_eq!(h.clock_offset.unwrap().to_string(), "-2s");
    }

    #[test]
    fn a_date_header_counts_from_the_middle_of_its_second() {
        let mut h = PeerHealth::default();
        h.record(
            Duration::ZERO,
            Some(PeerClock::Date(at(10_000))),
            at(10_500),
        );
        assert_eq!(h.clock_offset, Some(ClockOffset::Behind(Duration::ZERO)));
    }

    #[test]
    fn failures_make_it_unhealthy_and_keep_the_last_offset() {
        let mut h = PeerHealth::default();
        h.record(MS, Some(PeerClock::Now(at(0))), at(3000));
        h.record_failure("connection refused".into());
        assert_eq!((h.total, h.loss, h.healthy), (2, 1, false));
        assert_eq!(h.error.as_deref(), Some("connection refused"));
        assert!(h.clock_offset.is_some());
        h.record(MS, None, at(0));
        assert_eq!(h.error, None);
    }

    #[test]
    fn checks_come_often_while_unhealthy_and_warn_on_drift_either_way() {
        let config = ProberConfig::default();
        let mut h = PeerHealth::default();
        let c = check(&h, &config);
        assert_eq!(
            (c.unhealthy, c.drift, c.next),
            (true, None, STATUS_ERROR_INTERVAL)
        );
        h.record(MS, None, at(0));
        let c = check(&h, &config);
        assert_eq!((c.unhealthy, c.next), (false, STATUS_MONITORING_INTERVAL));
        h.clock_offset = Some(ClockOffset::Ahead(1001 * MS));
        assert_eq!(check(&h, &config).drift, h.clock_offset);
        h.clock_offset = Some(ClockOffset::Behind(1000 * MS));
        assert_eq!(check(&h, &config).drift, None, "1 s exactly is within");
    }
}

//! Repeated log lines merged into one count, as etcd's `MergeLogger`
//! (pkg/logutil/merge_logger.go), so a burst of drops or failed posts
//! cannot flood the log (etcd's issue #3462) and no occurrence goes
//! uncounted.
//!
//! A [`LogLimiter`] is keyed by what the line is about (for example the
//! kind of warning and the peer). The first event of a key is logged at
//! once; the ones that follow within [`MERGE_PERIOD`] are only counted.
//! [`LogLimiter::tick`], called every [`OUTPUT_INTERVAL`], returns one
//! [`Merged`] per key whose period ended with a count, to be logged as the
//! line followed by `[merged N repeated lines in T]`; a key whose period
//! ended with nothing merged is forgotten, so its next event is logged at
//! once again. [`LogLimiter::drain`] returns what is still counted (at
//! stop). So the first line plus the merged counts always add up to the
//! events, and a steady stream of events gives at most one line per key
//! per period.
//!
//! Pure: the caller passes `now` and does the logging.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long a key's repeats are merged before they are reported
/// (etcd's `defaultMergePeriod`, merge_logger.go).
pub(crate) const MERGE_PERIOD: Duration = Duration::from_secs(1);

/// How often [`LogLimiter::tick`] should be called (etcd's
/// `outputInterval`, merge_logger.go).
pub(crate) const OUTPUT_INTERVAL: Duration = Duration::from_secs(1);

/// The resolution of the reported duration (etcd's
/// `defaultTimeOutputScale`, merge_logger.go).
const TIME_OUTPUT_SCALE: Duration = Duration::from_millis(10);

/// Counts repeated events per key; see the module doc.
#[derive(Debug)]
pub(crate) struct LogLimiter<K> {
    period: Duration,
    keys: HashMap<K, Period>,
}

/// One key's current merge period.
#[derive(Debug, Clone, Copy)]
struct Period {
    start: Instant,
    count: u64,
}

/// Events of one key that were counted instead of logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merged<K> {
    /// What the events were about.
    pub(crate) key: K,
    /// How many were merged.
    pub(crate) count: u64,
    /// Over how long, rounded to 10 ms.
    pub(crate) took: Duration,
}

impl<K> fmt::Display for Merged<K> {
    /// etcd's summary, `[merged N repeated lines in T]`, to append to the
    /// line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[merged {} repeated lines in {:?}]",
            self.count, self.took
        )
    }
}

impl<K: Eq + Hash + Clone> LogLimiter<K> {
    /// A limiter merging each key's repeats for `period`.
    pub(crate) fn new(period: Duration) -> Self {
        LogLimiter {
            period,
            keys: HashMap::new(),
        }
    }

    /// An event of `key` at `now`. `true`: log it now (the first of its
    /// period). `false`: it was counted, and a later [`tick`](Self::tick)
    /// or [`drain`](Self::drain) reports it.
    pub(crate) fn event(&mut self, key: K, now: Instant) -> bool {
        match self.keys.get_mut(&key) {
            Some(period) => {
                period.count += 1;
                false
            }
            None => {
                self.keys.insert(
                    key,
                    Period {
                        start: now,
                        count: 0,
                    },
                );
                true
            }
        }
    }

    /// The keys whose period has ended by `now` with events merged, each
    /// starting a new period; keys whose period ended empty are forgotten.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Merged<K>> {
        let period = self.period;
        let mut merged = Vec::new();
        self.keys.retain(|key, p| {
            if now.saturating_duration_since(p.start) < period {
                return true;
            }
            if p.count == 0 {
                return false;
            }
            merged.push(summary(key, *p, now));
            *p = Period {
                start: now,
                count: 0,
            };
            true
        });
        merged
    }

    /// Every count not reported yet, whatever its period, and forgets all
    /// keys: for when the owner stops.
    pub(crate) fn drain(&mut self, now: Instant) -> Vec<Merged<K>> {
        self.keys
            .drain()
            .filter(|(_, p)| p.count > 0)
            .map(|(key, p)| summary(&key, p, now))
            .collect()
    }
}

fn summary<K: Clone>(key: &K, period: Period, now: Instant) -> Merged<K> {
    Merged {
        key: key.clone(),
        count: period.count,
        took: round(now.saturating_duration_since(period.start)),
    }
}

fn round(d: Duration) -> Duration {
    let scale = TIME_OUTPUT_SCALE.as_nanos();
    let steps = (d.as_nanos() + scale / 2) / scale;
    TIME_OUTPUT_SCALE * u32::try_from(steps).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ten_thousand_events_make_few_lines_that_count_them_all() {
        let mut limiter = LogLimiter::new(MERGE_PERIOD);
        let start = Instant::now();
        let mut next_tick = start + OUTPUT_INTERVAL;
        let (mut lines, mut counted) = (0u64, 0u64);
        // 10 000 drops, one per ms for 10 s, with the owner's tick once a
        // second, as an actor's `run_interval` would call it.
        for i in 0..10_000u32 {
            let now = start + MS * i;
            if now >= next_tick {
                for m in limiter.tick(now) {
                    lines += 1;
                    counted += m.count;
                }
                next_tick += OUTPUT_INTERVAL;
            }
            if limiter.event("drop", now) {
                lines += 1;
                counted += 1;
            }
        }
        for m in limiter.drain(start + MS * 10_000) {
            lines += 1;
            counted += m.count;
        }
        assert_eq!(counted, 10_000);
        assert!(lines <= 12, "{lines} lines");
        assert!(limiter.drain(start + MS * 10_000).is_empty());
    }

    #[test]
    fn the_first_event_logs_and_repeats_merge_until_the_period_ends() {
        let mut limiter = LogLimiter::new(MERGE_PERIOD);
        let t0 = Instant::now();
        assert!(limiter.event(7, t0));
        assert!(!limiter.event(7, t0 + 100 * MS));
        assert!(!limiter.event(7, t0 + 200 * MS));
        assert!(limiter.event(8, t0 + 200 * MS), "keys merge apart");
        assert!(limiter.tick(t0 + 999 * MS).is_empty(), "period not over");
        let merged = limiter.tick(t0 + 1004 * MS);
        assert_eq!(
            merged,
            vec![Merged {
                key: 7,
                count: 2,
                took: 1000 * MS
            }]
        );
        assert_eq!(merged[0].to_string(), "[merged 2 repeated lines in 1s]");
    }

    #[test]
    fn a_quiet_period_forgets_the_key_so_its_next_event_logs_at_once() {
        let mut limiter = LogLimiter::new(MERGE_PERIOD);
        let t0 = Instant::now();
        assert!(limiter.event("x", t0));
        assert!(limiter.tick(t0 + 1000 * MS).is_empty());
        assert!(limiter.event("x", t0 + 1500 * MS), "forgotten, so logged");
    }

    #[test]
    fn a_merged_period_keeps_merging_without_a_new_first_line() {
        let mut limiter = LogLimiter::new(MERGE_PERIOD);
        let t0 = Instant::now();
        assert!(limiter.event("x", t0));
        assert!(!limiter.event("x", t0 + 10 * MS));
        assert_eq!(limiter.tick(t0 + 1000 * MS).len(), 1);
        assert!(!limiter.event("x", t0 + 1010 * MS), "still bursting");
        let drained = limiter.drain(t0 + 1500 * MS);
        assert_eq!(drained.len(), 1);
        assert_eq!((drained[0].count, drained[0].took), (1, 500 * MS));
    }

    #[test]
    fn drain_reports_only_keys_with_counts() {
        let mut limiter = LogLimiter::new(MERGE_PERIOD);
        let t0 = Instant::now();
        limiter.event("once", t0);
        limiter.event("twice", t0);
        limiter.event("twice", t0);
        let drained = limiter.drain(t0);
        assert_eq!(drained.len(), 1);
        assert_eq!((drained[0].key, drained[0].count), ("twice", 1));
    }
}

//! The throttle on "sending buffer is full" log lines: like etcd's
//! `MergeWarningf`, at most one line per interval, the drops in between
//! merged into a count. Unlike a throttle that only logs on the next drop,
//! a merged count is due at the next interval tick whether or not another
//! drop comes, so a burst's total is never lost.

use std::time::{Duration, Instant};

/// How often a full buffer is logged at most (etcd's capnslog merge
/// interval, `pkg/logutil/merge_logger.go`: `defaultMergePeriod`, 1 s).
pub(crate) const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// One line to log, standing for `dropped` drops: the drop that opened a
/// burst (1), or the drops merged since the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DropLine {
    /// How many drops the line stands for.
    pub(crate) dropped: u64,
}

/// Counts drops and says when to log them.
#[derive(Debug, Default)]
pub(crate) struct DropLog {
    /// When the last line was logged.
    last_line: Option<Instant>,
    /// Drops not yet in a line.
    pending: u64,
}

impl DropLog {
    /// A drop at `now`: a line at once, with whatever waited, when none
    /// was logged within the interval; else the drop waits for the next
    /// line.
    pub(crate) fn record(&mut self, now: Instant) -> Option<DropLine> {
        self.pending += 1;
        let quiet = self
            .last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= DROP_LOG_INTERVAL);
        quiet.then(|| self.line(now))?
    }

    /// The interval tick at `now`: the waiting drops, once their line is
    /// due.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<DropLine> {
        let due = self.deadline().is_some_and(|at| now >= at);
        due.then(|| self.line(now))?
    }

    /// The waiting drops now, due or not: the pipeline is stopping.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<DropLine> {
        self.line(now)
    }

    /// When the next merged line is due; `None` while no drop waits.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.pending == 0 {
            return None;
        }
        let at = self.last_line?;
        Some(at + DROP_LOG_INTERVAL)
    }

    fn line(&mut self, now: Instant) -> Option<DropLine> {
        if self.pending == 0 {
            return None;
        }
        self.last_line = Some(now);
        Some(DropLine {
            dropped: std::mem::take(&mut self.pending),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_drop_is_logged_at_once() {
        let t0 = Instant::now();
        let mut log = DropLog::default();
        assert_eq!(log.record(t0), Some(DropLine { dropped: 1 }));
        assert_eq!(log.deadline(), None, "nothing waits");
        assert_eq!(log.tick(t0 + ms(5_000)), None);
    }

    #[test]
    fn a_short_burst_is_logged_at_the_next_tick_without_another_drop() {
        let t0 = Instant::now();
        let mut log = DropLog::default();
        log.record(t0);
        for i in 1..=9 {
            assert_eq!(log.record(t0 + ms(i)), None, "merged");
        }
        assert_eq!(log.deadline(), Some(t0 + DROP_LOG_INTERVAL));
        assert_eq!(log.tick(t0 + ms(999)), None, "not due yet");
        let line = log.tick(t0 + ms(1_000)).expect("due at the tick");
        assert_eq!(line.dropped, 9);
        assert_eq!(log.deadline(), None);
    }

    #[test]
    fn ten_thousand_drops_give_few_lines_that_add_up() {
        let t0 = Instant::now();
        let mut log = DropLog::default();
        let mut lines = Vec::new();
        // 10 000 drops over 2.5 s, one every 250 µs, with the shell's tick
        // firing whenever a line is due.
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(250 * i);
            if let Some(due) = log.deadline().filter(|at| *at <= now) {
                lines.extend(log.tick(due));
            }
            lines.extend(log.record(now));
        }
        let end = t0 + Duration::from_micros(250 * 10_000);
        let due = log.deadline().expect("the tail of the burst waits");
        assert!(due > end - DROP_LOG_INTERVAL);
        lines.extend(log.tick(due));
        assert_eq!(log.deadline(), None);
        assert!(lines.len() <= 5, "bounded: {lines:?}");
        assert_eq!(lines.iter().map(|l| l.dropped).sum::<u64>(), 10_000);
    }

    #[test]
    fn a_late_drop_takes_the_waiting_ones_into_its_line() {
        let t0 = Instant::now();
        let mut log = DropLog::default();
        log.record(t0);
        log.record(t0 + ms(10));
        // No tick came (the shell was busy); the next drop is past due.
        let line = log.record(t0 + ms(1_500)).expect("a line at once");
        assert_eq!(line.dropped, 2, "the waiting drop and this one");
        assert_eq!(log.deadline(), None);
        assert_eq!(log.record(t0 + ms(1_600)), None, "a new burst merges");
        assert_eq!(log.deadline(), Some(t0 + ms(2_500)));
    }

    #[test]
    fn flush_logs_what_waits_even_before_it_is_due() {
        let t0 = Instant::now();
        let mut log = DropLog::default();
        assert_eq!(log.flush(t0), None, "nothing to flush");
        log.record(t0);
        log.record(t0 + ms(1));
        log.record(t0 + ms(2));
        assert_eq!(log.flush(t0 + ms(3)), Some(DropLine { dropped: 2 }));
        assert_eq!(log.flush(t0 + ms(4)), None);
    }
}

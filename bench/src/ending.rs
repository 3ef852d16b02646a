//! The end of a run: what `Stop` found in A's pipelines, and the checks
//! that every message is accounted for and that B processed exactly what
//! A delivered, give or take what `Stop` cancelled in flight.
//!
//! `Stop` may cancel a POST whose 204 was not read yet although B already
//! processed its message; the pipeline reports it as not delivered
//! (at-least-once reporting). So B may have processed more than A
//! delivered, by at most the number of messages `Stop` cancelled while they
//! were in flight, and never fewer. The pipeline's stats count cancelled
//! messages without telling in-flight from queued ones, so the bench works
//! it out: it stops a pipeline only after B processed every message the
//! pipeline took, so the queue is empty (checked) and every message `Stop`
//! cancelled was in flight (at most the `in_flight` seen just before it).

use rafthttp_pipeline::PipelineStats;

use crate::report::Outcome;

/// What `Stop` found, over all of A's pipelines.
#[derive(Debug, Default)]
pub struct Ending {
    /// The stats each `Stop` returned.
    stopped: Vec<PipelineStats>,
    /// Messages queued just before `Stop`.
    queued: u64,
    /// Messages being posted just before `Stop`.
    in_flight: u64,
    /// Messages `Stop` cancelled.
    cancelled_by_stop: u64,
}

impl Ending {
    /// Adds one pipeline: its stats just `before` it was stopped, and
    /// what `Stop` returned.
    pub fn add(&mut self, before: &PipelineStats, after: PipelineStats) {
        self.queued += before.queued;
        self.in_flight += before.in_flight;
        self.cancelled_by_stop += after.cancelled.saturating_sub(before.cancelled);
        self.stopped.push(after);
    }

    /// Records the checks' findings and the two counts in `out`, given
    /// that B `processed` that many messages in all.
    pub fn check(&self, out: &mut Outcome, processed: u64) {
        for problem in self.problems(processed) {
            out.check(false, || problem);
        }
        let delivered = self.delivered();
        out.set("cancelled_in_flight_at_stop", self.cancelled_by_stop);
        out.set(
            "processed_not_delivered",
            processed.saturating_sub(delivered),
        );
    }

    fn delivered(&self) -> u64 {
        self.stopped.iter().map(|s| s.delivered).sum()
    }

    /// Everything wrong with this ending; empty when all is well.
    fn problems(&self, processed: u64) -> Vec<String> {
        let mut problems = Vec::new();
        for s in &self.stopped {
            if s.offered != s.delivered + s.reported() {
                problems.push(format!("pipeline accounting: {s:?}"));
            }
            if s.failed != 0 {
                problems.push(format!("{} POSTs failed", s.failed));
            }
        }
        if self.queued != 0 {
            problems.push(format!(
                "{} messages still queued after B processed all",
                self.queued
            ));
        }
        if self.cancelled_by_stop > self.in_flight {
            problems.push(format!(
                "Stop cancelled {} messages with {} in flight and none queued",
                self.cancelled_by_stop, self.in_flight
            ));
        }
        let (delivered, spare) = (self.delivered(), self.cancelled_by_stop);
        if processed < delivered || processed > delivered + spare {
            problems.push(format!(
                "A delivered {delivered} (Stop cancelled {spare} in flight) but B processed {processed}"
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipeline that took `offered` messages and delivered `delivered`,
    /// with `in_flight` posts unanswered just before `Stop`, which then
    /// cancelled them.
    fn ending(offered: u64, delivered: u64, in_flight: u64) -> Ending {
        let before = PipelineStats {
            offered,
            delivered,
            in_flight,
            ..Default::default()
        };
        let after = PipelineStats {
            in_flight: 0,
            cancelled: in_flight,
            ..before.clone()
        };
        let mut end = Ending::default();
        end.add(&before, after);
        end
    }

    #[test]
    fn b_processing_exactly_what_a_delivered_passes() {
        assert_eq!(ending(100, 100, 0).problems(100), Vec::<String>::new());
    }

    #[test]
    fn b_may_have_processed_what_stop_cancelled_in_flight() {
        let end = ending(21_000, 20_998, 2);
        for processed in [20_998, 20_999, 21_000] {
            assert!(end.problems(processed).is_empty(), "{processed}");
        }
    }

    #[test]
    fn b_processing_more_than_the_cancelled_in_flight_fails() {
        let problems = ending(21_000, 20_998, 2).problems(21_001);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("B processed 21001"), "{problems:?}");
    }

    #[test]
    fn b_processing_fewer_than_a_delivered_fails() {
        assert_eq!(ending(100, 100, 0).problems(99).len(), 1);
        assert_eq!(ending(100, 98, 2).problems(97).len(), 1);
    }

    #[test]
    fn a_queue_left_at_stop_fails() {
        // B cannot have processed everything while a message is queued, and
        // a message cancelled from the queue never reached B.
        let before = PipelineStats {
            offered: 10,
            delivered: 9,
            queued: 1,
            ..Default::default()
        };
        let after = PipelineStats {
            queued: 0,
            cancelled: 1,
            ..before.clone()
        };
        let mut end = Ending::default();
        end.add(&before, after);
        let problems = end.problems(10);
        assert!(
            problems.iter().any(|p| p.contains("still queued")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("none queued")),
            "{problems:?}"
        );
    }

    #[test]
    fn counts_add_up_over_several_pipelines() {
        let mut end = ending(50, 49, 1);
        let two = ending(50, 50, 0);
        end.add(&two.stopped[0].clone(), two.stopped[0].clone());
        assert!(end.problems(100).is_empty());
        assert!(end.problems(99).is_empty());
        assert_eq!(end.problems(101).len(), 1);
    }

    #[test]
    fn failed_posts_and_broken_accounting_fail() {
        let mut end = ending(10, 10, 0);
        end.stopped[0].failed = 1;
        let problems = end.problems(10);
        assert!(
            problems.iter().any(|p| p.contains("1 POSTs failed")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("accounting")),
            "{problems:?}"
        );
    }
}

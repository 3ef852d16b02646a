//! Bounded waits: each ends on the event it waits for and fails the test
//! after its bound.

use std::fmt::Debug;
use std::time::Duration;

use actix::Addr;
use rafthttp_pipeline::{GetStats, PipelineActor, PipelineStats};
use tokio::sync::watch;

use super::WAIT;

/// Waits until the value `rx` watches satisfies `done`, and returns it;
/// fails after `within`, naming `what` and showing the last value.
pub async fn until<T: Clone + Debug>(
    rx: &watch::Receiver<T>,
    within: Duration,
    what: &str,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut waiting = rx.clone();
    let waited = tokio::time::timeout(within, waiting.wait_for(|v| done(v))).await;
    if let Ok(Ok(value)) = waited {
        return value.clone();
    }
    panic!(
        "timed out after {within:?} waiting for {what}; have {:?}",
        *rx.borrow()
    );
}

/// Waits, at most [`WAIT`], until the count `tx` publishes reaches `n`.
pub async fn count(tx: &watch::Sender<usize>, n: usize, what: &str) {
    until(&tx.subscribe(), WAIT, what, |&have| have >= n).await;
}

/// How often [`wait_stats`] asks.
const STATS_POLL: Duration = Duration::from_millis(5);

/// Waits until the pipeline's counters satisfy `done`, asking with
/// `GetStats`; fails after [`WAIT`].
///
/// The pipeline publishes its counters only when asked, so this is the one
/// wait that polls: the pause between questions paces the asking and
/// orders nothing.
pub async fn wait_stats(
    p: &Addr<PipelineActor>,
    what: &str,
    done: impl Fn(&PipelineStats) -> bool,
) -> PipelineStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = p.send(GetStats).await.expect("pipeline alive");
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(STATS_POLL).await;
    }
}

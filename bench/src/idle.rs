//! The idle window of W1 (`--idle`): after the warm-up, with every
//! pipeline's connections open, nothing is sent for a while, and each side's
//! CPU time and wake-ups (voluntary context switches, all threads) over that
//! window tell what the open pipelines cost while they wait.

use std::time::{Duration, Instant};

use crate::child::ReceiverChild;
use crate::probe::{cpu_seconds, wakeups};
use crate::report::Outcome;

/// What each side spent in the idle window.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    seconds: f64,
    sender_cpu_s: f64,
    receiver_cpu_s: f64,
    sender_wakeups: u64,
    receiver_wakeups: u64,
}

impl Idle {
    /// Waits `window` without sending and measures both sides; `None`
    /// when `window` is zero.
    pub async fn measure(
        child: &mut ReceiverChild,
        window: Duration,
    ) -> Result<Option<Self>, String> {
        if window.is_zero() {
            return Ok(None);
        }
        let rx0 = child.stats().await?;
        let (t0, cpu0, wake0) = (Instant::now(), cpu_seconds(), wakeups());
        actix_web::rt::time::sleep(window).await;
        let (cpu1, wake1, seconds) = (cpu_seconds(), wakeups(), t0.elapsed().as_secs_f64());
        let rx1 = child.stats().await?;
        Ok(Some(Idle {
            seconds,
            sender_cpu_s: cpu1 - cpu0,
            receiver_cpu_s: rx1.cpu_s - rx0.cpu_s,
            sender_wakeups: wake1 - wake0,
            receiver_wakeups: rx1.wakeups - rx0.wakeups,
        }))
    }

    /// Sets the `idle_*` figures: CPU in ms per second of the window and
    /// wake-ups per second, for each side, and the sender's per peer.
    pub fn record(&self, out: &mut Outcome, peers: usize) {
        let per_s = |x: f64| x / self.seconds.max(1e-9);
        let sender_wakeups = per_s(self.sender_wakeups as f64);
        out.set("idle_s", self.seconds);
        out.set("idle_sender_cpu_ms_per_s", per_s(self.sender_cpu_s) * 1e3);
        out.set(
            "idle_receiver_cpu_ms_per_s",
            per_s(self.receiver_cpu_s) * 1e3,
        );
        out.set("idle_sender_wakeups_per_s", sender_wakeups);
        out.set(
            "idle_receiver_wakeups_per_s",
            per_s(self.receiver_wakeups as f64),
        );
        out.set(
            "idle_sender_wakeups_per_s_per_peer",
            sender_wakeups / peers as f64,
        );
    }
}

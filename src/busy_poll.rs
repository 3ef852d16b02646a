//! Busy polling: after a stream writer hands a chunk to its socket, the
//! thread keeps polling its sockets for a short window instead of going to
//! sleep, so that the answer (a MsgAppResp, the next MsgApp) finds it
//! awake.
//!
//! Why: a thread that sleeps in `epoll_wait` on an idle CPU is woken by an
//! interrupt to that CPU, and on a virtual machine that wake-up costs tens
//! of microseconds, more than the rest of a round trip. Go's scheduler
//! spins briefly before it parks for the same reason. Off by default
//! ([`TransportConfig::busy_poll`](crate::transport::TransportConfig::busy_poll)):
//! it spends CPU while it waits.
//!
//! How: one spinner task per thread at most, which yields to the runtime
//! until the window has passed. Tokio runs a yielded task again only after
//! it has run every ready task and polled its I/O driver without waiting,
//! so the spinner never delays other work; it only keeps the thread from
//! sleeping.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How many turns of the spinner pass between two yields to the kernel.
const KERNEL_YIELD_EVERY: u32 = 8;

thread_local! {
    /// Until when this thread polls; `None` when no spinner runs on it.
    static UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Keeps the current thread polling its I/O, without sleeping, for
/// `window` from now (extending a window already running). Call it from
/// an actix arbiter.
pub(crate) fn poll_for(window: Duration) {
    let until = Instant::now() + window;
    let running = UNTIL.with(|u| u.replace(Some(until)).is_some());
    if !running {
        actix_web::rt::spawn(spin());
    }
}

/// Whether this thread is polling now.
fn polling() -> bool {
    UNTIL
        .with(Cell::get)
        .is_some_and(|until| Instant::now() < until)
}

/// Yields until the window has passed, then lets the thread sleep again.
async fn spin() {
    let mut turns = 0u32;
    while polling() {
        actix_web::rt::task::yield_now().await;
        // And to the kernel, now and then: a thread that shares its CPU
        // with the one that is to answer must let it run, or the answer
        // waits for the window to end.
        turns = turns.wrapping_add(1);
        if turns % KERNEL_YIELD_EVERY == 0 {
            std::thread::yield_now();
        }
    }
    UNTIL.with(|u| u.set(None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn the_spinner_runs_for_its_window_and_then_ends() {
        poll_for(Duration::from_millis(20));
        assert!(polling());
        // A second call extends the window; it starts no second spinner.
        poll_for(Duration::from_millis(40));
        let started = Instant::now();
        // The spinner leaves no event to wait on; this polls its state,
        // for at most a second.
        while UNTIL.with(Cell::get).is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "the spinner ends"
            );
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(35));
        assert!(!polling());
    }
}

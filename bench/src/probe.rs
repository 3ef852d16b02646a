//! What a process costs, read the way the Go harness reads it: CPU time
//! and context switches from `getrusage`, peak RSS from `VmHWM`, the
//! machine's busy time from `/proc/stat`, and wall-clock nanoseconds that
//! both processes share.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// This process's `getrusage(RUSAGE_SELF)`: all its threads, live or gone.
fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// User plus system CPU seconds this process has used, all threads.
pub fn cpu_seconds() -> f64 {
    let usage = rusage();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Voluntary context switches of all this process's threads: each is a
/// thread that went to sleep and had to be woken again, so over an idle
/// window they count the process's wake-ups.
pub fn wakeups() -> u64 {
    rusage().ru_nvcsw as u64
}

/// A `kB` line of `/proc/self/status`, e.g. `VmHWM` (peak RSS); -1 when
/// it cannot be read, as the Go harness reports it.
pub fn status_kb(key: &str) -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1)
}

/// Busy CPU seconds of the whole machine (user, nice, system, irq,
/// softirq; not idle, iowait or steal).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    busy / 100.0 // USER_HZ
}

/// Wall-clock nanoseconds since the epoch, comparable across processes.
pub fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The CPU counters at one moment, for both processes and the machine.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    at: Instant,
    sender_cpu: f64,
    receiver_cpu: f64,
    busy: f64,
}

impl Mark {
    /// Now, with the receiver's CPU seconds as it just reported them.
    pub fn now(receiver_cpu: f64) -> Self {
        Mark {
            at: Instant::now(),
            sender_cpu: cpu_seconds(),
            receiver_cpu,
            busy: machine_busy_seconds(),
        }
    }
}

/// CPU spent between two marks (the Go harness's `noise`).
#[derive(Debug, Clone, Copy)]
pub struct CpuSpent {
    pub sender_s: f64,
    pub receiver_s: f64,
    /// Busy time of other processes, as a fraction of all CPUs.
    pub foreign_frac: f64,
}

impl CpuSpent {
    pub fn between(a: Mark, b: Mark) -> Self {
        let sender_s = b.sender_cpu - a.sender_cpu;
        let receiver_s = b.receiver_cpu - a.receiver_cpu;
        let foreign = (b.busy - a.busy - sender_s - receiver_s).max(0.0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        CpuSpent {
            sender_s,
            receiver_s,
            foreign_frac: foreign / (wall * cpus),
        }
    }

    /// Microseconds per unit on each side: (sender, receiver).
    pub fn per_unit_us(&self, units: u64) -> (f64, f64) {
        let units = units.max(1) as f64;
        (self.sender_s / units * 1e6, self.receiver_s / units * 1e6)
    }
}

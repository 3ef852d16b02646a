//! The JSON lines the stand-in prints about what it does, and its memory.

use serde_json::{json, Value};

/// Where the stand-in reports what it does, one JSON object per line on
/// stdout: always the lifecycle (`down`, `up`, and `pipeline_stopped` for
/// each peer at exit); with `--events` also every append answer and every
/// snapshot step.
#[derive(Debug, Clone, Copy)]
pub struct Events {
    detailed: bool,
}

impl Events {
    /// Lifecycle lines only, or (`detailed`) everything.
    pub fn new(detailed: bool) -> Events {
        Events { detailed }
    }

    /// Whether per-message and per-snapshot events are printed.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// Prints a lifecycle event.
    pub fn lifecycle(&self, event: Value) {
        println!("{event}");
    }

    /// Prints a detailed event, when `--events` asked for them.
    pub fn detail(&self, event: impl FnOnce() -> Value) {
        if self.detailed {
            println!("{}", event());
        }
    }
}

/// This process's peak and current resident set size, in KiB
/// (`VmHWM` and `VmRSS` of `/proc/self/status`), as a JSON object;
/// `null` fields where the kernel does not say.
pub fn memory() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    json!({"vm_hwm_kb": field("VmHWM:"), "vm_rss_kb": field("VmRSS:")})
}

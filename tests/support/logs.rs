//! Warnings captured from the `log` facade, for the tests that count log
//! lines: one logger per test binary, installed once.

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Installs the capture, once per test binary: from then on every warning
/// is kept. No other logger may be installed in a binary that uses it.
pub fn capture_warnings() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&Capture).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Every warning captured so far that contains each of `needles`.
pub fn warnings_with(needles: &[&str]) -> Vec<String> {
    let lines = LINES.lock().unwrap();
    let matches = |line: &&String| needles.iter().all(|n| line.contains(n));
    lines.iter().filter(matches).cloned().collect()
}

/// How many events a warning stands for: the count etcd's merge logger
/// writes (`[merged N repeated lines in T]`), or 1.
pub fn merged_count(line: &str) -> u64 {
    let merged = line.split("[merged ").nth(1);
    let count = merged.and_then(|rest| rest.split(' ').next()?.parse().ok());
    count.unwrap_or(1)
}

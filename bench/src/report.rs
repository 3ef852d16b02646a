//! The `RESULT {json}` line, with the Go harness's field names, and the
//! run's self-checks.

use serde_json::{Map, Value};

/// The figures every line carries; `null` where a workload has none.
const FIELDS: [&str; 15] = [
    "workload",
    "mode",
    "n",
    "delivered",
    "dropped",
    "delivered_per_s",
    "sender_cpu_us_per_unit",
    "receiver_cpu_us_per_unit",
    "sender_hwm_kb",
    "receiver_hwm_kb",
    "mb_per_s",
    "rtt_us_p50",
    "rtt_us_p99",
    "oneway_us_p50",
    "oneway_us_p99",
];

/// One run's figures and whatever its self-checks found wrong.
#[derive(Debug)]
pub struct Outcome {
    fields: Map<String, Value>,
    problems: Vec<String>,
}

impl Outcome {
    pub fn new(workload: &str, mode: &str, n: u64) -> Self {
        let mut fields: Map<String, Value> = FIELDS
            .iter()
            .map(|&k| (k.to_owned(), Value::Null))
            .collect();
        fields.insert("workload".into(), workload.into());
        fields.insert("mode".into(), mode.into());
        fields.insert("n".into(), n.into());
        Outcome {
            fields,
            problems: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_owned(), value.into());
    }

    /// Records `problem` unless `ok`.
    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }

    /// Prints the `RESULT` line (with an `error` field when a check
    /// failed, as the Go harness does) and says whether every check passed.
    pub fn print(mut self) -> bool {
        if !self.problems.is_empty() {
            self.set("error", self.problems.join("; "));
        }
        println!("RESULT {}", Value::Object(self.fields));
        for problem in &self.problems {
            eprintln!("bench: self-check failed: {problem}");
        }
        self.problems.is_empty()
    }
}

/// The Go harness's percentile: the element at `round(p * len) - 1` of
/// the sorted samples, clamped; 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64 + 0.5) as usize;
    let i = rank.saturating_sub(1).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or(0.0)
}

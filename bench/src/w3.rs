//! W3: one MsgApp at a time; B answers each with a MsgAppResp through
//! its own pipeline. Round trip, A's send to B's process (one way), and
//! B's process to A's process (back), in µs, after `--warmup` round trips.

use std::time::{Duration, Instant};

use rafthttp_pipeline::raftpb::Message;
use rafthttp_pipeline::Envelope;

use crate::messages::{entry_data, msg_app, B};
use crate::node::{Echo, Event};
use crate::probe::{status_kb, unix_ns, CpuSpent, Mark};
use crate::report::{percentile, Outcome};
use crate::Bench;

/// How long one round trip may take (the Go harness's bound).
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// The samples of the measured round trips, in µs.
#[derive(Debug, Default)]
pub struct Samples {
    rtt: Vec<f64>,
    oneway: Vec<f64>,
    back: Vec<f64>,
}

impl Samples {
    pub fn add(&mut self, t0: Instant, t0_ns: i64, echo: &Echo) {
        self.rtt
            .push(echo.at.duration_since(t0).as_nanos() as f64 / 1e3);
        self.oneway.push((echo.b_processed_ns - t0_ns) as f64 / 1e3);
        self.back
            .push((echo.at_ns - echo.b_processed_ns) as f64 / 1e3);
    }

    pub fn sort(&mut self) {
        for v in [&mut self.rtt, &mut self.oneway, &mut self.back] {
            v.sort_by(f64::total_cmp);
        }
    }
}

pub async fn run(b: &mut Bench) -> Result<Outcome, String> {
    let total = b.args.warmup + b.args.n;
    let data = entry_data(b.args.entry_size);
    let before = Mark::now(b.child.stats().await?.cpu_s);
    let mut samples = Samples::default();
    for i in 0..total {
        let (t0, t0_ns, echo) = round_trip(b, msg_app(i, B, &data)).await?;
        if i >= b.args.warmup {
            samples.add(t0, t0_ns, &echo);
        }
    }
    let rx = b.child.stats().await?;
    let cpu = CpuSpent::between(before, Mark::now(rx.cpu_s));
    samples.sort();
    let mut out = Outcome::new("w3", "echo", b.args.n);
    out.set("warmup", b.args.warmup);
    out.set("delivered", total);
    out.set("dropped", 0);
    set_latencies(&mut out, &samples);
    let (sender_us, receiver_us) = cpu.per_unit_us(total);
    out.set("sender_cpu_us_per_unit", sender_us);
    out.set("receiver_cpu_us_per_unit", receiver_us);
    out.set("sender_hwm_kb", status_kb("VmHWM"));
    out.set("receiver_hwm_kb", rx.hwm_kb);
    out.set("foreign_cpu_frac", cpu.foreign_frac);
    Ok(out)
}

/// Sends MsgApp `m` and waits for its echo: (send time, same in unix
/// ns, the echo).
async fn round_trip(b: &mut Bench, m: Message) -> Result<(Instant, i64, Echo), String> {
    let index = m.entries[0].index;
    let (t0, t0_ns) = (Instant::now(), unix_ns());
    let answer = b.pipeline().send(Envelope(m)).await;
    if let Err(dropped) = answer.map_err(|e| format!("the pipeline is gone: {e}"))? {
        return Err(format!("message {index}: {dropped}"));
    }
    match b.node.next_event(ECHO_TIMEOUT).await {
        Some(Event::Echo(echo)) if echo.index == index => Ok((t0, t0_ns, echo)),
        Some(other) => Err(format!("message {index}: unexpected {other:?}")),
        None => Err(format!(
            "no echo for message {index} within {ECHO_TIMEOUT:?}"
        )),
    }
}

pub fn set_latencies(out: &mut Outcome, s: &Samples) {
    out.set("rtt_us_p50", percentile(&s.rtt, 0.50));
    out.set("rtt_us_p90", percentile(&s.rtt, 0.90));
    out.set("rtt_us_p99", percentile(&s.rtt, 0.99));
    out.set("rtt_us_max", s.rtt.last().copied().unwrap_or(0.0));
    out.set("oneway_us_p50", percentile(&s.oneway, 0.50));
    out.set("oneway_us_p99", percentile(&s.oneway, 0.99));
    out.set("back_us_p50", percentile(&s.back, 0.50));
    out.set("back_us_p99", percentile(&s.back, 0.99));
}

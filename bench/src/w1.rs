//! W1: MsgApps with one entry of `--entry-size` bytes (256 by default),
//! as fast as the pipelines take them, dealt round-robin over `--peers`
//! pipelines (one by default). `retry` resends a dropped message after
//! `--retry-sleep`; `drop` counts it and goes on. With `--idle`, an idle
//! window after the warm-up measures what the open pipelines cost while
//! nothing is sent.

use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use rafthttp_pipeline::raftpb::Message;
use rafthttp_pipeline::{Envelope, PipelineActor};

use crate::args::Mode;
use crate::child::{ReceiverChild, ReceiverStats};
use crate::idle::Idle;
use crate::messages::{entry_data, msg_app, peer, B};
use crate::probe::{status_kb, unix_ns, CpuSpent, Mark};
use crate::report::Outcome;
use crate::Bench;

/// What the send loop saw.
#[derive(Debug, Default)]
struct Sent {
    dropped: u64,
    retries: u64,
}

pub async fn run(b: &mut Bench) -> Result<Outcome, String> {
    let data = entry_data(b.args.entry_size);
    warm_up(b, &data).await?;
    let idle = Idle::measure(&mut b.child, b.args.idle).await?;
    let rss_kb = status_kb("VmRSS");
    let opened = OpenWindow::open(&mut b.child).await?;
    let sent = send_all(b, &data).await?;
    let n = b.args.n;
    let target = b.args.warmup + n - sent.dropped;
    let (processed, window, rx) = opened.close(&mut b.child, target, b.args.timeout).await?;
    let delivered = processed.saturating_sub(b.args.warmup);
    let mode = match b.args.mode {
        Mode::Retry => "retry",
        Mode::Drop => "drop",
    };
    let mut out = Outcome::new("w1", mode, n);
    throughput(&mut out, delivered, b.args.entry_size, &window, &rx);
    out.set("dropped", sent.dropped);
    out.set("retries", sent.retries);
    out.set(
        "wire_bytes_per_msg",
        prost::Message::encoded_len(&msg_app(1, B, &data)),
    );
    per_peer(&mut out, b, rss_kb, &rx);
    if let Some(idle) = idle {
        idle.record(&mut out, b.args.peers);
    }
    out.check(delivered == n - sent.dropped, || {
        format!(
            "delivered {delivered} != sent {n} - dropped {}",
            sent.dropped
        )
    });
    Ok(out)
}

/// The number of peers and A's memory per peer: its `VmRSS` after the
/// warm-up (and the idle window) less its `VmRSS` before the pipelines
/// were started, divided among the peers.
fn per_peer(out: &mut Outcome, b: &Bench, rss_kb: i64, rx: &ReceiverStats) {
    let peers = b.args.peers;
    out.set("peers", peers);
    out.set("sender_rss_base_kb", b.rss_base_kb);
    out.set("sender_rss_kb", rss_kb);
    out.set(
        "rss_per_peer_kb",
        (rss_kb - b.rss_base_kb) as f64 / peers as f64,
    );
    out.set("receiver_rss_kb", rx.rss_kb);
}

/// Sends `--warmup` messages (retrying drops) and waits until B has them,
/// so the measured phase starts on open connections.
pub async fn warm_up(b: &mut Bench, data: &Bytes) -> Result<(), String> {
    for i in 0..b.args.warmup {
        let (pipeline, m) = dealt(b, i, data);
        send_retry(pipeline, m, b.args.retry_sleep).await?;
    }
    wait_all(&mut b.child, b.args.warmup, b.args.timeout, "warm-up").await
}

/// Waits until B has processed `target` messages in all.
pub async fn wait_all(
    child: &mut ReceiverChild,
    target: u64,
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    let (processed, _) = child.wait_processed(target, timeout).await?;
    match processed >= target {
        true => Ok(()),
        false => Err(format!("{what} not delivered: {processed}/{target}")),
    }
}

async fn send_all(b: &Bench, data: &Bytes) -> Result<Sent, String> {
    let mut sent = Sent::default();
    for i in b.args.warmup..b.args.warmup + b.args.n {
        let (pipeline, m) = dealt(b, i, data);
        match b.args.mode {
            Mode::Retry => sent.retries += send_retry(pipeline, m, b.args.retry_sleep).await?,
            Mode::Drop => sent.dropped += u64::from(!offer(pipeline, m).await?),
        }
    }
    Ok(sent)
}

/// Message `i` and the pipeline it goes to: peer `i mod peers`.
fn dealt<'b>(b: &'b Bench, i: u64, data: &Bytes) -> (&'b Addr<PipelineActor>, Message) {
    let p = (i % b.pipelines.len() as u64) as usize;
    (&b.pipelines[p], msg_app(i, peer(p), data))
}

/// Offers `m` until the pipeline takes it, pausing `sleep` after each
/// drop; returns the number of drops.
async fn send_retry(
    pipeline: &Addr<PipelineActor>,
    m: Message,
    sleep: Duration,
) -> Result<u64, String> {
    let mut drops = 0;
    while !offer(pipeline, m.clone()).await? {
        drops += 1;
        pause(sleep).await;
    }
    Ok(drops)
}

/// Whether the pipeline took `m` (false: dropped, buffer full).
async fn offer(pipeline: &Addr<PipelineActor>, m: Message) -> Result<bool, String> {
    let answer = pipeline.send(Envelope(m)).await;
    let answer = answer.map_err(|e| format!("the pipeline is gone: {e}"))?;
    Ok(answer.is_ok())
}

/// Sleeps `d` on the runtime's timer (1 ms granularity, so `50us` waits
/// about 1 ms), or just yields for a zero `d`, like Go's `Gosched`.
async fn pause(d: Duration) {
    match d.is_zero() {
        true => actix_web::rt::task::yield_now().await,
        false => actix_web::rt::time::sleep(d).await,
    }
}

/// The start of a measured phase: both sides' CPU and the first send's time.
pub struct OpenWindow {
    before: Mark,
    t0_ns: i64,
}

impl OpenWindow {
    /// Opens the window just before the first measured send.
    pub async fn open(child: &mut ReceiverChild) -> Result<Self, String> {
        let before = Mark::now(child.stats().await?.cpu_s);
        Ok(OpenWindow {
            before,
            t0_ns: unix_ns(),
        })
    }

    /// Waits until B has processed `target` messages in all, then closes
    /// the window: B's count, the window, and B's stats.
    pub async fn close(
        self,
        child: &mut ReceiverChild,
        target: u64,
        timeout: Duration,
    ) -> Result<(u64, Window, ReceiverStats), String> {
        let (processed, last_ns) = child.wait_processed(target, timeout).await?;
        let rx = child.stats().await?;
        let window = Window {
            before: self.before,
            after: Mark::now(rx.cpu_s),
            t0_ns: self.t0_ns,
            last_ns,
        };
        Ok((processed, window, rx))
    }
}

/// The measured phase: CPU marks around it, the first send and B's last
/// process time.
#[derive(Debug)]
pub struct Window {
    pub before: Mark,
    pub after: Mark,
    pub t0_ns: i64,
    pub last_ns: i64,
}

/// W1's figures, as the Go harness computes them: delivered per second
/// from the first send to B's last `Process`, entry bytes (10^6) per
/// second, CPU per delivered message on each side, peak RSS of each side.
pub fn throughput(
    out: &mut Outcome,
    delivered: u64,
    entry_bytes: usize,
    window: &Window,
    rx: &ReceiverStats,
) {
    let elapsed_s = ((window.last_ns - window.t0_ns) as f64 / 1e9).max(1e-9);
    let cpu = CpuSpent::between(window.before, window.after);
    let (sender_us, receiver_us) = cpu.per_unit_us(delivered);
    let per_s = delivered as f64 / elapsed_s;
    out.set("delivered", delivered);
    out.set("elapsed_s", elapsed_s);
    out.set("delivered_per_s", per_s);
    out.set("entry_bytes", entry_bytes);
    out.set("mb_per_s", per_s * entry_bytes as f64 / 1e6);
    out.set("sender_cpu_us_per_unit", sender_us);
    out.set("receiver_cpu_us_per_unit", receiver_us);
    out.set("sender_hwm_kb", status_kb("VmHWM"));
    out.set("receiver_hwm_kb", rx.hwm_kb);
    out.set("foreign_cpu_frac", cpu.foreign_frac);
}

//! W2: MsgSnaps of `--snap-size` bytes through the pipeline, all at once
//! (burst) or one after another (`--serial`). MB/s (10^6) from the first
//! send to the last `ReportSnapshot(Finish)`; peak RSS of each side.

use std::time::Instant;

use bytes::Bytes;
use rafthttp_pipeline::Envelope;

use crate::messages::{entry_data, msg_snap};
use crate::node::Event;
use crate::probe::{status_kb, CpuSpent, Mark};
use crate::report::Outcome;
use crate::w1::warm_up;
use crate::Bench;

pub async fn run(b: &mut Bench) -> Result<Outcome, String> {
    warm_up(b, &entry_data(b.args.entry_size)).await?;
    let data = crate::messages::snapshot_data(b.args.snap_size);
    let (count, size) = (b.args.snap_count, b.args.snap_size);
    let hwm_before = status_kb("VmHWM");
    let rx0 = b.child.stats().await?;
    let before = Mark::now(rx0.cpu_s);
    let t0 = Instant::now();
    let last = match b.args.serial {
        true => serial(b, &data).await?,
        false => burst(b, &data).await?,
    };
    let elapsed_s = last.duration_since(t0).as_secs_f64();
    let rx = b.child.stats().await?;
    let cpu = CpuSpent::between(before, Mark::now(rx.cpu_s));
    let (sender_us, receiver_us) = cpu.per_unit_us(count as u64);
    let mode = if b.args.serial { "serial" } else { "burst" };
    let mut out = Outcome::new("w2", mode, count as u64);
    let delivered = rx.processed - rx0.processed;
    out.set("delivered", delivered);
    out.set("dropped", 0);
    out.set("snap_bytes", size);
    out.set("serial", b.args.serial);
    out.set("elapsed_s", elapsed_s);
    out.set("mb_per_s", (count * size) as f64 / elapsed_s / 1e6);
    out.set("sender_cpu_us_per_unit", sender_us);
    out.set("receiver_cpu_us_per_unit", receiver_us);
    out.set("sender_cpu_s", cpu.sender_s);
    out.set("receiver_cpu_s", cpu.receiver_s);
    out.set("sender_hwm_kb", status_kb("VmHWM"));
    out.set("sender_hwm_before_kb", hwm_before);
    out.set("receiver_hwm_kb", rx.hwm_kb);
    out.set("receiver_hwm_before_kb", rx0.hwm_kb);
    out.set("foreign_cpu_frac", cpu.foreign_frac);
    let payload = rx.payload_bytes - rx0.payload_bytes;
    let want = (count * size) as u64;
    out.check(payload == want, || {
        format!("receiver got {payload} payload bytes, want {want}")
    });
    out.check(delivered == count as u64, || {
        format!("receiver processed {delivered} snapshots, want {count}")
    });
    Ok(out)
}

/// Sends one snapshot, waits for its `Finish`, then the next; returns
/// the last `Finish` time.
async fn serial(b: &mut Bench, data: &Bytes) -> Result<Instant, String> {
    let mut last = Instant::now();
    for k in 0..b.args.snap_count {
        send(b, k, data).await?;
        last = finished(b, k).await?;
    }
    Ok(last)
}

/// Sends every snapshot at once, then waits for all their `Finish`es;
/// returns the last one's time.
async fn burst(b: &mut Bench, data: &Bytes) -> Result<Instant, String> {
    for k in 0..b.args.snap_count {
        send(b, k, data).await?;
    }
    let mut last = Instant::now();
    for k in 0..b.args.snap_count {
        last = finished(b, k).await?;
    }
    Ok(last)
}

async fn send(b: &Bench, k: usize, data: &Bytes) -> Result<(), String> {
    let answer = b.pipeline().send(Envelope(msg_snap(k, data))).await;
    match answer.map_err(|e| format!("the pipeline is gone: {e}"))? {
        Ok(()) => Ok(()),
        Err(dropped) => Err(format!("snapshot {k}: {dropped}")),
    }
}

async fn finished(b: &mut Bench, k: usize) -> Result<Instant, String> {
    match b.node.next_event(b.args.timeout).await {
        Some(Event::SnapshotFinished(at)) => Ok(at),
        Some(Event::SnapshotFailed) => Err(format!("snapshot {k} failed")),
        Some(other) => Err(format!(
            "unexpected event {other:?} waiting for snapshot {k}"
        )),
        None => Err(format!(
            "snapshot {k} not acknowledged within {:?}",
            b.args.timeout
        )),
    }
}

//! W1 and W3 over etcd's streams (`--streams`), as the Go harness runs
//! etcd's: node A and node B are each a member whose `Transport` has
//! streams on, and each adds the other as a peer. Each member runs on one
//! thread (`MemberBuilder::start_on_one_thread`: raft stand-in, transport,
//! and `/raft` and the stream routes on one HTTP worker), and A's driver
//! runs there too, so no message wakes another thread of its process.
//! With `--busy-poll`, both members' threads keep polling for that long
//! after each stream send (`TransportConfig::busy_poll`), so the answer
//! does not wait for an idle CPU to wake. A's messages go through its
//! transport (`SendMessages`), so MsgApps take the msgappv2 stream and
//! W3's MsgAppResp comes back on B's message stream.
//!
//! Each run checks its path: B counts what came by stream and what by
//! `POST /raft`, and none of the measured messages may have come by POST
//! (nor any W3 echo at A). W1 is lossless by a window, as etcd's harness's
//! `w1s_window`: at most `--window` messages are sent but not yet
//! processed by B; with the window full, A waits until B has processed
//! half of it. No message may be reported unreachable, and B must have
//! processed every one sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::channel::mpsc::{unbounded, UnboundedReceiver};
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::transport::{
    AddPeer, Member, MemberBuilder, RaftRecipients, SendMessages, StopTransport,
};
use rafthttp_pipeline::LocalMember;

use crate::args::{Args, Workload};
use crate::child::ReceiverChild;
use crate::messages::{entry_data, msg_app, A, B, CLUSTER};
use crate::node::{next_event, Echo, Event, RaftA};
use crate::probe::{status_kb, unix_ns, CpuSpent, Mark};
use crate::report::Outcome;
use crate::w1::{throughput, wait_all, OpenWindow};
use crate::w3::{set_latencies, Samples, ECHO_TIMEOUT};

/// How long the streams may take to come up (etcd's harness's bound).
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one probe may take to arrive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause between probes that came by POST.
const PROBE_PAUSE: Duration = Duration::from_millis(5);

/// Node A over streams: its member, the driver's end of its raft
/// stand-in's events, and how many messages its transport reported
/// unreachable.
struct StreamNode {
    member: Member<RaftA>,
    events: UnboundedReceiver<Event>,
    unreachable: Arc<AtomicU64>,
}

impl StreamNode {
    async fn start(busy_poll: Option<Duration>) -> Result<Self, String> {
        let (tx, events) = unbounded();
        let unreachable = Arc::new(AtomicU64::new(0));
        let counted = unreachable.clone();
        let member = MemberBuilder::new(LocalMember::new(A, CLUSTER))
            .transport(move |c| crate::receiver::streams_config(c, busy_poll))
            .start_on_one_thread(|_| RaftRecipients::new(RaftA::new(tx, counted).start()))
            .await
            .map_err(|e| format!("starting node A: {e}"))?;
        Ok(StreamNode {
            member,
            events,
            unreachable,
        })
    }

    fn send(&self, m: Message) {
        self.member.transport().do_send(SendMessages(vec![m]));
    }

    fn unreachable(&self) -> u64 {
        self.unreachable.load(Ordering::Relaxed)
    }
}

/// The measured run: starts both nodes, brings the streams up, runs the
/// workload, checks its path and stops A's transport.
pub async fn run(args: &Args) -> Result<Outcome, String> {
    let node = StreamNode::start(args.busy_poll).await?;
    let node_arbiter = node.member.arbiter().clone();
    let (done_tx, done) = futures::channel::oneshot::channel();
    let args = args.clone();
    let run = move || {
        actix_web::rt::spawn(async move {
            let _ = done_tx.send(run_on_a(&args, node).await);
        });
    };
    // The driver runs beside A's raft actor and transport, on A's one
    // thread, as W3's pipeline driver does (see `node.rs`).
    if !node_arbiter.spawn_fn(run) {
        return Err("A's HTTP worker is gone".to_owned());
    }
    done.await
        .map_err(|_| "the run on A's HTTP worker ended early".to_owned())?
}

async fn run_on_a(args: &Args, mut node: StreamNode) -> Result<Outcome, String> {
    let mut flags = args.receiver_flags();
    let a_url = node.member.urls()[0].clone();
    flags.extend(["--peer-url".to_owned(), a_url.clone()]);
    if args.workload == Workload::W3 {
        flags.extend(["--echo-to".to_owned(), a_url]);
    }
    let mut child = ReceiverChild::start(&flags)?;
    let add = AddPeer {
        id: B,
        urls: vec![format!("http://127.0.0.1:{}", child.port)],
    };
    let added = node.member.transport().send(add).await;
    added
        .map_err(|e| format!("A's transport is gone: {e}"))?
        .map_err(|e| format!("adding B: {e}"))?;
    establish(&mut node, &mut child, args.workload == Workload::W3).await?;
    let mut out = match args.workload {
        Workload::W3 => w3(args, &mut node, &mut child).await?,
        _ => w1(args, &node, &mut child).await?,
    };
    out.set("path", "stream");
    let _ = node.member.transport().send(StopTransport).await;
    out.check(node.unreachable() == 0, || {
        format!("{} messages reported unreachable", node.unreachable())
    });
    Ok(out)
}

/// Waits (at most [`ESTABLISH_TIMEOUT`]) until a MsgHeartbeat and then a
/// MsgApp from A reach B by stream, and under W3 until an echo reaches A
/// by B's message stream.
async fn establish(
    node: &mut StreamNode,
    child: &mut ReceiverChild,
    echo: bool,
) -> Result<(), String> {
    let deadline = Instant::now() + ESTABLISH_TIMEOUT;
    let heartbeat = Message {
        r#type: MessageType::MsgHeartbeat as i32,
        from: A.0,
        to: B.0,
        term: 1,
        ..Default::default()
    };
    let app = msg_app(0, B, &entry_data(8));
    for probe in [heartbeat, app.clone()] {
        while !probe_by_stream(node, child, probe.clone()).await? {
            until(deadline)?;
            actix_web::rt::time::sleep(PROBE_PAUSE).await;
        }
    }
    match echo {
        true => echo_by_stream(node, &app, deadline).await,
        false => Ok(()),
    }
}

/// Sends MsgApp probes until one's echo reaches A by B's message stream.
async fn echo_by_stream(
    node: &mut StreamNode,
    app: &Message,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        node.send(app.clone());
        match next_event(&mut node.events, PROBE_TIMEOUT).await {
            Some(Event::Echo(e)) if e.by_stream => return Ok(()),
            Some(Event::Echo(_)) => {}
            other => return Err(format!("establishing: unexpected {other:?}")),
        }
        until(deadline)?;
        actix_web::rt::time::sleep(PROBE_PAUSE).await;
    }
}

fn until(deadline: Instant) -> Result<(), String> {
    match Instant::now() < deadline {
        true => Ok(()),
        false => Err(format!(
            "the streams were not established within {ESTABLISH_TIMEOUT:?}"
        )),
    }
}

/// Sends `probe` and says whether B got it by stream.
async fn probe_by_stream(
    node: &StreamNode,
    child: &mut ReceiverChild,
    probe: Message,
) -> Result<bool, String> {
    let before = child.stats().await?;
    node.send(probe);
    let target = before.processed + 1;
    wait_all(child, target, PROBE_TIMEOUT, "a probe").await?;
    let after = child.stats().await?;
    Ok(after.by_stream > before.by_stream)
}

/// B's count of what came by `POST /raft`.
async fn posts(child: &mut ReceiverChild) -> Result<u64, String> {
    let rx = child.stats().await?;
    Ok(rx.processed - rx.by_stream)
}

/// W1 over streams: `--warmup` then `--n` MsgApps through A's transport,
/// within the window.
async fn w1(args: &Args, node: &StreamNode, child: &mut ReceiverChild) -> Result<Outcome, String> {
    let data = entry_data(args.entry_size);
    let base = child.stats().await?.processed;
    let mut sender = Windowed {
        base,
        acked: 0,
        window: args.window,
        waits: 0,
        timeout: args.timeout,
    };
    for i in 0..args.warmup {
        sender.send(node, child, msg_app(i, B, &data)).await?;
    }
    wait_all(child, base + args.warmup, args.timeout, "warm-up").await?;
    let posts_before = posts(child).await?;
    sender.waits = 0;
    let opened = OpenWindow::open(child).await?;
    for i in args.warmup..args.warmup + args.n {
        sender.send(node, child, msg_app(i, B, &data)).await?;
    }
    let target = base + args.warmup + args.n;
    let (processed, window, rx) = opened.close(child, target, args.timeout).await?;
    let delivered = processed.saturating_sub(base + args.warmup);
    let posts = rx.processed - rx.by_stream - posts_before;
    let mode = match args.window {
        0 => "stream",
        _ => "window",
    };
    let mut out = Outcome::new("w1", mode, args.n);
    throughput(&mut out, delivered, args.entry_size, &window, &rx);
    out.set("dropped", node.unreachable());
    out.set("window", args.window);
    out.set("window_waits", sender.waits);
    out.set("posts", posts);
    out.check(delivered == args.n, || {
        format!("delivered {delivered} != sent {}", args.n)
    });
    out.check(posts == 0, || {
        format!("{posts} measured messages came by POST")
    });
    Ok(out)
}

/// A's sends within the window: `acked` is B's count (less `base`) as
/// last seen.
struct Windowed {
    base: u64,
    acked: u64,
    window: u64,
    waits: u64,
    timeout: Duration,
}

impl Windowed {
    /// Sends `m`, the message at `m.index` counted from the warm-up's
    /// first, after waiting for room in the window.
    async fn send(
        &mut self,
        node: &StreamNode,
        child: &mut ReceiverChild,
        m: Message,
    ) -> Result<(), String> {
        let sent = m.index;
        if self.window > 0 && sent - self.acked >= self.window {
            self.waits += 1;
            let target = self.base + sent - self.window / 2;
            let (processed, _) = child.wait_processed(target, self.timeout).await?;
            if processed < target {
                return Err(format!(
                    "window full for {:?}: B processed {} of {sent} sent",
                    self.timeout,
                    processed - self.base
                ));
            }
            self.acked = processed - self.base;
        }
        node.send(m);
        Ok(())
    }
}

/// W3 over streams: one MsgApp at a time, its echo on B's message stream.
async fn w3(
    args: &Args,
    node: &mut StreamNode,
    child: &mut ReceiverChild,
) -> Result<Outcome, String> {
    let total = args.warmup + args.n;
    let data = entry_data(args.entry_size);
    let posts_before = posts(child).await?;
    let before = Mark::now(child.stats().await?.cpu_s);
    let mut samples = Samples::default();
    let mut by_post = 0u64;
    for i in 0..total {
        let m = msg_app(i, B, &data);
        let index = m.entries[0].index;
        let (t0, t0_ns) = (Instant::now(), unix_ns());
        node.send(m);
        let echo = echo_of(node, index).await?;
        by_post += u64::from(!echo.by_stream);
        if i >= args.warmup {
            samples.add(t0, t0_ns, &echo);
        }
    }
    let rx = child.stats().await?;
    let cpu = CpuSpent::between(before, Mark::now(rx.cpu_s));
    let posts = rx.processed - rx.by_stream - posts_before;
    samples.sort();
    let mut out = Outcome::new("w3", "echo", args.n);
    out.set("warmup", args.warmup);
    out.set("delivered", total);
    out.set("dropped", node.unreachable());
    set_latencies(&mut out, &samples);
    let (sender_us, receiver_us) = cpu.per_unit_us(total);
    out.set("sender_cpu_us_per_unit", sender_us);
    out.set("receiver_cpu_us_per_unit", receiver_us);
    out.set("sender_hwm_kb", status_kb("VmHWM"));
    out.set("receiver_hwm_kb", rx.hwm_kb);
    out.set("foreign_cpu_frac", cpu.foreign_frac);
    out.set("posts", posts);
    out.set("echoes_by_post", by_post);
    out.check(posts == 0, || format!("{posts} MsgApps came to B by POST"));
    out.check(by_post == 0, || {
        format!("{by_post} echoes came to A by POST")
    });
    Ok(out)
}

/// The echo of the MsgApp with entry `index`, skipping any older echo
/// (the establishing probes' MsgApps are echoed too).
async fn echo_of(node: &mut StreamNode, index: u64) -> Result<Echo, String> {
    loop {
        match next_event(&mut node.events, ECHO_TIMEOUT).await {
            Some(Event::Echo(echo)) if echo.index == index => return Ok(echo),
            Some(Event::Echo(echo)) if echo.index < index => {}
            Some(other) => return Err(format!("message {index}: unexpected {other:?}")),
            None => {
                return Err(format!(
                    "no echo for message {index} within {ECHO_TIMEOUT:?}"
                ))
            }
        }
    }
}

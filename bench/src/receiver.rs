//! Node B, the receiver child: our actix-web receiver with a counting raft
//! actor (or, with `--floor`, a bare handler that answers 204), driven by
//! the sender over stdin/stdout with the Go harness's line protocol:
//!
//! ```text
//! child  -> READY <port>
//! parent -> WAIT <count> <timeout-ms>   child -> DONE <processed> <last-process-unix-ns>
//! parent -> STATS                       child -> STATS <json>
//! parent -> QUIT                        child exits 0 (also on stdin EOF)
//! ```

use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::transport::{
    AddPeer, Member, MemberBuilder, RaftRecipients, SendMessages, Transport, TransportConfig,
};
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::{
    Envelope, Inbound, PipelineActor, PipelineConfig, ProcessError, Recipients, ReportSnapshot,
    ReportUnreachable,
};

use crate::args::{Args, Placement};
use crate::messages::{app_resp, payload_len, A, B, CLUSTER};
use crate::probe::{cpu_seconds, status_kb, unix_ns, wakeups};

/// How often `WAIT` looks at the count.
const WAIT_POLL: Duration = Duration::from_millis(1);

/// What B has processed, shared by the HTTP worker and the control thread.
#[derive(Debug, Default)]
pub struct Counts {
    processed: AtomicU64,
    payload_bytes: AtomicU64,
    last_ns: AtomicI64,
    unreachable: AtomicU64,
    /// Of `processed`, those that came by a stream (an `Inbound` without
    /// `X-PeerURLs`); the rest came by `POST /raft`.
    by_stream: AtomicU64,
}

impl Counts {
    fn record(&self, payload: usize, now_ns: i64) {
        self.payload_bytes
            .fetch_add(payload as u64, Ordering::Relaxed);
        self.last_ns.store(now_ns, Ordering::Relaxed);
        self.processed.fetch_add(1, Ordering::Release);
    }

    fn processed(&self) -> u64 {
        self.processed.load(Ordering::Acquire)
    }
}

/// Where B's echo goes: its own pipeline to A, or (with `--streams`)
/// B's transport, which puts it on B's message stream to A.
enum Echo {
    Pipeline(Addr<PipelineActor>),
    Transport(Addr<Transport>),
}

/// The counting raft actor. Under W3 it answers each MsgApp back to A.
struct Counter {
    counts: Arc<Counts>,
    echo: Option<Echo>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Counter {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let now = unix_ns();
        if inbound.peer_urls.is_empty() {
            self.counts.by_stream.fetch_add(1, Ordering::Relaxed);
        }
        let m = inbound.message;
        self.counts.record(payload_len(&m), now);
        if m.r#type != MessageType::MsgApp as i32 {
            return Ok(());
        }
        match &self.echo {
            Some(Echo::Pipeline(p)) => p.do_send(Envelope(app_resp(&m, now))),
            Some(Echo::Transport(t)) => t.do_send(SendMessages(vec![app_resp(&m, now)])),
            None => {}
        }
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Counter {
    type Result = ();
    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {
        self.counts.unreachable.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<ReportSnapshot> for Counter {
    type Result = ();
    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

/// Starts a counter on the current thread, with its echo pipeline from
/// `own_url` to `echo_to` when W3 asks for one.
fn start_counter(
    counts: Arc<Counts>,
    echo: Option<(String, Option<Placement>)>,
    own_url: String,
) -> Addr<Counter> {
    Counter::create(move |ctx| {
        let echo = echo.map(|(url, placement)| {
            let config = PipelineConfig::new(
                &LocalMember::new(B, CLUSTER).peer_urls(vec![own_url]),
                A,
                vec![url],
            );
            let config = Placement::apply(placement, config);
            let pipeline = PipelineActor::start(config, Recipients::from_addr(&ctx.address()));
            Echo::Pipeline(pipeline.expect("the echo pipeline's configuration is valid"))
        });
        Counter { counts, echo }
    })
}

/// B's server: etcd's `/raft` routes with a counting raft actor on the
/// HTTP worker's own thread, as the Go harness's fake raft runs in the
/// handler's goroutine.
fn raft_server(listener: TcpListener, counts: Arc<Counts>, args: &Args) -> std::io::Result<Server> {
    let own_url = format!("http://{}", listener.local_addr()?);
    let placement = args.placement;
    let echo = args.echo_to.clone().map(|url| (url, placement));
    let metrics = args.metrics.then(crate::node::counting);
    let server = HttpServer::new(move || {
        let raft = start_counter(counts.clone(), echo.clone(), own_url.clone());
        // Node A's K pipelines (--peers) all carry member A's id to this
        // one receiver; the per-member cap is sized for one pipeline per
        // member and would refuse most of them with 429.
        let config = ReceiverConfig::new(&LocalMember::new(B, CLUSTER), raft.recipient())
            .max_requests_per_member(usize::MAX);
        let config = match &metrics {
            Some(m) => config.metrics(m.clone()),
            None => config,
        };
        App::new().configure(receiver::configure(config))
    });
    let server = server.on_connect(rafthttp_pipeline::nodelay::on_connect);
    Ok(server.workers(1).disable_signals().listen(listener)?.run())
}

/// B with `--streams`: a member whose transport has etcd's streams on and
/// knows A (`--peer-url`), serving `/raft` and the stream routes on one
/// HTTP worker; its counter echoes through the transport under W3.
async fn stream_member(counts: Arc<Counts>, args: &Args) -> Result<Member<Counter>, String> {
    let a_url = args.peer_url.clone().ok_or("--streams needs --peer-url")?;
    let echo = args.echo_to.is_some();
    let busy_poll = args.busy_poll;
    let member = MemberBuilder::new(LocalMember::new(B, CLUSTER))
        .transport(move |c| streams_config(c, busy_poll))
        .start_on_one_thread(move |transport| {
            let echo = echo.then(|| Echo::Transport(transport));
            RaftRecipients::new(Counter { counts, echo }.start())
        })
        .await
        .map_err(|e| e.to_string())?;
    let add = AddPeer {
        id: A,
        urls: vec![a_url],
    };
    member.transport().do_send(add);
    Ok(member)
}

/// A stream member's transport: streams on, busy-polling if asked (both
/// members of a run get the same).
pub fn streams_config(config: TransportConfig, busy_poll: Option<Duration>) -> TransportConfig {
    let config = config.with_streams();
    match busy_poll {
        Some(window) => config.busy_poll(window),
        None => config,
    }
}

/// The floor: a bare handler that takes the body and answers 204.
fn floor_server(listener: TcpListener, counts: Arc<Counts>) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let counts = counts.clone();
        App::new().route(
            "/raft",
            web::post().to(move |body: web::Bytes| {
                counts.record(body.len(), unix_ns());
                async { HttpResponse::NoContent().finish() }
            }),
        )
    });
    let server = server.on_connect(rafthttp_pipeline::nodelay::on_connect);
    Ok(server.workers(1).disable_signals().listen(listener)?.run())
}

/// Runs node B until the parent says `QUIT` or closes stdin.
pub fn run(args: &Args) -> Result<(), String> {
    let counts = Arc::new(Counts::default());
    if args.streams {
        let system = System::new();
        // B runs until the parent says QUIT; its member lives as long.
        let member = system.block_on(stream_member(counts.clone(), args))?;
        let port = member.local_addrs()[0].port();
        reply(&format!("READY {port}"));
        std::thread::spawn(move || control(&counts));
        return system.run().map_err(|e| e.to_string());
    }
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let system = System::new();
    system
        .block_on(async {
            let server = match args.floor {
                true => floor_server(listener, counts.clone()),
                false => raft_server(listener, counts.clone(), args),
            };
            server.map(actix_web::rt::spawn)
        })
        .map_err(|e| e.to_string())?;
    reply(&format!("READY {port}"));
    std::thread::spawn(move || control(&counts));
    system.run().map_err(|e| e.to_string())
}

/// Answers the parent's commands; exits the process on `QUIT` or EOF,
/// so B never outlives A.
fn control(counts: &Counts) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["WAIT", target, ms] => reply(&wait(counts, target, ms)),
            ["STATS"] => reply(&format!("STATS {}", stats(counts))),
            ["QUIT"] => break,
            _ => reply(&format!("ERROR unknown command {line:?}")),
        }
    }
    std::process::exit(0);
}

fn reply(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent is gone if this fails; stdin EOF ends us next.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// `WAIT`: blocks until `target` messages were processed or `ms` passed.
fn wait(counts: &Counts, target: &str, ms: &str) -> String {
    let target: u64 = target.parse().unwrap_or(u64::MAX);
    let deadline = Instant::now() + Duration::from_millis(ms.parse().unwrap_or(0));
    while counts.processed() < target && Instant::now() < deadline {
        std::thread::sleep(WAIT_POLL);
    }
    let last = counts.last_ns.load(Ordering::Relaxed);
    format!("DONE {} {last}", counts.processed())
}

fn stats(counts: &Counts) -> serde_json::Value {
    serde_json::json!({
        "processed": counts.processed(),
        "payload_bytes": counts.payload_bytes.load(Ordering::Relaxed),
        "unreachable": counts.unreachable.load(Ordering::Relaxed),
        "by_stream": counts.by_stream.load(Ordering::Relaxed),
        "hwm_kb": status_kb("VmHWM"),
        "rss_kb": status_kb("VmRSS"),
        "cpu_s": cpu_seconds(),
        "wakeups": wakeups(),
    })
}

//! Test support: a fake peer on an ephemeral loopback port that can
//! misbehave on purpose, and a recorder for the pipeline's callbacks.
#![allow(dead_code)] // each test binary uses a different part of it

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use prost::Message as _;
use rafthttp_pipeline::raftpb::{Message as RaftMessage, MessageType};
use rafthttp_pipeline::{
    CriticalError, Id, PeerStatusChanged, Recipients, ReportSnapshot, ReportUnreachable,
};
use tokio::sync::watch;

/// How long any wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// How the fake peer answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Answer this status with this body.
    Status(u16, &'static str),
    /// Hold every request until [`FakePeer::release`], then answer 204.
    Block,
    /// Hold `MsgSnap` requests until released; answer others 204.
    BlockSnapshots,
    /// Answer 204 to even `index` fields and 500 to odd ones.
    AlternateByIndex,
}

/// One request the fake peer saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// Every header, lower-case name first.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl Recorded {
    /// The body decoded as a raft message.
    pub fn message(&self) -> RaftMessage {
        RaftMessage::decode(self.body.clone()).expect("the pipeline sends valid protobuf")
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct PeerState {
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<Recorded>>,
    seen: watch::Sender<usize>,
    gate: watch::Sender<bool>,
    answered: watch::Sender<usize>,
}

/// A real HTTP server on 127.0.0.1 that records what it is sent.
pub struct FakePeer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<PeerState>,
    server: actix_web::dev::ServerHandle,
}

impl FakePeer {
    /// Starts a fake peer with `behaviour` on an ephemeral port.
    pub fn start(behaviour: Behaviour) -> FakePeer {
        let state = Arc::new(PeerState {
            behaviour: Mutex::new(behaviour),
            requests: Mutex::new(Vec::new()),
            seen: watch::channel(0).0,
            gate: watch::channel(false).0,
            answered: watch::channel(0).0,
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind a loopback port");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        FakePeer {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server: handle,
        }
    }

    /// Changes how the peer answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Lets every held request, and every later one, through.
    pub fn release(&self) {
        self.state.gate.send_replace(true);
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until the peer has seen at least `n` requests.
    pub async fn wait_seen(&self, n: usize) {
        wait_watch(&self.state.seen, n, "requests seen by the fake peer").await;
    }

    /// Waits until the peer has answered at least `n` requests.
    pub async fn wait_answered(&self, n: usize) {
        wait_watch(
            &self.state.answered,
            n,
            "requests answered by the fake peer",
        )
        .await;
    }

    /// Stops the server and closes its connections.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

async fn wait_watch(tx: &watch::Sender<usize>, n: usize, what: &str) {
    let mut rx = tx.subscribe();
    let waited = tokio::time::timeout(WAIT, rx.wait_for(|&v| v >= n)).await;
    assert!(
        waited.is_ok(),
        "timed out waiting for {n} {what}, have {}",
        *tx.borrow()
    );
}

async fn answer(req: HttpRequest, body: Bytes, state: web::Data<PeerState>) -> HttpResponse {
    let recorded = Recorded {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
    };
    let message = RaftMessage::decode(recorded.body.clone()).ok();
    state.requests.lock().unwrap().push(recorded);
    state.seen.send_modify(|n| *n += 1);
    let behaviour = *state.behaviour.lock().unwrap();
    let response = respond(behaviour, message, &state).await;
    state.answered.send_modify(|n| *n += 1);
    response
}

async fn respond(
    behaviour: Behaviour,
    message: Option<RaftMessage>,
    state: &PeerState,
) -> HttpResponse {
    let is_snap = message.as_ref().is_some_and(|m| m.is_snapshot());
    match behaviour {
        Behaviour::Status(code, body) => status(code, body),
        Behaviour::Block => hold(state).await,
        Behaviour::BlockSnapshots if is_snap => hold(state).await,
        Behaviour::BlockSnapshots => status(204, ""),
        Behaviour::AlternateByIndex => {
            let even = message.is_some_and(|m| m.index % 2 == 0);
            status(if even { 204 } else { 500 }, "")
        }
    }
}

async fn hold(state: &PeerState) -> HttpResponse {
    let mut gate = state.gate.subscribe();
    // The test bounds its own waits; a held request waits for the gate or
    // for the client to go away.
    let _ = gate.wait_for(|open| *open).await;
    status(204, "")
}

fn status(code: u16, body: &'static str) -> HttpResponse {
    let code = actix_web::http::StatusCode::from_u16(code).expect("valid status");
    HttpResponse::build(code).body(body)
}

/// A TCP listener on 127.0.0.1 that accepts connections and never answers.
pub struct SilentPeer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    accepted: watch::Sender<usize>,
}

impl SilentPeer {
    /// Starts the listener.
    pub async fn start() -> SilentPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = watch::channel(0).0;
        let counter = accepted.clone();
        actix_rt::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
                counter.send_modify(|n| *n += 1);
            }
        });
        SilentPeer { url, accepted }
    }

    /// Waits until at least `n` connections were accepted.
    pub async fn wait_accepted(&self, n: usize) {
        wait_watch(&self.accepted, n, "connections accepted").await;
    }
}

/// A loopback URL where nothing listens (connection refused).
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// One callback the pipeline sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `ReportUnreachable`.
    Unreachable(ReportUnreachable),
    /// `ReportSnapshot`.
    Snapshot(ReportSnapshot),
    /// `PeerStatusChanged`.
    Status(PeerStatusChanged),
    /// `CriticalError`.
    Critical(CriticalError),
}

/// An actor that records every callback, standing in for the raft actor.
pub struct Recorder {
    events: watch::Sender<Vec<Event>>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Recorder {
    fn push(&mut self, event: Event) {
        self.events.send_modify(|events| events.push(event));
    }
}

macro_rules! record {
    ($msg:ty, $variant:ident) => {
        impl Handler<$msg> for Recorder {
            type Result = ();
            fn handle(&mut self, msg: $msg, _: &mut Context<Self>) {
                self.push(Event::$variant(msg));
            }
        }
    };
}
record!(ReportUnreachable, Unreachable);
record!(ReportSnapshot, Snapshot);
record!(PeerStatusChanged, Status);
record!(CriticalError, Critical);

/// A started [`Recorder`] and a view of what it recorded.
pub struct Recording {
    addr: Addr<Recorder>,
    events: watch::Receiver<Vec<Event>>,
}

impl Recording {
    /// Starts a recorder on the current arbiter.
    pub fn start() -> Recording {
        let (tx, rx) = watch::channel(Vec::new());
        let addr = Recorder { events: tx }.start();
        Recording { addr, events: rx }
    }

    /// Recipients for every callback, all to this recorder.
    pub fn recipients(&self) -> Recipients {
        Recipients::from_addr(&self.addr)
            .peer_status(self.addr.clone().recipient())
            .critical_errors(self.addr.clone().recipient())
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    /// Waits until `done` holds for the recorded events; fails after
    /// [`WAIT`].
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let mut rx = self.events.clone();
        let waited = tokio::time::timeout(WAIT, rx.wait_for(|e| done(e))).await;
        match waited {
            Ok(Ok(events)) => events.clone(),
            _ => panic!(
                "timed out waiting for {what}; recorded: {:?}",
                self.events()
            ),
        }
    }

    /// Waits for at least `n` unreachable reports.
    pub async fn wait_unreachable(&self, n: usize) -> Vec<Event> {
        self.wait_until("unreachable reports", |e| count_unreachable(e) >= n)
            .await
    }
}

/// Number of `ReportUnreachable` events.
pub fn count_unreachable(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Unreachable(_)))
        .count()
}

/// The snapshot statuses reported, in order.
pub fn snapshot_reports(events: &[Event]) -> Vec<rafthttp_pipeline::SnapshotStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Snapshot(r) => Some(r.status),
            _ => None,
        })
        .collect()
}

/// The peer-status transitions reported, in order (`true` = active).
pub fn status_changes(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(s.active),
            _ => None,
        })
        .collect()
}

/// A message of `kind` from 1 to 2 with `index` set, for telling
/// messages apart.
pub fn message(kind: MessageType, index: u64) -> RaftMessage {
    RaftMessage {
        r#type: kind as i32,
        to: 2,
        from: 1,
        term: 1,
        index,
        ..Default::default()
    }
}

/// The ids the pipeline tests use: local 1, peer 2, cluster 0xabc.
pub fn ids() -> (Id, Id, Id) {
    (Id(1), Id(2), Id(0xabc))
}

/// Waits until the pipeline's counters satisfy `done`, asking with
/// `GetStats`; fails after [`WAIT`].
pub async fn wait_stats(
    p: &Addr<rafthttp_pipeline::PipelineActor>,
    what: &str,
    done: impl Fn(&rafthttp_pipeline::PipelineStats) -> bool,
) -> rafthttp_pipeline::PipelineStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = p
            .send(rafthttp_pipeline::GetStats)
            .await
            .expect("pipeline alive");
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

//! Peers that misbehave on purpose, on ephemeral loopback ports: a fake
//! peer that answers as told and records what it is sent, a peer that
//! accepts connections and never answers, and a URL where nothing listens.

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use prost::Message as _;
use rafthttp_pipeline::raftpb::Message as RaftMessage;
use tokio::sync::watch;

use super::{server, wait};

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
        let app = move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone()).default_service(web::to(answer));
        };
        let (addr, server) = server::serve(app, 0, server::no_hook);
        FakePeer {
            url: format!("http://{addr}"),
            state,
            server,
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
        wait::count(&self.state.seen, n, "requests seen by the fake peer").await;
    }

    /// Waits until the peer has answered at least `n` requests.
    pub async fn wait_answered(&self, n: usize) {
        wait::count(
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
        wait::count(&self.accepted, n, "connections accepted").await;
    }
}

/// A loopback URL where nothing listens (connection refused).
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

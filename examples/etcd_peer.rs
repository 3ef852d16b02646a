//! A stand-in etcd member, built only from this crate's public API, that
//! joins a real etcd 3.4 cluster and keeps no data.
//!
//! It answers etcd's raft messages just enough for etcd to elect a leader
//! and commit writes, with every message in both directions carried by
//! [`PipelineActor`] (out) and the [`receiver`] (in):
//!
//! - it grants `MsgVote` and `MsgPreVote` (once per term for `MsgVote`);
//! - it acknowledges every `MsgApp` with `MsgAppResp { index: m.index + entries }`
//!   (unless `--no-append-ack`, the control experiment);
//! - it answers `MsgHeartbeat` with `MsgHeartbeatResp`, echoing `context`,
//!   which etcd's linearizable reads need;
//! - on `MsgTimeoutNow` it campaigns as raft's leadership transfer does, so
//!   an etcd leader that is told to stop hands over at once instead of
//!   stalling for seconds.
//!
//! It serves etcd's peer routes besides `/raft`: `/raft/probing`,
//! `/version`, `/members`, and 404 for `/raft/stream/*`, so etcd keeps to
//! the pipeline. Ids are derived from `--initial-cluster` and
//! `--initial-cluster-token` exactly as etcd derives them.
//!
//! ```text
//! etcd_peer --name peer --initial-cluster etcd=http://127.0.0.1:2380,peer=http://127.0.0.1:2390 \
//!     --initial-cluster-token tok --listen-peer-urls http://127.0.0.1:2390 --stats-every 5
//! ```
//!
//! `tests/etcd_interop.rs` includes this file as a module and runs the same
//! code in-process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use log::{info, warn};
use rafthttp_pipeline::membership::{InitialCluster, Member, DEFAULT_INITIAL_CLUSTER_TOKEN};
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::{
    Envelope, Id, Inbound, PeerStatusChanged, PipelineActor, PipelineConfig, PipelineStats,
    ProcessError, Recipients, ReportSnapshot, ReportUnreachable, SnapshotStatus, Stop,
};

const USAGE: &str = "\
usage: etcd_peer --initial-cluster NAME=URL,... [options]

  --name NAME                     this member's name in --initial-cluster (default \"default\")
  --initial-cluster LIST          the cluster's members, name=peer-url,... as etcd takes it
  --initial-cluster-token TOKEN   the token the cluster was started with (default \"etcd-cluster\")
  --listen-peer-urls URLS         where to listen, http only (default: this member's URLs)
  --no-append-ack                 never answer MsgApp (control experiment: writes must fail)
  --stats-every SECS              print message counts as JSON every SECS seconds
";

/// The context raft puts on a leadership-transfer vote (`campaignTransfer`,
/// `raft/raft.go`): it makes the leader grant it despite its lease.
const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

// ---------------------------------------------------------------------------
// Flags

/// The command line, with etcd's flag names.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    /// `--name`.
    pub name: String,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--listen-peer-urls`; empty means this member's URLs.
    pub listen_peer_urls: Vec<String>,
    /// `--no-append-ack`.
    pub no_append_ack: bool,
    /// `--stats-every`.
    pub stats_every: Option<Duration>,
}

impl Flags {
    /// Parses the arguments after the program name. Flags take `--flag
    /// value` or `--flag=value`, with one dash or two, as Go's flag package.
    /// `Err` carries the message to print (the usage for `--help`).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            name: "default".into(),
            initial_cluster: String::new(),
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.into(),
            listen_peer_urls: Vec::new(),
            no_append_ack: false,
            stats_every: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let bare = arg.trim_start_matches('-');
            if bare.len() == arg.len() {
                return Err(format!("unexpected argument {arg:?}\n{USAGE}"));
            }
            let (key, inline) = match bare.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (bare, None),
            };
            match key {
                "help" | "h" => return Err(USAGE.to_owned()),
                "no-append-ack" => flags.no_append_ack = true,
                "name"
                | "initial-cluster"
                | "initial-cluster-token"
                | "listen-peer-urls"
                | "stats-every" => {
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| format!("flag --{key} needs a value\n{USAGE}"))?,
                    };
                    match key {
                        "name" => flags.name = value,
                        "initial-cluster" => flags.initial_cluster = value,
                        "initial-cluster-token" => flags.initial_cluster_token = value,
                        "listen-peer-urls" => {
                            flags.listen_peer_urls = value
                                .split(',')
                                .filter(|u| !u.is_empty())
                                .map(str::to_owned)
                                .collect();
                        }
                        _ => {
                            let secs: f64 = value
                                .parse()
                                .ok()
                                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                                .ok_or_else(|| format!("--stats-every {value:?}: not SECS > 0"))?;
                            flags.stats_every = Some(Duration::from_secs_f64(secs));
                        }
                    }
                }
                _ => return Err(format!("unknown flag {arg:?}\n{USAGE}")),
            }
        }
        if flags.initial_cluster.is_empty() {
            return Err(format!("--initial-cluster is required\n{USAGE}"));
        }
        Ok(flags)
    }

    /// The cluster, this member in it, and the addresses to listen on.
    pub fn resolve(&self) -> Result<(InitialCluster, Member, Vec<String>), String> {
        let cluster = InitialCluster::parse(&self.initial_cluster, &self.initial_cluster_token)
            .map_err(|e| format!("--initial-cluster: {e}"))?;
        let me = cluster
            .member(&self.name)
            .cloned()
            .ok_or_else(|| format!("--name {:?} is not in --initial-cluster", self.name))?;
        let listen = if self.listen_peer_urls.is_empty() {
            me.peer_urls.clone()
        } else {
            self.listen_peer_urls.clone()
        };
        let addrs = listen
            .iter()
            .map(|url| {
                url.strip_prefix("http://")
                    .map(|a| a.trim_end_matches('/').to_owned())
                    .ok_or_else(|| format!("--listen-peer-urls {url:?}: only http:// is supported"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((cluster, me, addrs))
    }
}

// ---------------------------------------------------------------------------
// The stand-in's raft logic: pure, no I/O.

/// What the stand-in remembers: just enough raft state to answer etcd.
#[derive(Debug, Clone)]
pub struct StandIn {
    id: u64,
    peers: Vec<u64>,
    ack_appends: bool,
    /// The highest term seen.
    term: u64,
    /// Whom we voted for, and in which term.
    vote: Option<(u64, u64)>,
    /// Index and term of the last entry we acknowledged.
    last: (u64, u64),
    /// Our leadership-transfer campaign: its term, the grants so far, and
    /// whether it was won.
    campaign: Option<(u64, BTreeSet<u64>, bool)>,
}

impl StandIn {
    /// A stand-in with id `id` in a cluster with `peers` (the others).
    /// Without `ack_appends` it never answers `MsgApp`.
    pub fn new(id: Id, peers: &[Id], ack_appends: bool) -> StandIn {
        StandIn {
            id: id.0,
            peers: peers.iter().map(|p| p.0).collect(),
            ack_appends,
            term: 0,
            vote: None,
            last: (0, 0),
            campaign: None,
        }
    }

    /// The messages to send in answer to `m`.
    pub fn step(&mut self, m: &Message) -> Vec<Message> {
        let Some(kind) = m.msg_type() else {
            return Vec::new();
        };
        match kind {
            MessageType::MsgPreVote => {
                vec![self.reply(m, MessageType::MsgPreVoteResp, m.term)]
            }
            MessageType::MsgVote => self.on_vote(m),
            MessageType::MsgApp => {
                self.see_term(m.term);
                let index = m.index + m.entries.len() as u64;
                let (last_index, last_term) = match m.entries.last() {
                    Some(e) => (e.index, e.term),
                    None => (m.index, m.log_term),
                };
                if last_index >= self.last.0 {
                    self.last = (last_index, last_term);
                }
                if !self.ack_appends {
                    return Vec::new();
                }
                let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
                resp.index = index;
                vec![resp]
            }
            MessageType::MsgSnap => {
                self.see_term(m.term);
                let meta = &m.snapshot.metadata;
                if meta.index >= self.last.0 {
                    self.last = (meta.index, meta.term);
                }
                if !self.ack_appends {
                    return Vec::new();
                }
                let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
                resp.index = meta.index;
                vec![resp]
            }
            MessageType::MsgHeartbeat => {
                self.see_term(m.term);
                let mut resp = self.reply(m, MessageType::MsgHeartbeatResp, m.term);
                resp.context = m.context.clone();
                vec![resp]
            }
            MessageType::MsgTimeoutNow => self.campaign_transfer(m.term),
            MessageType::MsgVoteResp => self.on_vote_resp(m),
            _ => Vec::new(),
        }
    }

    fn see_term(&mut self, term: u64) {
        self.term = self.term.max(term);
    }

    /// Grants a vote unless we already voted for someone else in that term
    /// or a later one, so that two candidates can never both win a term
    /// with our vote.
    fn on_vote(&mut self, m: &Message) -> Vec<Message> {
        let grant = match self.vote {
            Some((term, who)) if term == m.term => who == m.from,
            Some((term, _)) => term < m.term,
            None => true,
        };
        self.see_term(m.term);
        if grant {
            self.vote = Some((m.term, m.from));
            vec![self.reply(m, MessageType::MsgVoteResp, m.term)]
        } else {
            let mut resp = self.reply(m, MessageType::MsgVoteResp, self.term);
            resp.reject = true;
            vec![resp]
        }
    }

    /// Raft's transfer campaign: a vote request at the next term with our
    /// last acknowledged entry and the `CampaignTransfer` context.
    fn campaign_transfer(&mut self, leader_term: u64) -> Vec<Message> {
        let term = self.term.max(leader_term) + 1;
        self.term = term;
        self.vote = Some((term, self.id));
        self.campaign = Some((term, BTreeSet::from([self.id]), false));
        let mut out: Vec<Message> = self
            .peers
            .iter()
            .map(|&to| Message {
                r#type: MessageType::MsgVote as i32,
                to,
                from: self.id,
                term,
                index: self.last.0,
                log_term: self.last.1,
                context: Some(Bytes::from_static(CAMPAIGN_TRANSFER)),
                ..Message::default()
            })
            .collect();
        out.extend(self.maybe_won());
        out
    }

    fn on_vote_resp(&mut self, m: &Message) -> Vec<Message> {
        match &mut self.campaign {
            Some((term, granted, _)) if *term == m.term && !m.reject => {
                granted.insert(m.from);
            }
            _ => return Vec::new(),
        }
        self.maybe_won()
    }

    /// Once a majority granted the campaign: one heartbeat to each peer,
    /// with commit 0, since an etcd follower panics on a commit beyond its
    /// log and we do not know its log.
    fn maybe_won(&mut self) -> Vec<Message> {
        let members = self.peers.len() + 1;
        let quorum = members / 2 + 1;
        let Some((term, granted, won)) = &mut self.campaign else {
            return Vec::new();
        };
        if *won || granted.len() < quorum {
            return Vec::new();
        }
        *won = true;
        let term = *term;
        self.peers
            .iter()
            .map(|&to| Message {
                r#type: MessageType::MsgHeartbeat as i32,
                to,
                from: self.id,
                term,
                commit: 0,
                ..Message::default()
            })
            .collect()
    }

    fn reply(&self, m: &Message, kind: MessageType, term: u64) -> Message {
        Message {
            r#type: kind as i32,
            to: m.from,
            from: self.id,
            term,
            ..Message::default()
        }
    }
}

// ---------------------------------------------------------------------------
// Counters

/// Messages counted by type and direction, plus transport events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Received, by message type.
    pub inbound: BTreeMap<String, u64>,
    /// Handed to a pipeline, by message type.
    pub outbound: BTreeMap<String, u64>,
    /// `ReportUnreachable` callbacks from the pipelines.
    pub unreachable: u64,
    /// Every `X-Server-From` seen on a received message.
    pub senders: BTreeSet<Id>,
}

impl Counts {
    /// How many messages of `kind` were received.
    pub fn received(&self, kind: MessageType) -> u64 {
        self.inbound
            .get(&type_name(kind as i32))
            .copied()
            .unwrap_or(0)
    }

    /// How many messages of `kind` were sent.
    pub fn sent(&self, kind: MessageType) -> u64 {
        self.outbound
            .get(&type_name(kind as i32))
            .copied()
            .unwrap_or(0)
    }

    /// `{"in":{"MsgApp":7,...},"out":{...},"unreachable":0}`.
    pub fn to_json(&self) -> String {
        fn object(map: &BTreeMap<String, u64>) -> String {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        format!(
            "{{\"in\":{},\"out\":{},\"unreachable\":{}}}",
            object(&self.inbound),
            object(&self.outbound),
            self.unreachable
        )
    }
}

/// `MsgApp` for a known type, `Unknown(21)` otherwise (only the crate's
/// names, all plain ASCII, so they need no JSON escaping).
pub fn type_name(kind: i32) -> String {
    MessageType::try_from(kind).map_or_else(|_| format!("Unknown({kind})"), |t| format!("{t:?}"))
}

// ---------------------------------------------------------------------------
// The actor around the logic

/// Ask the stand-in to stop its pipelines; answers with their final stats.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(Id, PipelineStats)>")]
pub struct Shutdown;

/// The stand-in as an actor: takes [`Inbound`] messages from the receiver,
/// answers through one [`PipelineActor`] per peer, and counts.
pub struct StandInActor {
    logic: StandIn,
    pipelines: HashMap<u64, Addr<PipelineActor>>,
    counts: Arc<Mutex<Counts>>,
    stats_every: Option<Duration>,
}

impl Actor for StandInActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.stats_every {
            ctx.run_interval(every, |act, _| println!("{}", lock(&act.counts).to_json()));
        }
    }
}

impl Handler<Inbound> for StandInActor {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _ctx: &mut Context<Self>) -> Self::Result {
        let m = inbound.message;
        let replies = self.logic.step(&m);
        let mut counts = lock(&self.counts);
        *counts.inbound.entry(type_name(m.r#type)).or_default() += 1;
        if let Some(from) = inbound.from {
            counts.senders.insert(from);
        }
        for reply in replies {
            match self.pipelines.get(&reply.to) {
                Some(pipeline) => {
                    *counts.outbound.entry(type_name(reply.r#type)).or_default() += 1;
                    pipeline.do_send(Envelope(reply));
                }
                None => warn!("no pipeline to {}", Id(reply.to)),
            }
        }
        Ok(())
    }
}

impl Handler<ReportUnreachable> for StandInActor {
    type Result = ();

    fn handle(&mut self, report: ReportUnreachable, _ctx: &mut Context<Self>) {
        lock(&self.counts).unreachable += 1;
        warn!(
            "{} unreachable for {}: {}",
            report.to,
            type_name(report.message_type),
            report.reason
        );
    }
}

impl Handler<ReportSnapshot> for StandInActor {
    type Result = ();

    fn handle(&mut self, report: ReportSnapshot, _ctx: &mut Context<Self>) {
        if report.status == SnapshotStatus::Failure {
            warn!("snapshot to {} failed", report.to);
        }
    }
}

impl Handler<PeerStatusChanged> for StandInActor {
    type Result = ();

    fn handle(&mut self, change: PeerStatusChanged, _ctx: &mut Context<Self>) {
        match (change.active, change.reason) {
            (true, _) => info!("peer {} became active", change.peer),
            (false, reason) => info!(
                "peer {} became inactive ({})",
                change.peer,
                reason.unwrap_or_default()
            ),
        }
    }
}

impl Handler<Shutdown> for StandInActor {
    type Result = ResponseFuture<Vec<(Id, PipelineStats)>>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let pipelines: Vec<_> = self.pipelines.drain().collect();
        Box::pin(async move {
            let mut stats = Vec::new();
            for (peer, pipeline) in pipelines {
                if let Ok(s) = pipeline.send(Stop).await {
                    stats.push((Id(peer), s));
                }
            }
            stats
        })
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Wiring

/// A running stand-in: its HTTP server, its actor and its counters.
pub struct Running {
    /// The cluster as derived from the flags.
    pub cluster: InitialCluster,
    /// This member.
    pub me: Member,
    /// The counters, shared with the actor.
    pub counts: Arc<Mutex<Counts>>,
    server: ServerHandle,
    actor: Addr<StandInActor>,
}

impl Running {
    /// Stops serving, then stops the pipelines; returns their final stats.
    pub async fn stop(self) -> Vec<(Id, PipelineStats)> {
        self.server.stop(true).await;
        self.actor.send(Shutdown).await.unwrap_or_default()
    }
}

/// Binds the addresses the flags listen on.
pub fn bind(addrs: &[String]) -> io::Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            TcpListener::bind(a.as_str()).map_err(|e| io::Error::new(e.kind(), format!("{a}: {e}")))
        })
        .collect()
}

/// Starts the stand-in on `listeners`, inside a running actix `System`:
/// the actor, one pipeline per peer, and the HTTP server.
pub fn start_on(
    flags: &Flags,
    cluster: InitialCluster,
    me: Member,
    listeners: Vec<TcpListener>,
) -> io::Result<Running> {
    let peers: Vec<Member> = cluster.peers_of(&me.name).cloned().collect();
    info!(
        "stand-in {} ({}) in cluster {} with {} peer(s)",
        me.name,
        me.id,
        cluster.cluster_id,
        peers.len()
    );
    let counts = Arc::new(Mutex::new(Counts::default()));
    let ctx = Context::<StandInActor>::new();
    let addr = ctx.address();
    let mut pipelines = HashMap::new();
    for peer in &peers {
        let config =
            PipelineConfig::new(me.id, peer.id, cluster.cluster_id, peer.peer_urls.clone())
                .local_urls(me.peer_urls.clone());
        let recipients = Recipients::from_addr(&addr).peer_status(addr.clone().recipient());
        let pipeline = PipelineActor::start(config, recipients).map_err(io::Error::other)?;
        pipelines.insert(peer.id.0, pipeline);
    }
    let peer_ids: Vec<Id> = peers.iter().map(|p| p.id).collect();
    let actor = ctx.run(StandInActor {
        logic: StandIn::new(me.id, &peer_ids, !flags.no_append_ack),
        pipelines,
        counts: counts.clone(),
        stats_every: flags.stats_every,
    });

    let receiver_config = ReceiverConfig::new(me.id, cluster.cluster_id, actor.clone().recipient())
        .serve_version(true);
    let members = web::Data::new(MembersJson {
        cluster_id: cluster.cluster_id.to_string(),
        body: members_json(&cluster),
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(members.clone())
            .route("/members", web::route().to(serve_members))
            .configure(receiver::configure(receiver_config.clone()))
    })
    .workers(1)
    .disable_signals();
    for listener in listeners {
        info!("listening for peers on {}", listener.local_addr()?);
        server = server.listen(listener)?;
    }
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            warn!("peer server: {e}");
        }
    });
    Ok(Running {
        cluster,
        me,
        counts,
        server: handle,
        actor,
    })
}

/// etcd's `GET /members` answer, prepared once.
struct MembersJson {
    cluster_id: String,
    body: String,
}

/// `/members` as etcd's `peerMembersHandler` serves it
/// (`etcdserver/api/etcdhttp/peer.go`): a JSON list of the members with
/// `X-Etcd-Cluster-ID`. etcd reads it at start to see whether it was
/// already bootstrapped; none of our members has client URLs, so it was not.
async fn serve_members(req: HttpRequest, members: web::Data<MembersJson>) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET"))
            .body("Method Not Allowed\n");
    }
    HttpResponse::Ok()
        .insert_header(("X-Etcd-Cluster-ID", members.cluster_id.clone()))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(members.body.clone())
}

/// `[{"id":<decimal>,"peerURLs":[...],"name":"..."}]` and a newline, as
/// Go's `json.Encoder` writes etcd's `membership.Member`.
fn members_json(cluster: &InitialCluster) -> String {
    let members: Vec<String> = cluster
        .members
        .iter()
        .map(|m| {
            let urls: Vec<String> = m.peer_urls.iter().map(|u| json_string(u)).collect();
            format!(
                "{{\"id\":{},\"peerURLs\":[{}],\"name\":{}}}",
                m.id.0,
                urls.join(","),
                json_string(&m.name)
            )
        })
        .collect();
    format!("[{}]\n", members.join(","))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// main

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let parsed = Flags::parse(std::env::args().skip(1))
        .and_then(|flags| flags.resolve().map(|resolved| (flags, resolved)));
    let (flags, (cluster, me, addrs)) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("etcd_peer: {message}");
            std::process::exit(2);
        }
    };
    println!(
        "{{\"member_id\":\"{}\",\"cluster_id\":\"{}\"}}",
        me.id, cluster.cluster_id
    );
    let listeners = bind(&addrs)?;
    actix_rt::System::new().block_on(async move {
        let running = start_on(&flags, cluster, me, listeners)?;
        let mut term = actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = actix_rt::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
        }
        let counts = running.counts.clone();
        for (peer, stats) in running.stop().await {
            info!(
                "pipeline to {peer}: accepted {}, delivered {}, failed {}, dropped {}, cancelled {}",
                stats.accepted, stats.delivered, stats.failed, stats.dropped, stats.cancelled
            );
        }
        println!("{}", lock(&counts).to_json());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafthttp_pipeline::raftpb::{Entry, Snapshot, SnapshotMetadata};

    const ME: u64 = 0xb;
    const ETCD: u64 = 0xa;

    fn msg(kind: MessageType, term: u64) -> Message {
        Message {
            r#type: kind as i32,
            to: ME,
            from: ETCD,
            term,
            ..Message::default()
        }
    }

    fn standin() -> StandIn {
        StandIn::new(Id(ME), &[Id(ETCD)], true)
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    #[test]
    fn grants_vote_and_prevote_with_the_matching_type_at_the_message_term() {
        let mut s = standin();
        for (ask, answer) in [
            (MessageType::MsgPreVote, MessageType::MsgPreVoteResp),
            (MessageType::MsgVote, MessageType::MsgVoteResp),
        ] {
            let out = s.step(&msg(ask, 7));
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].msg_type(), Some(answer));
            assert_eq!((out[0].to, out[0].from, out[0].term), (ETCD, ME, 7));
            assert!(!out[0].reject);
        }
    }

    #[test]
    fn votes_once_per_term() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc)], true);
        assert!(!s.step(&msg(MessageType::MsgVote, 3))[0].reject);
        assert!(
            !s.step(&msg(MessageType::MsgVote, 3))[0].reject,
            "same candidate again"
        );
        let mut other = msg(MessageType::MsgVote, 3);
        other.from = 0xc;
        let out = s.step(&other);
        assert!(out[0].reject, "second candidate in the same term");
        assert_eq!(out[0].to, 0xc);
        other.term = 4;
        assert!(!s.step(&other)[0].reject, "a later term is a new vote");
    }

    #[test]
    fn acks_append_with_index_plus_entries() {
        let mut s = standin();
        let mut app = msg(MessageType::MsgApp, 2);
        app.index = 2;
        app.log_term = 1;
        app.entries = vec![entry(3, 2), entry(4, 2)];
        let out = s.step(&app);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        assert_eq!((out[0].index, out[0].term, out[0].to), (4, 2, ETCD));
        assert!(!out[0].reject);

        let mut probe = msg(MessageType::MsgApp, 2);
        probe.index = 4;
        probe.log_term = 2;
        assert_eq!(
            s.step(&probe)[0].index,
            4,
            "an empty append acks its own index"
        );
    }

    #[test]
    fn no_append_ack_withholds_only_append_responses() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD)], false);
        let mut app = msg(MessageType::MsgApp, 2);
        app.entries = vec![entry(1, 2)];
        assert!(s.step(&app).is_empty());
        assert_eq!(s.step(&msg(MessageType::MsgVote, 2)).len(), 1);
        assert_eq!(s.step(&msg(MessageType::MsgHeartbeat, 2)).len(), 1);
    }

    #[test]
    fn heartbeat_response_echoes_context() {
        let mut s = standin();
        let mut hb = msg(MessageType::MsgHeartbeat, 5);
        hb.commit = 9;
        hb.context = Some(Bytes::from_static(b"read-index-ctx"));
        let out = s.step(&hb);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgHeartbeatResp));
        assert_eq!(out[0].term, 5);
        assert_eq!(out[0].context.as_deref(), Some(&b"read-index-ctx"[..]));
        assert_eq!(s.step(&msg(MessageType::MsgHeartbeat, 5))[0].context, None);
    }

    #[test]
    fn timeout_now_campaigns_then_sends_one_heartbeat_with_commit_zero() {
        let mut s = standin();
        let mut app = msg(MessageType::MsgApp, 4);
        app.index = 10;
        app.log_term = 3;
        app.entries = vec![entry(11, 4)];
        s.step(&app);

        let out = s.step(&msg(MessageType::MsgTimeoutNow, 4));
        assert_eq!(out.len(), 1);
        let vote = &out[0];
        assert_eq!(vote.msg_type(), Some(MessageType::MsgVote));
        assert_eq!((vote.to, vote.from, vote.term), (ETCD, ME, 5));
        assert_eq!((vote.index, vote.log_term), (11, 4), "last acked entry");
        assert_eq!(vote.context.as_deref(), Some(CAMPAIGN_TRANSFER));

        let mut rejected = msg(MessageType::MsgVoteResp, 5);
        rejected.reject = true;
        assert!(s.step(&rejected).is_empty());
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 4)).is_empty(),
            "stale term"
        );

        let out = s.step(&msg(MessageType::MsgVoteResp, 5));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgHeartbeat));
        assert_eq!((out[0].to, out[0].term, out[0].commit), (ETCD, 5, 0));
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 5)).is_empty(),
            "only one heartbeat"
        );
    }

    #[test]
    fn transfer_needs_a_majority_in_a_larger_cluster() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc), Id(0xd), Id(0xe)], true);
        assert_eq!(s.step(&msg(MessageType::MsgTimeoutNow, 1)).len(), 4);
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 2)).is_empty(),
            "2 of 5"
        );
        let mut second = msg(MessageType::MsgVoteResp, 2);
        second.from = 0xc;
        assert_eq!(s.step(&second).len(), 4, "3 of 5: heartbeat to every peer");
    }

    #[test]
    fn snapshot_is_acked_at_its_index() {
        let mut s = standin();
        let mut snap = msg(MessageType::MsgSnap, 3);
        snap.snapshot = Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                index: 42,
                term: 3,
                ..SnapshotMetadata::default()
            },
        };
        let out = s.step(&snap);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        assert_eq!(out[0].index, 42);
    }

    #[test]
    fn flags_parse_like_etcd() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let f = Flags::parse(args(
            "--name p --initial-cluster=e=http://127.0.0.1:1,p=http://127.0.0.1:2 \
             -initial-cluster-token tok --no-append-ack --stats-every 0.5",
        ))
        .unwrap();
        assert_eq!(f.name, "p");
        assert_eq!(f.initial_cluster_token, "tok");
        assert!(f.no_append_ack);
        assert_eq!(f.stats_every, Some(Duration::from_millis(500)));
        let (cluster, me, addrs) = f.resolve().unwrap();
        assert_eq!(cluster.members.len(), 2);
        assert_eq!(me.name, "p");
        assert_eq!(addrs, ["127.0.0.1:2"]);

        assert!(Flags::parse(args("--name p")).is_err(), "no cluster");
        assert!(Flags::parse(args("--bogus 1 --initial-cluster a=http://h:1")).is_err());
        assert!(Flags::parse(args("--initial-cluster a=http://h:1 --stats-every x")).is_err());
        let no_me = Flags::parse(args("--name z --initial-cluster a=http://h:1")).unwrap();
        assert!(no_me.resolve().is_err());
    }

    #[test]
    fn counts_print_as_json() {
        let mut c = Counts::default();
        c.inbound.insert(type_name(MessageType::MsgApp as i32), 7);
        c.outbound
            .insert(type_name(MessageType::MsgAppResp as i32), 7);
        c.outbound.insert(type_name(99), 1);
        let json = c.to_json();
        assert_eq!(
            json,
            "{\"in\":{\"MsgApp\":7},\"out\":{\"MsgAppResp\":7,\"Unknown(99)\":1},\"unreachable\":0}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["in"]["MsgApp"], 7);
        assert_eq!(c.received(MessageType::MsgApp), 7);
        assert_eq!(c.sent(MessageType::MsgAppResp), 7);
    }

    #[test]
    fn members_json_is_what_etcd_decodes() {
        let cluster =
            InitialCluster::parse("a=http://127.0.0.1:2380,b=http://127.0.0.1:2390", "tok")
                .unwrap();
        let json = members_json(&cluster);
        assert!(json.ends_with("]\n"));
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let ids: Vec<u64> = parsed
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [0x71405583d3e2d5ce, 0xff9d11e786a34662]);
        assert_eq!(parsed[0]["peerURLs"][0], "http://127.0.0.1:2380");
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}

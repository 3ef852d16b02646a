//! A stand-in etcd member, built only from this crate's public API, that
//! joins a real etcd 3.4 cluster. It keeps no data, only the terms of its
//! raft log, which is what raft needs to decide whether an append fits.
//!
//! It answers etcd's raft messages as a raft follower would, with every
//! message in both directions carried by [`PipelineActor`] (out) and the
//! [`receiver`] (in):
//!
//! - it grants `MsgVote` and `MsgPreVote` (once per term for `MsgVote`);
//! - it answers `MsgApp` as raft's `handleAppendEntries` does: an append
//!   that fits its log is acknowledged with `MsgAppResp { index: m.index +
//!   entries }`; one it cannot apply (a gap, or a different term at
//!   `m.index`) is rejected with its last index as the hint, and etcd then
//!   probes back (unless `--no-append-ack`, the control experiment);
//! - it answers `MsgHeartbeat` with `MsgHeartbeatResp`, echoing `context`,
//!   which etcd's linearizable reads need;
//! - with `--data-dir`, it takes the leader's database through `POST
//!   /raft/snapshot` into that directory (`%016x.snap.db`, as etcd names
//!   it), then restores its log to the snapshot and acknowledges it with
//!   `MsgAppResp { index: snapshot index }`, after which etcd replicates to
//!   it normally;
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
//! To stage a catch-up, `--down-until-signal` (or `--start-delay SECS`)
//! holds the member down at start: its port is bound but not listening, so
//! etcd's connections are refused as if it were off, until SIGUSR1. With
//! `--events`, it prints one JSON line per append answer and per snapshot
//! step, and `--fail-snapshots N` makes the first N snapshot transfers fail
//! (`--fail-mode 500`: the sink fails and the receiver answers 500; `cut`:
//! the connection is shut down mid-body), to watch etcd retry.
//!
//! `tests/etcd_interop.rs` includes this file as a module and runs the same
//! code in-process; `tests/etcd_snapshot.rs` runs it in child processes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::{Payload, ServerHandle, Service, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::{header, Method};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use log::{info, warn};
use rafthttp_pipeline::membership::{InitialCluster, Member, DEFAULT_INITIAL_CLUSTER_TOKEN};
use rafthttp_pipeline::raftpb::{Entry, Message, MessageType, SnapshotMetadata};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::snapshot_receiver::{
    DirSink, ReceivedSnapshot, SnapshotConfig, SnapshotSink, SnapshotWriter,
};
use rafthttp_pipeline::wire::RAFT_SNAPSHOT_PREFIX;
use rafthttp_pipeline::{
    Envelope, Id, Inbound, PeerStatusChanged, PipelineActor, PipelineConfig, PipelineStats,
    ProcessError, Recipients, ReportSnapshot, ReportUnreachable, SnapshotStatus, Stop,
};
use serde_json::{json, Value};

const USAGE: &str = "\
usage: etcd_peer --initial-cluster NAME=URL,... [options]

  --name NAME                     this member's name in --initial-cluster (default \"default\")
  --initial-cluster LIST          the cluster's members, name=peer-url,... as etcd takes it
  --initial-cluster-token TOKEN   the token the cluster was started with (default \"etcd-cluster\")
  --listen-peer-urls URLS         where to listen, http only (default: this member's URLs)
  --data-dir DIR                  take snapshots: store the leader's databases in DIR as
                                  %016x.snap.db (without it, POST /raft/snapshot is 404)
  --down-until-signal             hold the member down (port bound, connections refused)
                                  until SIGUSR1
  --start-delay SECS              hold the member down for SECS seconds (or until SIGUSR1)
  --no-append-ack                 never answer MsgApp (control experiment: writes must fail)
  --stats-every SECS              print message counts as JSON every SECS seconds
  --events                        print a JSON line per append answer and per snapshot step
  --fail-snapshots N              make the first N snapshot transfers fail (needs --data-dir)
  --fail-mode 500|cut             how they fail: the sink fails after its first write and the
                                  receiver answers 500 (default), or the connection is shut
                                  down after 2 MiB of the body
";

/// The context raft puts on a leadership-transfer vote (`campaignTransfer`,
/// `raft/raft.go`): it makes the leader grant it despite its lease.
const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// With `--fail-mode cut`, how much of a snapshot body passes before the
/// connection is shut down: more than the receiver's first write batch, so
/// a temp file with data exists when the cut comes.
pub const CUT_AFTER_BYTES: u64 = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Flags

/// How `--fail-snapshots` makes a transfer fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The sink fails after its first write (a real temp file with data
    /// exists by then); the receiver discards it and answers 500.
    Status500,
    /// The connection is shut down after [`CUT_AFTER_BYTES`] of the body;
    /// etcd gets no answer at all.
    Cut,
}

impl FailMode {
    /// The name `--fail-mode` takes and the events print.
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Status500 => "500",
            FailMode::Cut => "cut",
        }
    }
}

/// The command line, with etcd's flag names where etcd has one.
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
    /// `--data-dir`: where received snapshot databases go; `None` leaves
    /// `POST /raft/snapshot` unmounted.
    pub data_dir: Option<PathBuf>,
    /// `--down-until-signal`: held down until SIGUSR1.
    pub down_until_signal: bool,
    /// `--start-delay`: held down this long (or until SIGUSR1).
    pub start_delay: Option<Duration>,
    /// `--no-append-ack`.
    pub no_append_ack: bool,
    /// `--stats-every`.
    pub stats_every: Option<Duration>,
    /// `--events`.
    pub events: bool,
    /// `--fail-snapshots`: how many snapshot transfers fail first.
    pub fail_snapshots: u64,
    /// `--fail-mode`.
    pub fail_mode: FailMode,
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
            data_dir: None,
            down_until_signal: false,
            start_delay: None,
            no_append_ack: false,
            stats_every: None,
            events: false,
            fail_snapshots: 0,
            fail_mode: FailMode::Status500,
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
                "down-until-signal" => flags.down_until_signal = true,
                "events" => flags.events = true,
                "name"
                | "initial-cluster"
                | "initial-cluster-token"
                | "listen-peer-urls"
                | "data-dir"
                | "start-delay"
                | "stats-every"
                | "fail-snapshots"
                | "fail-mode" => {
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| format!("flag --{key} needs a value\n{USAGE}"))?,
                    };
                    flags.set(key, value)?;
                }
                _ => return Err(format!("unknown flag {arg:?}\n{USAGE}")),
            }
        }
        if flags.initial_cluster.is_empty() {
            return Err(format!("--initial-cluster is required\n{USAGE}"));
        }
        if flags.fail_snapshots > 0 && flags.data_dir.is_none() {
            return Err(format!("--fail-snapshots needs --data-dir\n{USAGE}"));
        }
        Ok(flags)
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let seconds = |value: &str| {
            value
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("--{key} {value:?}: not SECS > 0"))
        };
        match key {
            "name" => self.name = value,
            "initial-cluster" => self.initial_cluster = value,
            "initial-cluster-token" => self.initial_cluster_token = value,
            "listen-peer-urls" => {
                self.listen_peer_urls = value
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "data-dir" if !value.is_empty() => self.data_dir = Some(PathBuf::from(value)),
            "start-delay" => self.start_delay = Some(seconds(&value)?),
            "stats-every" => self.stats_every = Some(seconds(&value)?),
            "fail-snapshots" => {
                self.fail_snapshots = value
                    .parse()
                    .map_err(|_| format!("--fail-snapshots {value:?}: not a count"))?;
            }
            "fail-mode" => {
                self.fail_mode = match value.as_str() {
                    "500" => FailMode::Status500,
                    "cut" => FailMode::Cut,
                    _ => return Err(format!("--fail-mode {value:?}: not 500 or cut")),
                };
            }
            _ => return Err(format!("--{key} {value:?}: bad value\n{USAGE}")),
        }
        Ok(())
    }

    /// Whether the member starts held down.
    pub fn held_down(&self) -> bool {
        self.down_until_signal || self.start_delay.is_some()
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

/// The stand-in's raft log without its entries: where each term begins,
/// which is all raft's `matchTerm` and `findConflict` need. Terms never
/// decrease along a raft log, so this holds one pair per term, not per
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTerms {
    /// The index and term the log starts after: `(0, 0)` at bootstrap, the
    /// snapshot's after a restore.
    base: (u64, u64),
    /// `(first index, term)` of each run of one term after `base`, in
    /// order.
    runs: Vec<(u64, u64)>,
    last: u64,
    commit: u64,
}

impl LogTerms {
    /// The log raft's `StartNode` writes for a new cluster: one committed
    /// `ConfChange` entry per initial member, all at term 1.
    pub fn bootstrap(members: u64) -> LogTerms {
        LogTerms {
            base: (0, 0),
            runs: if members > 0 {
                vec![(1, 1)]
            } else {
                Vec::new()
            },
            last: members,
            commit: members,
        }
    }

    /// The index of the last entry.
    pub fn last_index(&self) -> u64 {
        self.last
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last).unwrap_or(0)
    }

    /// The highest index known committed.
    pub fn committed(&self) -> u64 {
        self.commit
    }

    /// The term of the entry at `index`; `None` past the end or before the
    /// snapshot (compacted).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.base.0 {
            return Some(self.base.1);
        }
        if index < self.base.0 || index > self.last {
            return None;
        }
        self.runs
            .iter()
            .rev()
            .find(|(start, _)| *start <= index)
            .map(|&(_, term)| term)
    }

    /// raft's `maybeAppend`: if the entry at `index` has `log_term`, writes
    /// `entries` after it, replacing a conflicting tail, and moves the
    /// commit up to `commit` (at most the last new entry). Returns the last
    /// new index, or `None` when the append does not fit. The entries are
    /// taken as `index + 1, index + 2, ...`, as a correct leader numbers
    /// them. A conflict at or below the commit, which raft answers with a
    /// panic, is refused instead.
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        commit: u64,
        entries: &[Entry],
    ) -> Option<u64> {
        if self.term(index) != Some(log_term) {
            return None;
        }
        let positioned = entries
            .iter()
            .enumerate()
            .map(|(k, e)| (index + 1 + k as u64, e.term));
        let new_last = index + entries.len() as u64;
        let conflict = positioned
            .clone()
            .find(|&(at, term)| self.term(at) != Some(term));
        if let Some((from, _)) = conflict {
            if from <= self.commit {
                return None;
            }
            self.last = from - 1;
            let last = self.last;
            self.runs.retain(|&(start, _)| start <= last);
            for (at, term) in positioned.skip_while(|&(at, _)| at < from) {
                if self.runs.last().map(|&(_, t)| t) != Some(term) {
                    self.runs.push((at, term));
                }
                self.last = at;
            }
        }
        self.commit_to(commit.min(new_last));
        Some(new_last)
    }

    /// raft's `commitTo`, clamped to the last index instead of panicking.
    pub fn commit_to(&mut self, commit: u64) {
        self.commit = self.commit.max(commit.min(self.last));
    }

    /// raft's `restore`: replaces the log with the snapshot unless it is
    /// already committed. A snapshot the log already holds only moves the
    /// commit. Returns whether the log was replaced.
    pub fn restore(&mut self, snapshot: &SnapshotMetadata) -> bool {
        if snapshot.index <= self.commit {
            return false;
        }
        if self.term(snapshot.index) == Some(snapshot.term) {
            self.commit_to(snapshot.index);
            return false;
        }
        self.base = (snapshot.index, snapshot.term);
        self.runs.clear();
        self.last = snapshot.index;
        self.commit = snapshot.index;
        true
    }
}

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
    /// The terms of our log.
    log: LogTerms,
    /// Our leadership-transfer campaign: its term, the grants so far, and
    /// whether it was won.
    campaign: Option<(u64, BTreeSet<u64>, bool)>,
}

impl StandIn {
    /// A stand-in with id `id` in a new cluster with `peers` (the others),
    /// its log holding the bootstrap entries. Without `ack_appends` it never
    /// answers `MsgApp`.
    pub fn new(id: Id, peers: &[Id], ack_appends: bool) -> StandIn {
        StandIn {
            id: id.0,
            peers: peers.iter().map(|p| p.0).collect(),
            ack_appends,
            term: 0,
            vote: None,
            log: LogTerms::bootstrap(peers.len() as u64 + 1),
            campaign: None,
        }
    }

    /// The log's terms, last index and commit.
    pub fn log(&self) -> &LogTerms {
        &self.log
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
                let answer = self.on_append(m);
                if self.ack_appends {
                    vec![answer]
                } else {
                    Vec::new()
                }
            }
            MessageType::MsgSnap => {
                self.see_term(m.term);
                // raft's handleSnapshot: the new last index once restored,
                // the commit when the snapshot was ignored.
                let index = if self.log.restore(&m.snapshot.metadata) {
                    self.log.last_index()
                } else {
                    self.log.committed()
                };
                if !self.ack_appends {
                    return Vec::new();
                }
                let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
                resp.index = index;
                vec![resp]
            }
            MessageType::MsgHeartbeat => {
                self.see_term(m.term);
                self.log.commit_to(m.commit);
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

    /// raft's `handleAppendEntries`: below the commit, the commit; an
    /// append that fits, its last index; otherwise a rejection with our last
    /// index as the hint.
    fn on_append(&mut self, m: &Message) -> Message {
        let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
        if m.index < self.log.committed() {
            resp.index = self.log.committed();
            return resp;
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, &m.entries)
        {
            Some(last) => resp.index = last,
            None => {
                resp.index = m.index;
                resp.reject = true;
                resp.reject_hint = self.log.last_index();
            }
        }
        resp
    }

    /// Grants a vote unless we already voted for someone else in that term
    /// or a later one, so that two candidates can never both win a term
    /// with our vote. (etcd is the only member that campaigns on its own,
    /// and its log is never behind ours, so the log check is left out.)
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
    /// last entry and the `CampaignTransfer` context.
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
                index: self.log.last_index(),
                log_term: self.log.last_term(),
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
    /// log and we do not track the followers' logs.
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
    /// `MsgApp`s rejected because they did not fit the log (counted in
    /// `out` as `MsgAppResp` too).
    pub rejected_appends: u64,
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

    /// `{"in":{"MsgApp":7,...},"out":{...},"unreachable":0,"rejected_appends":0}`.
    pub fn to_json(&self) -> String {
        fn object(map: &BTreeMap<String, u64>) -> String {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        format!(
            "{{\"in\":{},\"out\":{},\"unreachable\":{},\"rejected_appends\":{}}}",
            object(&self.inbound),
            object(&self.outbound),
            self.unreachable,
            self.rejected_appends
        )
    }
}

/// `MsgApp` for a known type, `Unknown(21)` otherwise (only the crate's
/// names, all plain ASCII, so they need no JSON escaping).
pub fn type_name(kind: i32) -> String {
    MessageType::try_from(kind).map_or_else(|_| format!("Unknown({kind})"), |t| format!("{t:?}"))
}

// ---------------------------------------------------------------------------
// Events

/// Where the stand-in reports what it does, one JSON object per line on
/// stdout: always the lifecycle (`down`, `up`); with `--events` also every
/// append answer and every snapshot step.
#[derive(Debug, Clone, Copy)]
pub struct Events {
    detailed: bool,
}

impl Events {
    /// Lifecycle lines only, or (`detailed`) everything.
    pub fn new(detailed: bool) -> Events {
        Events { detailed }
    }

    /// Whether per-message and per-snapshot events are printed.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// Prints a lifecycle event.
    pub fn lifecycle(&self, event: Value) {
        println!("{event}");
    }

    /// Prints a detailed event, when `--events` asked for them.
    pub fn detail(&self, event: impl FnOnce() -> Value) {
        if self.detailed {
            println!("{}", event());
        }
    }
}

/// This process's peak and current resident set size, in KiB
/// (`VmHWM` and `VmRSS` of `/proc/self/status`), as a JSON object;
/// `null` fields where the kernel does not say.
pub fn memory() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    json!({"vm_hwm_kb": field("VmHWM:"), "vm_rss_kb": field("VmRSS:")})
}

// ---------------------------------------------------------------------------
// Snapshots: the directory sink, observed, with injected failures

/// The stand-in's snapshot sink: the receiver's [`DirSink`] (a temp file,
/// fsynced, renamed to `%016x.snap.db`), numbering the transfers and
/// reporting each one, and failing the first ones on demand
/// (`--fail-snapshots N --fail-mode 500`).
#[derive(Debug)]
pub struct StandInSink {
    dir: DirSink,
    attempts: AtomicU64,
    fail_first: u64,
    events: Events,
}

impl StandInSink {
    /// Stores into `dir`; the first `fail_first` transfers fail after their
    /// first write.
    pub fn new(dir: impl Into<PathBuf>, fail_first: u64, events: Events) -> StandInSink {
        StandInSink {
            dir: DirSink::new(dir),
            attempts: AtomicU64::new(0),
            fail_first,
            events,
        }
    }
}

impl SnapshotSink for StandInSink {
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let inject = attempt <= self.fail_first;
        self.events.detail(|| {
            json!({"event": "snapshot_begin", "attempt": attempt, "index": index, "inject": inject})
        });
        let inner = self.dir.begin(index)?;
        Ok(Box::new(StandInWriter {
            inner: Some(inner),
            attempt,
            index,
            written: 0,
            inject,
            events: self.events,
        }))
    }
}

/// One transfer into a [`StandInSink`].
struct StandInWriter {
    inner: Option<Box<dyn SnapshotWriter>>,
    attempt: u64,
    index: u64,
    written: u64,
    inject: bool,
    events: Events,
}

impl StandInWriter {
    fn injected(&self) -> io::Error {
        io::Error::other(format!(
            "injected failure of snapshot transfer {} (--fail-snapshots)",
            self.attempt
        ))
    }
}

impl SnapshotWriter for StandInWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.inject && self.written > 0 {
            return Err(self.injected());
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("snapshot writer already closed"))?;
        inner.write(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<PathBuf> {
        if self.inject {
            return Err(self.injected());
        }
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("snapshot writer already closed"))?;
        let path = inner.commit()?;
        let (attempt, index, written) = (self.attempt, self.index, self.written);
        self.events.detail(|| {
            json!({"event": "snapshot_committed", "attempt": attempt, "index": index,
                   "written": written, "path": path.display().to_string()})
        });
        Ok(path)
    }
}

impl Drop for StandInWriter {
    fn drop(&mut self) {
        // Not committed: dropping the directory writer removes its temp
        // file. Report only once that is done.
        if let Some(inner) = self.inner.take() {
            drop(inner);
            let (attempt, index, written) = (self.attempt, self.index, self.written);
            self.events.detail(|| {
                json!({"event": "snapshot_discarded", "attempt": attempt, "index": index,
                       "written": written, "memory": memory()})
            });
        }
    }
}

/// The connection's socket, recorded when it is accepted, so that
/// `--fail-mode cut` can shut it down.
#[derive(Debug, Clone, Copy)]
struct PeerSocket(RawFd);

/// Numbers the `POST /raft/snapshot` requests, reports each one and its
/// answer, and cuts the first ones with `--fail-mode cut`. A cut request
/// may have no answer: actix drops a request whose connection is gone.
#[derive(Debug)]
struct SnapshotRequests {
    seen: AtomicU64,
    cut_first: u64,
    events: Events,
}

/// Passes `payload` through until `after` bytes went by, then shuts the
/// connection down (both directions) and fails the body, as a peer that
/// vanished mid-transfer would.
fn cut_after(payload: Payload, socket: PeerSocket, after: u64) -> Payload {
    let stream = futures::stream::unfold(
        (payload, 0u64, false),
        move |(mut payload, mut seen, cut)| async move {
            if cut {
                return None;
            }
            match payload.next().await? {
                Ok(chunk) => {
                    seen += chunk.len() as u64;
                    if seen < after {
                        return Some((Ok(chunk), (payload, seen, false)));
                    }
                    // SAFETY: shutdown(2) on the socket of the connection
                    // whose request this is; actix keeps it open while the
                    // request is served, and shutdown does not close it.
                    unsafe { libc::shutdown(socket.0, libc::SHUT_RDWR) };
                    let cut = io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("connection cut after {seen} bytes (--fail-mode cut)"),
                    );
                    Some((Err(PayloadError::Io(cut)), (payload, seen, true)))
                }
                Err(e) => Some((Err(e), (payload, seen, true))),
            }
        },
    );
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    Payload::from(boxed)
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
    events: Events,
}

impl Actor for StandInActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.stats_every {
            ctx.run_interval(every, |act, _| println!("{}", lock(&act.counts).to_json()));
        }
    }
}

impl StandInActor {
    /// Reports what was done with a message, for `--events`.
    fn report(&self, m: &Message, snapshot: Option<&ReceivedSnapshot>, replies: &[Message]) {
        let answer = replies
            .iter()
            .find(|r| r.msg_type() == Some(MessageType::MsgAppResp));
        match m.msg_type() {
            Some(MessageType::MsgApp) => self.events.detail(|| {
                json!({"event": "append", "index": m.index, "log_term": m.log_term,
                       "entries": m.entries.len(), "commit": m.commit,
                       "answer": answer.map(|r| r.index), "reject": answer.map(|r| r.reject),
                       "hint": answer.map(|r| r.reject_hint)})
            }),
            Some(MessageType::MsgSnap) => {
                let meta = &m.snapshot.metadata;
                match snapshot {
                    Some(s) => info!(
                        "restored snapshot at index {} (term {}) from {:?}: {} bytes in {:?}",
                        meta.index, meta.term, s.path, s.size, s.took
                    ),
                    None => info!("inline snapshot at index {}", meta.index),
                }
                self.events.detail(|| {
                    json!({"event": "snapshot_saved", "index": meta.index, "term": meta.term,
                           "message_bytes": m.snapshot.data.as_ref().map_or(0, |d| d.len()),
                           "path": snapshot.map(|s| s.path.display().to_string()),
                           "size": snapshot.map(|s| s.size),
                           "took_ms": snapshot.map(|s| s.took.as_secs_f64() * 1000.0),
                           "answer": answer.map(|r| r.index), "memory": memory()})
                });
            }
            _ => {}
        }
    }
}

impl Handler<Inbound> for StandInActor {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _ctx: &mut Context<Self>) -> Self::Result {
        let m = inbound.message;
        let replies = self.logic.step(&m);
        if self.events.detailed() || m.is_snapshot() {
            self.report(&m, inbound.snapshot.as_ref(), &replies);
        }
        let mut counts = lock(&self.counts);
        *counts.inbound.entry(type_name(m.r#type)).or_default() += 1;
        if let Some(from) = inbound.from {
            counts.senders.insert(from);
        }
        for reply in replies {
            if reply.reject && reply.msg_type() == Some(MessageType::MsgAppResp) {
                counts.rejected_appends += 1;
            }
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

/// A TCP socket bound to `addr` that does not listen yet: connections to
/// it are refused, as to a member that is down, and yet the kernel gives
/// the port neither to an outgoing connection nor to a bind of port 0
/// meanwhile. [`listen`] brings it up. `SO_REUSEADDR` is set, as std's
/// `TcpListener::bind` sets it, so a restart is not refused for the
/// connections still in `TIME_WAIT`.
pub fn reserve(addr: &str) -> io::Result<OwnedFd> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{addr}: {e}"));
    let sa = addr
        .to_socket_addrs()
        .map_err(context)?
        .next()
        .ok_or_else(|| context(io::ErrorKind::AddrNotAvailable.into()))?;
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (domain, len) = match sa {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for
            // any socket address.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (libc::AF_INET, std::mem::size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (libc::AF_INET6, std::mem::size_of::<libc::sockaddr_in6>())
        }
    };
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(context(io::Error::last_os_error()))
        } else {
            Ok(rc)
        }
    };
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at
    // once, so it is closed on every path.
    let fd = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt and bind read the given lengths from live locals.
    unsafe {
        check(libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        check(libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        ))?;
    }
    Ok(fd)
}

/// Starts listening on a socket from [`reserve`].
pub fn listen(socket: OwnedFd) -> io::Result<TcpListener> {
    // SAFETY: listen(2) on a socket we own.
    if unsafe { libc::listen(socket.as_raw_fd(), 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(socket))
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
    let events = Events::new(flags.events);
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
        events,
    });

    let mut receiver_config =
        ReceiverConfig::new(me.id, cluster.cluster_id, actor.clone().recipient())
            .serve_version(true);
    if let Some(dir) = &flags.data_dir {
        let fail_500 = match flags.fail_mode {
            FailMode::Status500 => flags.fail_snapshots,
            FailMode::Cut => 0,
        };
        info!("taking snapshots into {dir:?}");
        receiver_config = receiver_config.snapshots(SnapshotConfig::new().sink(StandInSink::new(
            dir.clone(),
            fail_500,
            events,
        )));
    }
    let requests = Arc::new(SnapshotRequests {
        seen: AtomicU64::new(0),
        cut_first: match flags.fail_mode {
            FailMode::Cut => flags.fail_snapshots,
            FailMode::Status500 => 0,
        },
        events,
    });
    let members = web::Data::new(MembersJson {
        cluster_id: cluster.cluster_id.to_string(),
        body: members_json(&cluster),
    });
    let mut server = HttpServer::new(move || {
        let requests = requests.clone();
        App::new()
            .app_data(members.clone())
            .wrap_fn(move |mut req, srv| {
                let attempt = snapshot_request(&requests, &mut req);
                let started = Instant::now();
                let response = srv.call(req);
                let events = requests.events;
                async move {
                    let response = response.await?;
                    if let Some(attempt) = attempt {
                        let status = response.status().as_u16();
                        events.detail(|| {
                            json!({"event": "snapshot_answer", "attempt": attempt,
                                   "status": status,
                                   "ms": started.elapsed().as_secs_f64() * 1000.0})
                        });
                    }
                    Ok(response)
                }
            })
            .route("/members", web::route().to(serve_members))
            .configure(receiver::configure(receiver_config.clone()))
    })
    .on_connect(|conn, data| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            data.insert(PeerSocket(tcp.as_raw_fd()));
        }
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

/// Numbers a `POST /raft/snapshot`, reports it, and for the first ones
/// with `--fail-mode cut` wraps its body to cut the connection. Returns the
/// request's number; `None` for any other request.
fn snapshot_request(requests: &SnapshotRequests, req: &mut ServiceRequest) -> Option<u64> {
    if req.method() != Method::POST || req.path() != RAFT_SNAPSHOT_PREFIX {
        return None;
    }
    let attempt = requests.seen.fetch_add(1, Ordering::Relaxed) + 1;
    let socket = req.conn_data::<PeerSocket>().copied();
    let cut = match socket {
        Some(socket) if attempt <= requests.cut_first => {
            let payload = req.take_payload();
            req.set_payload(cut_after(payload, socket, CUT_AFTER_BYTES));
            true
        }
        _ => false,
    };
    requests.events.detail(|| {
        json!({"event": "snapshot_request", "attempt": attempt, "cut": cut,
               "remote": req.peer_addr().map(|a| a.to_string())})
    });
    Some(attempt)
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

/// Runs the stand-in with the arguments after the program name, until
/// SIGINT or SIGTERM: what `main` does, callable from a test's child
/// process.
pub fn run(args: Vec<String>) -> io::Result<()> {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let parsed = Flags::parse(args).and_then(|flags| flags.resolve().map(|r| (flags, r)));
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
    // Held down: the ports are bound now, so that no other socket takes
    // them meanwhile, but they listen only once the member comes up.
    let (mut listeners, mut reserved) = (Vec::new(), Vec::new());
    if flags.held_down() {
        for addr in &addrs {
            reserved.push(reserve(addr)?);
        }
    } else {
        listeners = bind(&addrs)?;
    }
    let events = Events::new(flags.events);
    actix_rt::System::new().block_on(async move {
        use actix_rt::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        if !reserved.is_empty() {
            let pid = std::process::id();
            info!(
                "held down: {} refuses connections until {}",
                addrs.join(","),
                match flags.start_delay {
                    Some(delay) => format!("{delay:?} have passed or SIGUSR1 (kill -USR1 {pid})"),
                    None => format!("SIGUSR1 (kill -USR1 {pid})"),
                }
            );
            events.lifecycle(json!({"event": "down", "pid": pid, "addrs": addrs}));
            let delay = async {
                match flags.start_delay {
                    Some(delay) => actix_rt::time::sleep(delay).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                _ = usr1.recv() => info!("SIGUSR1: coming up"),
                _ = delay => info!("start delay over: coming up"),
                _ = actix_rt::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
            }
            listeners = reserved.into_iter().map(listen).collect::<io::Result<_>>()?;
        }
        let running = start_on(&flags, cluster, me, listeners)?;
        events.lifecycle(
            json!({"event": "up", "pid": std::process::id(), "addrs": addrs, "memory": memory()}),
        );
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

fn main() -> io::Result<()> {
    run(std::env::args().skip(1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafthttp_pipeline::raftpb::Snapshot;
    use std::path::Path;

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
        app.index = 2;
        app.log_term = 1;
        app.entries = vec![entry(3, 3), entry(4, 4)];
        assert!(!s.step(&app)[0].reject);

        let out = s.step(&msg(MessageType::MsgTimeoutNow, 4));
        assert_eq!(out.len(), 1);
        let vote = &out[0];
        assert_eq!(vote.msg_type(), Some(MessageType::MsgVote));
        assert_eq!((vote.to, vote.from, vote.term), (ETCD, ME, 5));
        assert_eq!((vote.index, vote.log_term), (4, 4), "last entry");
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

    fn append(index: u64, log_term: u64, entries: &[(u64, u64)], commit: u64) -> Message {
        let mut m = msg(MessageType::MsgApp, 2);
        m.index = index;
        m.log_term = log_term;
        m.commit = commit;
        m.entries = entries.iter().map(|&(i, t)| entry(i, t)).collect();
        m
    }

    fn snapshot(index: u64, term: u64) -> Message {
        let mut snap = msg(MessageType::MsgSnap, term);
        snap.snapshot = Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                index,
                term,
                ..SnapshotMetadata::default()
            },
        };
        snap
    }

    /// `(index, reject, reject_hint)` of the one answer.
    fn answer(s: &mut StandIn, m: &Message) -> (u64, bool, u64) {
        let out = s.step(m);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        (out[0].index, out[0].reject, out[0].reject_hint)
    }

    #[test]
    fn starts_with_the_bootstrap_entries_of_a_new_cluster() {
        let s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc)], true);
        assert_eq!(s.log().last_index(), 3, "one ConfChange per member");
        assert_eq!((s.log().last_term(), s.log().committed()), (1, 3));
        assert_eq!(s.log().term(0), Some(0));
        assert_eq!(s.log().term(4), None);
    }

    #[test]
    fn rejects_an_append_beyond_its_log_with_its_last_index_as_hint() {
        let mut s = standin();
        let gap = append(5, 2, &[(6, 2)], 0);
        assert_eq!(answer(&mut s, &gap), (5, true, 2));
        assert_eq!(s.log().last_index(), 2, "nothing written");
    }

    #[test]
    fn rejects_an_append_whose_previous_term_differs() {
        let mut s = standin();
        assert_eq!(answer(&mut s, &append(2, 1, &[(3, 2)], 0)), (3, false, 0));
        assert_eq!(answer(&mut s, &append(3, 5, &[(4, 5)], 0)), (3, true, 3));
    }

    #[test]
    fn out_of_order_appends_are_rejected_then_accepted_once_they_fit() {
        // etcd's four pipeline connections can deliver MsgApps out of order.
        let mut s = standin();
        let first = append(2, 1, &[(3, 2), (4, 2)], 0);
        let second = append(4, 2, &[(5, 2)], 0);
        assert_eq!(answer(&mut s, &second), (4, true, 2));
        assert_eq!(answer(&mut s, &first), (4, false, 0));
        assert_eq!(
            answer(&mut s, &second),
            (5, false, 0),
            "the leader's resend"
        );
        assert_eq!(
            answer(&mut s, &first),
            (4, false, 0),
            "a stale duplicate matches and changes nothing"
        );
        assert_eq!(s.log().last_index(), 5);
    }

    #[test]
    fn an_append_below_the_commit_is_answered_with_the_commit() {
        let mut s = standin();
        answer(&mut s, &append(2, 1, &[(3, 2), (4, 2), (5, 2)], 4));
        assert_eq!(s.log().committed(), 4);
        assert_eq!(answer(&mut s, &append(3, 2, &[(4, 2)], 4)), (4, false, 0));
    }

    #[test]
    fn a_conflicting_tail_is_replaced() {
        let mut s = standin();
        answer(&mut s, &append(2, 1, &[(3, 2), (4, 2), (5, 2)], 2));
        // A new leader at term 3 overwrites 4 and 5.
        assert_eq!(answer(&mut s, &append(3, 2, &[(4, 3)], 2)), (4, false, 0));
        assert_eq!((s.log().last_index(), s.log().last_term()), (4, 3));
        assert_eq!(s.log().term(3), Some(2));
        // A conflict at or below the commit is refused, not a panic.
        answer(&mut s, &append(4, 3, &[], 4));
        assert_eq!(answer(&mut s, &append(2, 1, &[(3, 9)], 4)), (4, false, 0));
        let mut t = s.clone();
        assert_eq!(t.log.maybe_append(4, 3, 4, &[]), Some(4));
        assert_eq!(t.log.maybe_append(3, 2, 4, &[entry(4, 9)]), None);
    }

    #[test]
    fn a_snapshot_replaces_the_log_and_appends_continue_after_it() {
        let mut s = standin();
        assert_eq!(answer(&mut s, &snapshot(9_950, 2)), (9_950, false, 0));
        assert_eq!((s.log().last_index(), s.log().committed()), (9_950, 9_950));
        // What etcd sends next: the entries after the snapshot.
        let next = append(9_950, 2, &[(9_951, 2), (9_952, 2)], 9_952);
        assert_eq!(answer(&mut s, &next), (9_952, false, 0));
        // An append from before the snapshot: answered with the commit.
        assert_eq!(
            answer(&mut s, &append(3, 1, &[(4, 2)], 0)),
            (9_952, false, 0)
        );
        // A stale snapshot is ignored and answered with the commit.
        assert_eq!(answer(&mut s, &snapshot(100, 2)), (9_952, false, 0));
        assert_eq!(s.log().last_index(), 9_952);
    }

    #[test]
    fn heartbeats_move_the_commit_no_further_than_the_log() {
        let mut s = standin();
        let mut hb = msg(MessageType::MsgHeartbeat, 2);
        hb.commit = 1_000;
        s.step(&hb);
        assert_eq!(s.log().committed(), 2);
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir()
                .join(format!("etcd-peer-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_sink_fails_the_first_transfers_leaving_no_temp_file_then_stores() {
        let dir = Scratch::new("sink");
        let sink = StandInSink::new(&dir.0, 2, Events::new(false));
        for _ in 0..2 {
            let mut w = sink.begin(7).unwrap();
            w.write(b"first batch").unwrap();
            assert_eq!(dir.files().len(), 1, "a temp file with data");
            assert!(w.write(b"second batch").is_err(), "injected");
            drop(w);
            assert!(dir.files().is_empty(), "{:?}", dir.files());
        }
        let mut w = sink.begin(7).unwrap();
        w.write(b"first batch").unwrap();
        w.write(b"second batch").unwrap();
        let path = w.commit().unwrap();
        assert_eq!(path, dir.0.join("0000000000000007.snap.db"));
        assert_eq!(dir.files(), ["0000000000000007.snap.db"]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"first batchsecond batch".to_vec()
        );
        // A writer that fails on commit (a one-batch database) cleans up too.
        let sink = StandInSink::new(&dir.0, 1, Events::new(false));
        let mut w = sink.begin(8).unwrap();
        w.write(b"only batch").unwrap();
        assert!(w.commit().is_err());
        assert_eq!(dir.files(), ["0000000000000007.snap.db"]);
    }

    #[test]
    fn a_reserved_port_refuses_connections_until_it_listens() {
        let socket = reserve("127.0.0.1:0").unwrap();
        // SAFETY: getsockname on a socket we own, into a live local.
        let port = unsafe {
            let mut sin: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::getsockname(
                socket.as_raw_fd(),
                (&mut sin as *mut libc::sockaddr_in).cast(),
                &mut len,
            );
            assert_eq!(rc, 0);
            u16::from_be(sin.sin_port)
        };
        let addr = format!("127.0.0.1:{port}");
        let refused = std::net::TcpStream::connect(&addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let listener = listen(socket).unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), port);
        std::net::TcpStream::connect(&addr).unwrap();
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
    fn flags_for_following_and_failing() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let base = "--initial-cluster a=http://127.0.0.1:1";
        let f = Flags::parse(args(base)).unwrap();
        assert_eq!(
            (f.data_dir.as_deref(), f.held_down(), f.events),
            (None, false, false)
        );
        assert_eq!((f.fail_snapshots, f.fail_mode), (0, FailMode::Status500));

        let f = Flags::parse(args(&format!(
            "{base} --data-dir /tmp/b --down-until-signal --events --fail-snapshots 3 --fail-mode=cut"
        )))
        .unwrap();
        assert_eq!(f.data_dir.as_deref(), Some(Path::new("/tmp/b")));
        assert!(f.down_until_signal && f.held_down() && f.events);
        assert_eq!((f.fail_snapshots, f.fail_mode), (3, FailMode::Cut));
        assert_eq!(FailMode::Cut.name(), "cut");

        let f = Flags::parse(args(&format!("{base} --start-delay 1.5"))).unwrap();
        assert_eq!(f.start_delay, Some(Duration::from_millis(1500)));
        assert!(f.held_down() && !f.down_until_signal);

        for bad in [
            "--fail-snapshots 3",
            "--data-dir /x --fail-snapshots x",
            "--data-dir /x --fail-mode 404",
            "--start-delay 0",
            "--data-dir",
        ] {
            assert!(
                Flags::parse(args(&format!("{base} {bad}"))).is_err(),
                "{bad}"
            );
        }
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
            "{\"in\":{\"MsgApp\":7},\"out\":{\"MsgAppResp\":7,\"Unknown(99)\":1},\"unreachable\":0,\"rejected_appends\":0}"
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

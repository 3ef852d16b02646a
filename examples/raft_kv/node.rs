//! The raft actor: raft-rs's `RawNode`, its Ready loop, and the node's
//! messages (put, get, membership, status). What touches the transport is
//! in `glue.rs`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use protobuf::Message as _;
use raft::prelude::*;
use raft::storage::MemStorage;
use raft::StateRole;
use rafthttp_pipeline::Transport;

use crate::kv::{Kv, KvStorage, Put};

/// How often raft-rs ticks.
const TICK: Duration = Duration::from_millis(50);
/// How long a proposal may take to be applied before the client is told.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Compact the log once this many applied entries are kept...
const COMPACT_AFTER: u64 = 500;
/// ...down to this many.
const KEEP_ENTRIES: u64 = 100;

/// A raft-rs node with its state machine.
pub struct Node {
    pub id: u64,
    pub raw: RawNode<KvStorage>,
    pub kv: Rc<RefCell<Kv>>,
    pub transport: Addr<Transport>,
    pending: HashMap<u64, oneshot::Sender<u64>>,
    next_request: u64,
    pub snapshots_received: u64,
    pub snapshots_sent: u64,
}

/// A new raft-rs node: a member of `voters` from the start, or, with no
/// voters, an empty node that waits to be added and sent a snapshot.
pub fn raw_node(id: u64, voters: &[u64]) -> raft::Result<(RawNode<KvStorage>, Rc<RefCell<Kv>>)> {
    let config = Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        // Below the pipeline's buffer + connections (68), with room for
        // heartbeats: see rafthttp_pipeline::raft_rs's sizing notes.
        max_inflight_msgs: 32,
        max_size_per_msg: 1024 * 1024,
        check_quorum: true,
        pre_vote: true,
        // Commit index on the next append or heartbeat, not in an extra
        // empty append per commit that no in-flight limit counts.
        skip_bcast_commit: true,
        ..Default::default()
    };
    config.validate()?;
    let mem = match voters {
        [] => MemStorage::new(),
        voters => MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), vec![]))),
    };
    let kv = Rc::new(RefCell::new(Kv::default()));
    let storage = KvStorage {
        mem,
        kv: kv.clone(),
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    Ok((RawNode::new(&config, storage, &logger)?, kv))
}

impl Node {
    pub fn new(raw: (RawNode<KvStorage>, Rc<RefCell<Kv>>), transport: Addr<Transport>) -> Self {
        let (raw, kv) = raw;
        Node {
            id: raw.raft.id,
            raw,
            kv,
            transport,
            pending: HashMap::new(),
            next_request: 0,
            snapshots_received: 0,
            snapshots_sent: 0,
        }
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// raft-rs's Ready loop, for a synchronous in-memory log.
    pub fn on_ready(&mut self) {
        if !self.raw.has_ready() {
            return;
        }
        let mut ready = self.raw.ready();
        if ready
            .ss()
            .is_some_and(|ss| ss.raft_state != StateRole::Leader)
        {
            self.pending.clear(); // their clients are told to retry
        }
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            let index = snapshot.get_metadata().index;
            self.kv.borrow_mut().restore(&snapshot.data, index);
            let store = &self.raw.store().mem;
            store
                .wl()
                .apply_snapshot(snapshot)
                .expect("a newer snapshot");
        }
        self.apply(ready.take_committed_entries());
        let store = self.raw.store().mem.clone();
        store
            .wl()
            .append(ready.entries())
            .expect("appendable entries");
        if let Some(hs) = ready.hs() {
            store.wl().set_hardstate(hs.clone());
        }
        self.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            store.wl().mut_hard_state().set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        self.compact();
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.kv.borrow_mut().applied = entry.index;
            match entry.get_entry_type() {
                EntryType::EntryNormal => self.apply_put(&entry),
                EntryType::EntryConfChange => self.apply_conf_change(&entry),
                EntryType::EntryConfChangeV2 => {}
            }
        }
    }

    fn apply_put(&mut self, entry: &Entry) {
        // Empty entries are a new leader's no-op.
        let Some(put) = Put::decode(&entry.data) else {
            return;
        };
        self.kv.borrow_mut().map.insert(put.key, put.value);
        self.complete(put.origin, put.request, entry.index);
    }

    fn apply_conf_change(&mut self, entry: &Entry) {
        let cc = ConfChange::parse_from_bytes(&entry.data).expect("a conf change");
        let conf_state = self
            .raw
            .apply_conf_change(&cc)
            .expect("a valid conf change");
        self.raw.store().mem.wl().set_conf_state(conf_state);
        self.membership_applied(&cc, &entry.context);
        if let Some(put) = Put::decode(&cc.context) {
            self.complete(put.origin, put.request, entry.index);
        }
    }

    fn complete(&mut self, origin: u64, request: u64, index: u64) {
        if origin == self.id {
            if let Some(client) = self.pending.remove(&request) {
                let _ = client.send(index);
            }
        }
    }

    fn compact(&mut self) {
        let applied = self.kv.borrow().applied;
        let store = &self.raw.store().mem;
        let first = store.first_index().unwrap_or(1);
        if applied > first + COMPACT_AFTER {
            store
                .wl()
                .compact(applied - KEEP_ENTRIES)
                .expect("compactable");
        }
    }

    /// Registers a client waiting for its proposal to be applied here.
    fn wait_applied(&mut self) -> (u64, ResponseFuture<Result<u64, NotApplied>>) {
        self.next_request += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.insert(self.next_request, tx);
        let wait = async move {
            match actix_web::rt::time::timeout(PROPOSE_TIMEOUT, rx).await {
                Ok(Ok(index)) => Ok(index),
                _ => Err(NotApplied::Retry),
            }
        };
        (self.next_request, Box::pin(wait))
    }

    fn not_leader(&self) -> ResponseFuture<Result<u64, NotApplied>> {
        let leader = self.raw.raft.leader_id;
        Box::pin(async move { Err(NotApplied::NotLeader(leader)) })
    }
}

impl Actor for Node {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |node, _| {
            node.raw.tick();
            node.on_ready();
        });
    }
}

/// Why a proposal was not applied.
#[derive(Debug, Clone, PartialEq)]
pub enum NotApplied {
    /// Ask that node (0: no leader known).
    NotLeader(u64),
    /// Leadership changed or it took too long: try again.
    Retry,
}

/// Put `key = value`; resolves with its raft index once applied here.
#[derive(Message)]
#[rtype(result = "Result<u64, NotApplied>")]
pub struct Propose {
    pub key: String,
    pub value: String,
}

impl Handler<Propose> for Node {
    type Result = ResponseFuture<Result<u64, NotApplied>>;

    fn handle(&mut self, p: Propose, _: &mut Context<Self>) -> Self::Result {
        if !self.is_leader() {
            return self.not_leader();
        }
        let (request, wait) = self.wait_applied();
        let put = Put {
            origin: self.id,
            request,
            key: p.key,
            value: p.value,
        };
        if self.raw.propose(vec![], put.encode()).is_err() {
            self.pending.remove(&request);
            return Box::pin(async { Err(NotApplied::Retry) });
        }
        self.on_ready();
        wait
    }
}

/// Add member `id` reachable at `url`, or remove it (`url: None`).
#[derive(Message)]
#[rtype(result = "Result<u64, NotApplied>")]
pub struct ChangeMember {
    pub id: u64,
    pub url: Option<String>,
}

impl Handler<ChangeMember> for Node {
    type Result = ResponseFuture<Result<u64, NotApplied>>;

    fn handle(&mut self, change: ChangeMember, _: &mut Context<Self>) -> Self::Result {
        if !self.is_leader() {
            return self.not_leader();
        }
        let (request, wait) = self.wait_applied();
        let origin = Put {
            origin: self.id,
            request,
            key: String::new(),
            value: String::new(),
        };
        let change_type = match change.url {
            Some(_) => ConfChangeType::AddNode,
            None => ConfChangeType::RemoveNode,
        };
        let cc = ConfChange {
            change_type,
            node_id: change.id,
            context: origin.encode().into(),
            ..Default::default()
        };
        // The URL travels as the entry's context, a raft-rs-only field.
        let url = change.url.unwrap_or_default().into_bytes();
        if self.raw.propose_conf_change(url, cc).is_err() {
            self.pending.remove(&request);
            return Box::pin(async { Err(NotApplied::Retry) });
        }
        self.on_ready();
        wait
    }
}

/// Read one key.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct Get(pub String);

impl Handler<Get> for Node {
    type Result = Option<String>;

    fn handle(&mut self, Get(key): Get, _: &mut Context<Self>) -> Option<String> {
        self.kv.borrow().map.get(&key).cloned()
    }
}

/// The whole map.
#[derive(Message)]
#[rtype(result = "BTreeMap<String, String>")]
pub struct Dump;

impl Handler<Dump> for Node {
    type Result = MessageResult<Dump>;

    fn handle(&mut self, _: Dump, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.kv.borrow().map.clone())
    }
}

/// What the node knows of itself and the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub keys: usize,
    pub snapshots_received: u64,
    pub snapshots_sent: u64,
}

/// Ask for the node's [`Status`].
#[derive(Message)]
#[rtype(result = "Status")]
pub struct GetStatus;

impl Handler<GetStatus> for Node {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let kv = self.kv.borrow();
        MessageResult(Status {
            id: self.id,
            leader: self.raw.raft.leader_id,
            term: self.raw.raft.term,
            commit: self.raw.raft.raft_log.committed,
            applied: kv.applied,
            keys: kv.map.len(),
            snapshots_received: self.snapshots_received,
            snapshots_sent: self.snapshots_sent,
        })
    }
}

//! `PipelineActor`: etcd's pipeline to one remote peer
//! (`rafthttp/pipeline.go`), as an actor.
//!
//! It owns all per-peer state: the queue and its dispatch policy, the URL
//! picker, the peer status and the counters. It encodes each message once,
//! gives it to an idle [`SenderActor`] round-robin, and turns each outcome
//! into raft callbacks. Only it talks to the user's recipients, so every
//! outcome passes through one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::http::Uri;
use bytes::Bytes;
use futures::channel::oneshot;

use crate::body::Body;
use crate::config::{PipelineConfig, SenderPlacement};
use crate::dispatch::{Dispatch, Lane};
use crate::error::Error;
use crate::id::Id;
use crate::messages::*;
use crate::peer_status::{FailureType, PeerStatus, PIPELINE_WRITE, SNAPSHOT_POST};
use crate::picker::UrlPicker;
use crate::raftpb::{Message as RaftMessage, MessageType};
use crate::sender::{Post, PostSnapshot, SenderActor, SenderSettings, StopSender};
use crate::snapshot::{frame_head, SnapshotBody};
use crate::stats::PipelineStats;
use crate::wire::{
    request_uri, RequestHeaders, CONTENT_TYPE_OCTET_STREAM, CONTENT_TYPE_PROTOBUF, RAFT_PREFIX,
    RAFT_SNAPSHOT_PREFIX,
};

/// How often a full buffer is logged at most; the drops in between are
/// counted into the next line (etcd merges them with `MergeWarningf`).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Where the pipeline sends its raft callbacks and notifications.
#[derive(Clone)]
pub struct Recipients {
    unreachable: Recipient<ReportUnreachable>,
    snapshot: Recipient<ReportSnapshot>,
    peer_status: Option<Recipient<PeerStatusChanged>>,
    critical_errors: Option<Recipient<CriticalError>>,
}

impl Recipients {
    /// The two raft callbacks every pipeline needs (etcd's
    /// `Raft.ReportUnreachable` and `Raft.ReportSnapshot`).
    pub fn new(
        unreachable: Recipient<ReportUnreachable>,
        snapshot: Recipient<ReportSnapshot>,
    ) -> Self {
        Recipients {
            unreachable,
            snapshot,
            peer_status: None,
            critical_errors: None,
        }
    }

    /// Both raft callbacks to one actor, usually the user's raft actor.
    pub fn from_addr<A>(addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<ReportUnreachable> + Handler<ReportSnapshot>,
        A::Context: actix::dev::ToEnvelope<A, ReportUnreachable>
            + actix::dev::ToEnvelope<A, ReportSnapshot>,
    {
        Recipients::new(addr.clone().recipient(), addr.clone().recipient())
    }

    /// Also send [`PeerStatusChanged`] on every transition.
    pub fn peer_status(mut self, recipient: Recipient<PeerStatusChanged>) -> Self {
        self.peer_status = Some(recipient);
        self
    }

    /// Also send [`CriticalError`]s (etcd's `Transport.ErrorC`).
    pub fn critical_errors(mut self, recipient: Recipient<CriticalError>) -> Self {
        self.critical_errors = Some(recipient);
        self
    }
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipients")
            .field("peer_status", &self.peer_status.is_some())
            .field("critical_errors", &self.critical_errors.is_some())
            .finish()
    }
}

/// What travels: an encoded message, or a framed snapshot with its
/// database stream. Either is taken when a sender picks it up, so the
/// body moves to the sender rather than being shared with it.
enum Payload {
    Message(Option<Body>),
    Snapshot {
        head: Bytes,
        body: Option<SnapshotBody>,
        size: u64,
    },
}

/// A message on its way: encoded once, then only shared.
struct Outgoing {
    to: Id,
    message_type: i32,
    /// Bytes on the wire (etcd's `sentBytes`: `m.Size()`, or `TotalSize`
    /// for a streamed snapshot).
    wire_len: u64,
    payload: Payload,
    started: Option<Instant>,
    target: (u64, usize),
}

impl Outgoing {
    fn new(message: &RaftMessage) -> Self {
        Outgoing::with_payload(message, Payload::Message(Some(Body::encode(message))))
    }

    /// A message that will be refused: not worth encoding.
    fn refused(message: &RaftMessage) -> Self {
        Outgoing::with_payload(message, Payload::Message(None))
    }

    fn snapshot(message: &RaftMessage, body: SnapshotBody, size: u64) -> Self {
        let payload = Payload::Snapshot {
            head: frame_head(message),
            body: Some(body),
            size,
        };
        Outgoing::with_payload(message, payload)
    }

    fn with_payload(message: &RaftMessage, payload: Payload) -> Self {
        let wire_len = match &payload {
            Payload::Message(body) => body.as_ref().map_or(0, Body::len) as u64,
            Payload::Snapshot { head, size, .. } => head.len() as u64 + size,
        };
        Outgoing {
            to: Id(message.to),
            message_type: message.r#type,
            wire_len,
            payload,
            started: None,
            target: (0, 0),
        }
    }

    fn is_append(&self) -> bool {
        self.message_type == MessageType::MsgApp as i32
    }

    /// Where a failure counts in the peer status (etcd's `failureType`).
    fn failure_type(&self) -> FailureType {
        match self.payload {
            Payload::Message(_) => PIPELINE_WRITE,
            Payload::Snapshot { .. } => SNAPSHOT_POST,
        }
    }
}

impl Lane for Outgoing {
    fn is_snapshot(&self) -> bool {
        self.message_type == MessageType::MsgSnap as i32
    }
}

/// A peer URL with etcd's two paths.
#[derive(Debug, Clone)]
struct PeerUris {
    raft: Uri,
    snapshot: Uri,
}

/// etcd's pipeline to one remote peer, as an actor. See the
/// [module docs](self) and the crate docs.
pub struct PipelineActor {
    config: PipelineConfig,
    recipients: Recipients,
    picker: UrlPicker,
    uris: Vec<PeerUris>,
    generation: u64,
    status: PeerStatus,
    dispatch: Dispatch<Outgoing>,
    senders: Vec<Addr<SenderActor>>,
    gone: Vec<oneshot::Receiver<()>>,
    stats: PipelineStats,
    stopping: bool,
    last_drop_log: Option<Instant>,
    drops_unlogged: u64,
}

impl std::fmt::Debug for PipelineActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineActor")
            .field("local", &self.config.local_id)
            .field("peer", &self.config.peer_id)
            .field("stats", &self.stats)
            .finish()
    }
}

impl PipelineActor {
    /// Validates `config` and starts the pipeline on the current arbiter,
    /// with its senders where `config.placement` says.
    pub fn start(config: PipelineConfig, recipients: Recipients) -> Result<Addr<Self>, Error> {
        config.validate()?;
        let picker = UrlPicker::new(&config.peer_urls)?;
        let uris = raft_uris(&picker)?;
        let settings = SenderSettings {
            peer: config.peer_id,
            headers: Arc::new(RequestHeaders::new(&config, CONTENT_TYPE_PROTOBUF)?),
            snapshot_headers: Arc::new(RequestHeaders::new(&config, CONTENT_TYPE_OCTET_STREAM)?),
            dial_timeout: config.dial_timeout,
        };
        let (senders, gone) = start_senders(&config, &settings);
        log::info!(
            "started HTTP pipelining with peer {} (local {})",
            config.peer_id,
            config.local_id
        );
        let actor = PipelineActor {
            status: PeerStatus::new(config.peer_id),
            dispatch: Dispatch::new(config.connections, config.buffer),
            config,
            recipients,
            picker,
            uris,
            generation: 0,
            senders,
            gone,
            stats: PipelineStats::default(),
            stopping: false,
            last_drop_log: None,
            drops_unlogged: 0,
        };
        Ok(Actor::start(actor))
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        while let Some(sender) = self.dispatch.assign() {
            let target = (self.generation, self.picker.picked_index());
            let uris = &self.uris[target.1];
            let Some(item) = self.dispatch.slot_mut(sender) else {
                continue;
            };
            item.started = Some(Instant::now());
            item.target = target;
            let timeout = self.config.response_timeout_for(item.wire_len as usize);
            match &mut item.payload {
                Payload::Message(body) => {
                    // Taken once: a slot's message is dispatched once.
                    let Some(body) = body.take() else { continue };
                    let post = Post {
                        uri: uris.raft.clone(),
                        body,
                        timeout,
                    };
                    self.spawn_post(sender, post, ctx);
                }
                Payload::Snapshot { head, body, size } => {
                    // Taken once: a slot's message is dispatched once.
                    let Some(body) = body.take() else { continue };
                    let post = PostSnapshot {
                        uri: uris.snapshot.clone(),
                        head: head.clone(),
                        body,
                        size: *size,
                        stall_timeout: self.config.snapshot_stall_timeout,
                    };
                    self.spawn_post(sender, post, ctx);
                }
            }
        }
    }

    /// Hands `post` to `sender` and turns its answer into an outcome. A
    /// sender that stops before answering fails the message.
    fn spawn_post<M>(&mut self, sender: usize, post: M, ctx: &mut Context<Self>)
    where
        M: actix::Message<Result = Result<(), Error>> + Send + 'static,
        SenderActor: Handler<M>,
    {
        let outcome =
            self.senders[sender]
                .send(post)
                .into_actor(self)
                .map(move |result, act, ctx| {
                    let result = result.unwrap_or(Err(Error::SenderStopped));
                    act.on_outcome(sender, result, ctx);
                });
        ctx.spawn(outcome);
    }

    fn on_outcome(&mut self, sender: usize, result: Result<(), Error>, ctx: &mut Context<Self>) {
        // `None`: the message was already reported (cancelled by a stop).
        if let Some(item) = self.dispatch.finish(sender) {
            match result {
                Ok(()) => self.on_delivered(item),
                Err(err) => self.on_failed(item, err),
            }
        }
        self.pump(ctx);
    }

    fn on_delivered(&mut self, item: Outgoing) {
        self.stats.delivered += 1;
        self.stats.sent_bytes += item.wire_len;
        if let Some(change) = self.status.activate() {
            self.notify_status(change);
        }
        if item.is_append() {
            let elapsed = item.started.map(|s| s.elapsed()).unwrap_or_default();
            self.stats.follower.succ(elapsed);
        }
        if item.is_snapshot() {
            self.recipients.snapshot.do_send(ReportSnapshot {
                to: item.to,
                status: SnapshotStatus::Finish,
            });
        }
    }

    fn on_failed(&mut self, item: Outgoing, err: Error) {
        self.stats.failed += 1;
        if item.target.0 == self.generation {
            if let Some(url) = self.picker.urls().get(item.target.1).cloned() {
                self.picker.unreachable(&url);
            }
        }
        if let Some(change) = self
            .status
            .deactivate(item.failure_type(), &err.to_string())
        {
            self.notify_status(change);
        }
        if item.is_append() {
            self.stats.follower.fail();
        }
        if err.is_member_removed() {
            self.report_critical(err.clone());
        }
        self.report_undelivered(&item, err);
    }

    fn report_undelivered(&self, item: &Outgoing, reason: Error) {
        self.recipients.unreachable.do_send(ReportUnreachable {
            to: item.to,
            message_type: item.message_type,
            reason,
        });
        if item.is_snapshot() {
            self.recipients.snapshot.do_send(ReportSnapshot {
                to: item.to,
                status: SnapshotStatus::Failure,
            });
        }
    }

    fn report_critical(&self, error: Error) {
        if let Some(recipient) = &self.recipients.critical_errors {
            recipient.do_send(CriticalError {
                peer: self.config.peer_id,
                error,
            });
        }
    }

    fn notify_status(&self, change: PeerStatusChanged) {
        if let Some(recipient) = &self.recipients.peer_status {
            recipient.do_send(change);
        }
    }

    /// Queues `item`, or drops and reports it when stopping or full.
    fn accept(&mut self, item: Outgoing, ctx: &mut Context<Self>) -> Result<(), Dropped> {
        self.stats.accepted += 1;
        if self.stopping {
            return Err(self.drop_message(&item, Error::Stopped));
        }
        if let Err(item) = self.dispatch.offer(item) {
            return Err(self.drop_message(&item, Error::BufferFull));
        }
        self.pump(ctx);
        Ok(())
    }

    fn drop_message(&mut self, item: &Outgoing, reason: Error) -> Dropped {
        if reason == Error::BufferFull {
            self.stats.dropped += 1;
            self.log_drop(item);
        } else {
            self.stats.cancelled += 1;
        }
        self.refuse(item, reason)
    }

    /// Reports `item` as not delivered and says why to the caller.
    fn refuse(&self, item: &Outgoing, reason: Error) -> Dropped {
        self.report_undelivered(item, reason.clone());
        Dropped {
            to: item.to,
            message_type: item.message_type,
            reason,
        }
    }

    /// Logs a drop as etcd does, but like etcd's `MergeWarningf` at most
    /// once per [`DROP_LOG_INTERVAL`], with the count of drops merged.
    fn log_drop(&mut self, item: &Outgoing) {
        if self.status.is_active() {
            self.drops_unlogged += 1;
            let due = self
                .last_drop_log
                .is_none_or(|at| at.elapsed() >= DROP_LOG_INTERVAL);
            if due {
                log::warn!(
                    "dropped internal raft message to {} since pipeline's sending buffer is full (bad/overloaded network) [merged {} repeated]",
                    item.to,
                    self.drops_unlogged
                );
                self.last_drop_log = Some(Instant::now());
                self.drops_unlogged = 0;
            }
        } else {
            log::debug!(
                "dropped {} to {} since pipeline's sending buffer is full",
                item.message_type,
                item.to
            );
        }
    }

    fn cancel_all(&mut self) {
        let mut cancelled = self.dispatch.drain_queue();
        cancelled.extend((0..self.config.connections).filter_map(|s| self.dispatch.finish(s)));
        for item in &cancelled {
            self.stats.cancelled += 1;
            self.report_undelivered(item, Error::Stopped);
        }
    }

    fn current_stats(&self) -> PipelineStats {
        PipelineStats {
            queued: self.dispatch.queued() as u64,
            in_flight: self.dispatch.in_flight() as u64,
            ..self.stats.clone()
        }
    }
}

fn raft_uris(picker: &UrlPicker) -> Result<Vec<PeerUris>, Error> {
    let uris = |u: &String| {
        Ok(PeerUris {
            raft: request_uri(u, RAFT_PREFIX)?,
            snapshot: request_uri(u, RAFT_SNAPSHOT_PREFIX)?,
        })
    };
    picker.urls().iter().map(uris).collect()
}

fn start_senders(
    config: &PipelineConfig,
    settings: &SenderSettings,
) -> (Vec<Addr<SenderActor>>, Vec<oneshot::Receiver<()>>) {
    let arbiters = match &config.placement {
        SenderPlacement::SharedPool => crate::pool::shared_pool(),
        SenderPlacement::Current => Vec::new(),
        SenderPlacement::Arbiters(handles) => handles.clone(),
    };
    // Spread pipelines over the pool: start at a different arbiter per peer.
    let offset = config.peer_id.0 as usize;
    (0..config.connections)
        .map(|index| {
            let (gone_tx, gone_rx) = oneshot::channel();
            let settings = settings.clone();
            let make =
                move |_: &mut Context<SenderActor>| SenderActor::new(index, settings, gone_tx);
            let addr = match arbiters.len() {
                0 => Supervisor::start(make),
                n => Supervisor::start_in_arbiter(&arbiters[(offset + index) % n], make),
            };
            (addr, gone_rx)
        })
        .unzip()
}

impl Actor for PipelineActor {
    type Context = Context<Self>;
}

impl Handler<Envelope> for PipelineActor {
    type Result = Result<(), Dropped>;

    fn handle(&mut self, Envelope(message): Envelope, ctx: &mut Context<Self>) -> Self::Result {
        // Under overload most offers are refused: spare them the encoding.
        let item = match self.stopping || self.dispatch.is_full() {
            true => Outgoing::refused(&message),
            false => Outgoing::new(&message),
        };
        self.accept(item, ctx)
    }
}

impl Handler<SendSnapshot> for PipelineActor {
    type Result = Result<(), Dropped>;

    fn handle(&mut self, snapshot: SendSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        let SendSnapshot {
            message,
            body,
            size,
        } = snapshot;
        let item = Outgoing::snapshot(&message, body, size);
        if !item.is_snapshot() {
            self.stats.accepted += 1;
            self.stats.failed += 1;
            return Err(self.refuse(&item, Error::WrongMessageType));
        }
        self.accept(item, ctx)
    }
}

impl Handler<Stop> for PipelineActor {
    type Result = ResponseActFuture<Self, PipelineStats>;

    fn handle(&mut self, _: Stop, _ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        self.cancel_all();
        for sender in self.senders.drain(..) {
            sender.do_send(StopSender);
        }
        let gone = std::mem::take(&mut self.gone);
        let peer = self.config.peer_id;
        let all_stopped = futures::future::join_all(gone);
        Box::pin(all_stopped.into_actor(self).map(move |_, act, _| {
            log::info!("stopped HTTP pipelining with peer {peer}");
            act.current_stats()
        }))
    }
}

impl Handler<GetStats> for PipelineActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.current_stats())
    }
}

impl Handler<UpdateUrls> for PipelineActor {
    type Result = Result<(), Error>;

    fn handle(&mut self, UpdateUrls(urls): UpdateUrls, _ctx: &mut Context<Self>) -> Self::Result {
        let mut picker = UrlPicker::new(&urls)?;
        let uris = raft_uris(&picker)?;
        std::mem::swap(&mut self.picker, &mut picker);
        self.uris = uris;
        self.generation += 1;
        Ok(())
    }
}

impl Handler<ResetConnections> for PipelineActor {
    type Result = ();

    fn handle(&mut self, _: ResetConnections, _ctx: &mut Context<Self>) {
        for sender in &self.senders {
            sender.do_send(StopSender);
        }
    }
}

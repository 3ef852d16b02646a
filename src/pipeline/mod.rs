//! `PipelineActor`: etcd's pipeline to one remote peer
//! (`rafthttp/pipeline.go`), as an actor.
//!
//! The actor is the shell around the per-peer core (`PeerCore`, in the
//! crate's pure `peer` module), which owns the queue and its dispatch
//! policy, the URL picker, the peer status and the counters, and decides
//! everything. The actor forwards events to it (an envelope, a sender's
//! outcome, a stop, new URLs, a timer) and carries its decisions out: it
//! encodes each accepted message once, hands it to the [`SenderActor`] the
//! core chose, and sends each report to the user's recipients. Only it
//! talks to those recipients, so every outcome passes through one place.

mod payload;
mod recipients;
mod senders;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use futures::channel::oneshot;

use crate::config::PipelineConfig;
use crate::error::Error;
use crate::messages::*;
use crate::peer::{Offer, PeerCore, Slot, Transmit};
use crate::picker::UrlPicker;
use crate::sender::{Post, PostSnapshot, SenderActor, SenderSettings, StopSender};
use crate::stats::PipelineStats;
use crate::wire::{RequestHeaders, CONTENT_TYPE_OCTET_STREAM, CONTENT_TYPE_PROTOBUF};

use payload::{peer_uris, Payload, PeerUris};
pub use recipients::Recipients;
use senders::start_senders;

/// etcd's pipeline to one remote peer (`rafthttp/pipeline.go`), as an
/// actor: a bounded queue drained by `connections` supervised
/// [`SenderActor`]s, every outcome reported to raft. Start it with
/// [`PipelineActor::start`] and send it [`Envelope`](crate::Envelope)s; the
/// crate docs describe backpressure, stop and timeouts.
pub struct PipelineActor {
    config: PipelineConfig,
    recipients: Recipients,
    core: PeerCore<Payload>,
    /// The request URIs of the core's picker's URLs, in the same order.
    uris: Vec<PeerUris>,
    senders: Vec<Addr<SenderActor>>,
    gone: Vec<oneshot::Receiver<()>>,
    /// The timer the core asked for, while it is set.
    tick: Option<SpawnHandle>,
}

impl std::fmt::Debug for PipelineActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineActor")
            .field("local", &self.config.local.id)
            .field("peer", &self.config.peer_id)
            .field("stats", &self.core.stats())
            .finish()
    }
}

impl PipelineActor {
    /// Validates `config` and starts the pipeline on the current arbiter,
    /// with its senders where `config.placement` says.
    pub fn start(config: PipelineConfig, recipients: Recipients) -> Result<Addr<Self>, Error> {
        config.validate()?;
        let picker = UrlPicker::new(&config.peer_urls)?;
        let uris = peer_uris(picker.urls())?;
        let settings = SenderSettings {
            peer: config.peer_id,
            headers: Arc::new(RequestHeaders::new(&config, CONTENT_TYPE_PROTOBUF)?),
            snapshot_headers: Arc::new(RequestHeaders::new(&config, CONTENT_TYPE_OCTET_STREAM)?),
            dial_timeout: config.dial_timeout,
            tls: config.client_tls(),
        };
        let (senders, gone) = start_senders(&config, &settings);
        log::info!(
            "started HTTP pipelining with peer {} (local {})",
            config.peer_id,
            config.local.id
        );
        let core = PeerCore::new(config.peer_id, config.connections, config.buffer, picker);
        let actor = PipelineActor {
            config,
            recipients,
            core,
            uris,
            senders,
            gone,
            tick: None,
        };
        Ok(Actor::start(actor))
    }

    /// Carries out what the core decided: reports to their recipients,
    /// messages to their senders, and the timer it needs.
    fn drive(&mut self, now: Instant, ctx: &mut Context<Self>) {
        while let Some(report) = self.core.poll_report() {
            self.recipients.deliver(self.config.peer_id, report);
        }
        while let Some(transmit) = self.core.poll_transmit(now) {
            self.transmit(transmit, ctx);
        }
        self.set_timer(ctx);
    }

    fn transmit(&mut self, transmit: Transmit<Payload>, ctx: &mut Context<Self>) {
        let Transmit {
            slot,
            url,
            wire_len,
            payload,
        } = transmit;
        let uris = &self.uris[url];
        match payload {
            Payload::Message(body) => {
                let post = Post {
                    uri: uris.raft.clone(),
                    body,
                    timeout: self.config.response_timeout_for(wire_len as usize),
                };
                self.spawn_post(slot, post, ctx);
            }
            Payload::Snapshot { head, body, size } => {
                let post = PostSnapshot {
                    uri: uris.snapshot.clone(),
                    head,
                    body,
                    size,
                    stall_timeout: self.config.snapshot_stall_timeout,
                };
                self.spawn_post(slot, post, ctx);
            }
        }
    }

    /// Hands `post` to the sender of `slot` and gives its answer to the
    /// core. A sender that stops before answering fails the message.
    fn spawn_post<M>(&mut self, slot: Slot, post: M, ctx: &mut Context<Self>)
    where
        M: actix::Message<Result = Result<(), Error>> + Send + 'static,
        SenderActor: Handler<M>,
    {
        let outcome =
            self.senders[slot.sender]
                .send(post)
                .into_actor(self)
                .map(move |result, act, ctx| {
                    let result = result.unwrap_or(Err(Error::SenderStopped));
                    let now = Instant::now();
                    act.core
                        .handle_outcome(slot, result, now, SystemTime::now());
                    act.drive(now, ctx);
                });
        ctx.spawn(outcome);
    }

    /// Sets the timer the core asks for, unless one is set: it fires no
    /// later than needed, and when it fires it is set again if still
    /// needed.
    fn set_timer(&mut self, ctx: &mut Context<Self>) {
        if self.tick.is_some() {
            return;
        }
        let Some(at) = self.core.poll_timeout() else {
            return;
        };
        let delay = at.saturating_duration_since(Instant::now());
        let tick = ctx.run_later(delay, |act, ctx| {
            act.tick = None;
            let now = Instant::now();
            act.core.handle_tick(now);
            act.drive(now, ctx);
        });
        self.tick = Some(tick);
    }

    /// Offers a message to the core, `payload` made only when it is
    /// accepted, and carries out what follows.
    fn offer(
        &mut self,
        offer: Offer,
        payload: impl FnOnce() -> Payload,
        ctx: &mut Context<Self>,
    ) -> Result<(), Dropped> {
        let now = Instant::now();
        let result = self.core.handle_offer(offer, payload, now);
        self.drive(now, ctx);
        result
    }
}

impl Actor for PipelineActor {
    type Context = Context<Self>;
}

impl Handler<Envelope> for PipelineActor {
    type Result = Result<(), Dropped>;

    fn handle(&mut self, Envelope(message): Envelope, ctx: &mut Context<Self>) -> Self::Result {
        self.offer(Offer::message(&message), || Payload::message(&message), ctx)
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
        let payload = || Payload::snapshot(&message, body, size);
        self.offer(Offer::snapshot(&message), payload, ctx)
    }
}

impl Handler<Stop> for PipelineActor {
    type Result = ResponseActFuture<Self, PipelineStats>;

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        self.core.handle_stop(now);
        self.drive(now, ctx);
        for sender in self.senders.drain(..) {
            sender.do_send(StopSender);
        }
        let gone = std::mem::take(&mut self.gone);
        let peer = self.config.peer_id;
        let all_stopped = futures::future::join_all(gone);
        Box::pin(all_stopped.into_actor(self).map(move |_, act, _| {
            log::info!("stopped HTTP pipelining with peer {peer}");
            act.core.stats()
        }))
    }
}

impl Handler<GetStats> for PipelineActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.stats())
    }
}

impl Handler<UpdateUrls> for PipelineActor {
    type Result = Result<(), Error>;

    fn handle(&mut self, UpdateUrls(urls): UpdateUrls, _ctx: &mut Context<Self>) -> Self::Result {
        let picker = UrlPicker::new(&urls)?;
        let uris = peer_uris(picker.urls())?;
        self.core.handle_urls(picker);
        self.uris = uris;
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

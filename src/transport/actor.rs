//! `Transport`: one member's pipelines, one per peer, behind one address
//! (etcd's `rafthttp.Transport`, `rafthttp/transport.go`).

use std::collections::HashMap;
use std::time::SystemTime;

use actix::prelude::*;
use futures::future::{join_all, FutureExt};

use super::config::TransportConfig;
use super::error::{member_not_found, PeerError};
use super::messages::*;
use super::peers::{stop_all, stop_peer, stop_pipeline, PeerPipeline};
use super::probing::Probing;
use super::refusal::refuse;
use super::status_tap::{StatusTap, TappedStatus};
use crate::error::Error;
use crate::id::Id;
use crate::messages::{Dropped, Envelope, GetStats, PeerStatusChanged, SendSnapshot, UpdateUrls};
use crate::peer_url::PeerUrl;
use crate::pipeline::PipelineActor;
use crate::pipeline::Recipients;
use crate::prober::{GetHealth, PeerHealth};
use crate::raftpb::Message as RaftMessage;
use crate::stats::PipelineStats;
use crate::stream::{PeerStreams, StreamPeer};

/// A member's transport: one [`PipelineActor`] per peer, messages routed
/// by `to`. See the [module docs](super).
pub struct Transport {
    config: TransportConfig,
    recipients: Recipients,
    peers: HashMap<Id, PeerPipeline>,
    remotes: HashMap<Id, PeerPipeline>,
    generations: u64,
    stopped: bool,
    probing: Probing,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut peers: Vec<Id> = self.peers.keys().copied().collect();
        peers.sort();
        f.debug_struct("Transport")
            .field("local", &self.config.local_id())
            .field("peers", &peers)
            .field("remotes", &self.remotes.len())
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl Transport {
    /// A transport with no peers yet; start it with [`Actor::start`] or
    /// [`Transport::start`].
    pub fn new(config: TransportConfig, recipients: Recipients) -> Self {
        let probing = Probing::new(
            config.prober.clone(),
            config.pipeline.metrics.clone(),
            config.pipeline.client_tls(),
        );
        Transport {
            config,
            recipients,
            probing,
            peers: HashMap::new(),
            remotes: HashMap::new(),
            generations: 0,
            stopped: false,
        }
    }

    /// Starts a transport on the current arbiter; the pipelines it starts
    /// run there too.
    pub fn start(config: TransportConfig, recipients: Recipients) -> Addr<Self> {
        Actor::start(Transport::new(config, recipients))
    }

    /// Starts a transport whose recipients need its address first: `wire`
    /// gets the address before the transport runs (start the raft actor
    /// there) and returns the recipients and anything the caller wants
    /// back. This breaks the cycle "raft needs the transport, the
    /// transport reports to raft" without `Actor::create` in user code.
    pub fn start_with<T>(
        config: TransportConfig,
        wire: impl FnOnce(Addr<Self>) -> (Recipients, T),
    ) -> (Addr<Self>, T) {
        let ctx = Context::new();
        let addr = ctx.address();
        let (recipients, wired) = wire(addr.clone());
        ctx.run(Transport::new(config, recipients));
        (addr, wired)
    }

    fn start_pipeline(
        &mut self,
        id: Id,
        urls: Vec<String>,
        ctx: &mut Context<Self>,
    ) -> Result<PeerPipeline, PeerError> {
        if id == self.config.local_id() {
            return Err(PeerError::LocalMember(id));
        }
        self.generations += 1;
        let generation = self.generations;
        let tap = StatusTap::start(generation, ctx.address().downgrade());
        let recipients = self.recipients.with_status_tap(tap.clone().recipient());
        let pipeline = PipelineActor::start(self.config.peer_config(id, urls), recipients)?;
        Ok(PeerPipeline {
            pipeline,
            generation,
            active_since: None,
            streams: None,
            status: tap.recipient(),
        })
    }

    /// A peer's streams, when streams are on and raft takes inbound
    /// messages.
    fn start_streams(
        &self,
        id: Id,
        urls: &[String],
        status: Recipient<PeerStatusChanged>,
    ) -> Option<PeerStreams> {
        let table = self.config.streams.as_ref()?;
        let inbound = self.recipients.inbound.clone()?;
        Some(PeerStreams::start(StreamPeer {
            local: &self.config.pipeline.local,
            peer: id,
            urls,
            table,
            inbound,
            unreachable: self.recipients.unreachable.clone(),
            status,
            critical_errors: self.recipients.critical_errors.clone(),
            tls: self.config.pipeline.client_tls(),
            busy_poll: self.config.busy_poll,
        }))
    }

    /// The pipeline a message to `to` takes: the peer's, else the remote's.
    fn route(&self, to: Id) -> Option<&Addr<PipelineActor>> {
        let entry = self.peers.get(&to).or_else(|| self.remotes.get(&to))?;
        Some(&entry.pipeline)
    }

    fn send_one(&self, message: RaftMessage) {
        if message.to == 0 {
            return;
        }
        let to = Id(message.to);
        let streams = self.peers.get(&to).and_then(|p| p.streams.as_ref());
        let message = match streams.filter(|_| !self.stopped) {
            Some(streams) => match streams.send(message) {
                Some(by_pipeline) => by_pipeline,
                None => return,
            },
            None => message,
        };
        match self.route(to) {
            Some(pipeline) if !self.stopped => pipeline.do_send(Envelope(message)),
            _ => {
                refuse(&self.recipients, &message, self.refusal());
            }
        }
    }

    /// Why a message is refused: the transport stopped, or it does not
    /// know the peer.
    fn refusal(&self) -> Error {
        match self.stopped {
            true => Error::Stopped,
            false => member_not_found(),
        }
    }

    fn on_status(&mut self, TappedStatus { generation, change }: TappedStatus) {
        let id = change.peer;
        let current = match self.peers.get_mut(&id) {
            Some(peer) => Some(peer),
            None => self.remotes.get_mut(&id),
        };
        let Some(entry) = current.filter(|e| e.generation == generation) else {
            return;
        };
        // The pipeline and the stream readers share one status, as in
        // etcd: pass on transitions only.
        if entry.active_since.is_some() == change.active {
            return;
        }
        entry.active_since = change.since.filter(|_| change.active);
        if let Some(recipient) = &self.recipients.peer_status {
            recipient.do_send(change);
        }
    }
}

impl Actor for Transport {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        log::info!("started HTTP transport (local {})", self.config.local_id());
    }
}

impl Handler<AddPeer> for Transport {
    type Result = Result<(), PeerError>;

    fn handle(&mut self, AddPeer { id, urls }: AddPeer, ctx: &mut Context<Self>) -> Self::Result {
        if self.stopped {
            return Err(PeerError::Stopped);
        }
        if self.peers.contains_key(&id) {
            return Ok(());
        }
        let mut entry = self.start_pipeline(id, urls.clone(), ctx)?;
        entry.streams = self.start_streams(id, &urls, entry.status.clone());
        self.peers.insert(id, entry);
        self.probing.add(id, &urls);
        if let Some(remote) = self.remotes.remove(&id) {
            ctx.spawn(
                stop_pipeline(id, remote.pipeline)
                    .map(|_| ())
                    .into_actor(self),
            );
        }
        log::info!("added peer {id}");
        Ok(())
    }
}

impl Handler<AddRemote> for Transport {
    type Result = Result<(), PeerError>;

    fn handle(&mut self, msg: AddRemote, ctx: &mut Context<Self>) -> Self::Result {
        let AddRemote { id, urls } = msg;
        if self.stopped {
            return Err(PeerError::Stopped);
        }
        if self.peers.contains_key(&id) || self.remotes.contains_key(&id) {
            return Ok(());
        }
        let entry = self.start_pipeline(id, urls, ctx)?;
        self.remotes.insert(id, entry);
        log::info!("added new remote peer {id}");
        Ok(())
    }
}

impl Handler<RemovePeer> for Transport {
    type Result = ResponseFuture<Option<PipelineStats>>;

    fn handle(&mut self, RemovePeer(id): RemovePeer, _: &mut Context<Self>) -> Self::Result {
        let Some(entry) = self.peers.remove(&id) else {
            return Box::pin(async { None });
        };
        self.probing.remove(id);
        log::info!("removed peer {id}");
        Box::pin(stop_peer(id, entry).map(Some))
    }
}

impl Handler<UpdatePeer> for Transport {
    type Result = ResponseFuture<Result<(), PeerError>>;

    fn handle(
        &mut self,
        UpdatePeer { id, urls }: UpdatePeer,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let Some(entry) = self.peers.get_mut(&id) else {
            return Box::pin(async move { Err(PeerError::UnknownPeer(id)) });
        };
        let valid = urls.iter().all(|u| PeerUrl::parse(u).is_ok());
        if let Some(streams) = entry.streams.as_mut().filter(|_| valid) {
            streams.update_urls(&urls);
        }
        let pipeline = entry.pipeline.clone();
        self.probing.add(id, &urls);
        Box::pin(async move {
            let answer = pipeline.send(UpdateUrls(urls)).await;
            answer.map_err(|_| PeerError::UnknownPeer(id))??;
            log::info!("updated peer {id}");
            Ok(())
        })
    }
}

impl Handler<RemoveAllPeers> for Transport {
    type Result = ResponseFuture<HashMap<Id, PipelineStats>>;

    fn handle(&mut self, _: RemoveAllPeers, _: &mut Context<Self>) -> Self::Result {
        self.peers.keys().for_each(|id| self.probing.remove(*id));
        Box::pin(stop_all(self.peers.drain().collect()))
    }
}

impl Handler<SendMessages> for Transport {
    type Result = ();

    fn handle(&mut self, SendMessages(messages): SendMessages, _: &mut Context<Self>) {
        for message in messages {
            self.send_one(message);
        }
    }
}

impl Handler<SendSnapshot> for Transport {
    type Result = ResponseFuture<Result<(), Dropped>>;

    /// A streamed snapshot goes only to a peer, never to a remote, as in
    /// etcd's `SendSnapshot`.
    fn handle(&mut self, snapshot: SendSnapshot, _: &mut Context<Self>) -> Self::Result {
        let to = Id(snapshot.message.to);
        let pipeline = self.peers.get(&to).filter(|_| !self.stopped);
        let Some(pipeline) = pipeline.map(|p| p.pipeline.clone()) else {
            let dropped = refuse(&self.recipients, &snapshot.message, self.refusal());
            return Box::pin(async move { Err(dropped) });
        };
        let message = snapshot.message.clone();
        let recipients = self.recipients.clone();
        Box::pin(async move {
            match pipeline.send(snapshot).await {
                Ok(answer) => answer,
                // The pipeline went away with the snapshot: report it here.
                Err(_) => Err(refuse(&recipients, &message, Error::Stopped)),
            }
        })
    }
}

impl Handler<ActiveSince> for Transport {
    type Result = Option<SystemTime>;

    fn handle(&mut self, ActiveSince(id): ActiveSince, _: &mut Context<Self>) -> Self::Result {
        self.peers.get(&id).and_then(|p| p.active_since)
    }
}

impl Handler<GetPeerStats> for Transport {
    type Result = ResponseFuture<HashMap<Id, PipelineStats>>;

    fn handle(&mut self, _: GetPeerStats, _: &mut Context<Self>) -> Self::Result {
        let all = self.peers.iter().chain(&self.remotes);
        let asks = all.map(|(&id, entry)| {
            let ask = entry.pipeline.send(GetStats);
            async move { (id, ask.await.unwrap_or_default()) }
        });
        Box::pin(join_all(asks).map(|all| all.into_iter().collect()))
    }
}

impl Handler<StopTransport> for Transport {
    type Result = ResponseFuture<HashMap<Id, PipelineStats>>;

    fn handle(&mut self, _: StopTransport, _: &mut Context<Self>) -> Self::Result {
        let first = !self.stopped;
        self.stopped = true;
        self.peers.keys().for_each(|id| self.probing.remove(*id));
        let remotes = self.remotes.drain();
        let all: Vec<_> = remotes.chain(self.peers.drain()).collect();
        let local = self.config.local_id();
        Box::pin(stop_all(all).map(move |stats| {
            if first {
                log::info!("stopped HTTP transport (local {local})");
            }
            stats
        }))
    }
}

impl Handler<GetHealth> for Transport {
    type Result = ResponseFuture<Option<PeerHealth>>;

    fn handle(&mut self, GetHealth(id): GetHealth, _: &mut Context<Self>) -> Self::Result {
        self.probing.health(id)
    }
}

impl Handler<TappedStatus> for Transport {
    type Result = ();

    fn handle(&mut self, status: TappedStatus, _: &mut Context<Self>) {
        self.on_status(status);
    }
}

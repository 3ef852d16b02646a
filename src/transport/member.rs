//! `Member`: a whole member's HTTP side (the receiver's server and the
//! [`Transport`]) started in one call, and stopped in etcd's order.
//!
//! Starting a member by hand has a cycle in it: the transport reports to
//! the raft actor, the raft actor sends through the transport, and the
//! receiver delivers to the raft actor. [`MemberBuilder::start`] breaks it:
//! it binds the listeners, gives the raft-making closure the transport's
//! address before the transport runs, then serves the receiver with the
//! raft actor the closure returned.
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use rafthttp_pipeline::*;
//! # use rafthttp_pipeline::transport::*;
//! # struct Raft { transport: Addr<Transport> }
//! # impl Actor for Raft { type Context = Context<Self>; }
//! # impl Handler<Inbound> for Raft { type Result = Result<(), ProcessError>;
//! #     fn handle(&mut self, _: Inbound, _: &mut Context<Self>) -> Self::Result { Ok(()) } }
//! # impl Handler<ReportUnreachable> for Raft { type Result = ();
//! #     fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {} }
//! # impl Handler<ReportSnapshot> for Raft { type Result = ();
//! #     fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {} }
//! # async fn run() -> std::io::Result<()> {
//! let member = MemberBuilder::new(LocalMember::new(Id(1), Id(0x1000)))
//!     .bind(([127, 0, 0, 1], 0))
//!     .workers(1)
//!     .start(|transport| RaftRecipients::new(Raft { transport }.start()))?;
//! println!("member 1 listens on {:?}", member.urls());
//! member.transport().send(AddPeer { id: Id(2), urls: vec!["http://127.0.0.1:2380".into()] }).await;
//! // ...
//! let final_stats = member.stop().await; // transport first, then the server
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;

use super::actor::Transport;
use super::config::TransportConfig;
use super::member_server::{serve, Bound, Once, ServerSettings};
use super::messages::StopTransport;
use super::raft_recipients::RaftRecipients;
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::messages::Inbound;
use crate::receiver::ReceiverConfig;
use crate::stats::PipelineStats;
use crate::stream::StreamRoutes;

/// How long a stopping member's server lets requests in progress finish
/// (etcd closes its peer listeners with a one-second deadline,
/// `embed/etcd.go`, `Etcd.Close`).
pub const PEER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

type Customize<T> = Box<dyn FnOnce(T) -> T + Send>;

/// How to start a [`Member`]. Every setting has a
/// default, given with its setter.
pub struct MemberBuilder {
    local: LocalMember,
    bind: Vec<SocketAddr>,
    workers: Option<usize>,
    shutdown_timeout: Duration,
    receiver: Customize<ReceiverConfig>,
    transport: Customize<TransportConfig>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::PeerTls>,
}

impl std::fmt::Debug for MemberBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberBuilder")
            .field("local", &self.local)
            .field("bind", &self.bind)
            .field("workers", &self.workers)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl MemberBuilder {
    /// How to start `local`. Its `peer_urls` are the URLs peers reach it
    /// at, sent as `X-PeerURLs` (etcd's advertise peer URLs); left empty,
    /// they default to `http://<address>` of each bound address (set them
    /// when binding an unspecified address such as `0.0.0.0`).
    pub fn new(local: LocalMember) -> Self {
        MemberBuilder {
            local,
            bind: Vec::new(),
            workers: None,
            shutdown_timeout: PEER_SHUTDOWN_TIMEOUT,
            receiver: Box::new(|c| c),
            transport: Box::new(|c| c),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Speaks mutual TLS with `tls` on both sides: the server accepts only
    /// TLS connections with a client certificate it trusts, the pipelines
    /// and stream readers dial `https://` URLs with `tls`'s client
    /// certificate, and the advertised URLs default to `https://<address>`.
    /// Default: plain HTTP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::PeerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Binds the listeners, then makes the transport's configuration and
    /// the stream routes on its writer table (if streams are on).
    fn prepare(&mut self) -> io::Result<(Bound, TransportConfig, Option<StreamRoutes>)> {
        let bound = Bound::listen(&self.bind, self.local.clone(), self.scheme())?;
        let config = self.transport_config(&bound.local);
        let streams = config
            .streams
            .clone()
            .map(|t| StreamRoutes::new(&bound.local, t));
        Ok((bound, config, streams))
    }

    /// The scheme of the advertised URLs that default from the bound
    /// addresses.
    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// The transport's configuration: the user's changes, after the
    /// member's TLS (if any) for the pipelines and stream readers.
    fn transport_config(&mut self, local: &LocalMember) -> TransportConfig {
        let config = TransportConfig::new(local);
        #[cfg(feature = "tls")]
        let config = match &self.tls {
            Some(tls) => config.pipeline_with(|p| p.tls(tls.client_config())),
            None => config,
        };
        let customize = std::mem::replace(&mut self.transport, Box::new(|c| c));
        customize(config)
    }

    /// How the server runs.
    fn server_settings(
        &self,
        streams: Option<StreamRoutes>,
        workers: Option<usize>,
    ) -> ServerSettings {
        ServerSettings {
            streams,
            workers,
            shutdown_timeout: self.shutdown_timeout,
            #[cfg(feature = "tls")]
            tls: self.tls.as_ref().map(crate::tls::PeerTls::server_config),
        }
    }

    /// Adds an address to listen on for peers; port 0 picks a free port,
    /// which [`Member::local_addrs`] then reports. Default: `127.0.0.1:0`
    /// when none is given.
    pub fn bind(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.bind.push(addr.into());
        self
    }

    /// Sets the number of HTTP worker threads of the receiver. Default:
    /// actix-web's, one per physical CPU.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Sets how long [`Member::stop`] lets requests in progress finish
    /// before the server drops them, in whole seconds (rounded up).
    /// Default: [`PEER_SHUTDOWN_TIMEOUT`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Changes the receiver's configuration, e.g. to receive streamed
    /// snapshots: `.receiver(|c| c.snapshots(SnapshotConfig::new().sink(DirSink::new(dir))))`.
    /// Default: [`ReceiverConfig::new`]'s.
    pub fn receiver(
        mut self,
        f: impl FnOnce(ReceiverConfig) -> ReceiverConfig + Send + 'static,
    ) -> Self {
        self.receiver = Box::new(f);
        self
    }

    /// Changes the transport's configuration, e.g. the pipelines' buffer:
    /// `.transport(|c| c.pipeline_with(|p| p.buffer(128)))`. Default:
    /// [`TransportConfig::new`]'s, for this member with its advertised URLs.
    pub fn transport(
        mut self,
        f: impl FnOnce(TransportConfig) -> TransportConfig + Send + 'static,
    ) -> Self {
        self.transport = Box::new(f);
        self
    }

    /// Binds the listeners, starts the transport, calls `make_raft` with
    /// its address to start the raft actor, and serves the receiver for
    /// that actor. Call it inside a running actix `System`: the transport
    /// and its pipelines run on the current arbiter, the receiver on its
    /// own worker threads.
    pub fn start<R, F>(mut self, make_raft: F) -> io::Result<Member<R>>
    where
        R: Actor,
        F: FnOnce(Addr<Transport>) -> RaftRecipients<R>,
    {
        let (bound, config, streams) = self.prepare()?;
        let (transport, raft, inbound) = start_transport(config, make_raft);
        let settings = self.server_settings(streams, self.workers);
        let receiver = (self.receiver)(ReceiverConfig::new(&bound.local, inbound));
        let server = serve(bound.listeners, move || receiver.clone(), settings);
        let server = server.inspect_err(|_| transport.do_send(StopTransport))?;
        Ok(Member::started(
            bound.local,
            bound.addrs,
            raft,
            transport,
            server,
        ))
    }

    /// Like [`start`](Self::start), but the raft actor, the transport (its
    /// pipelines, stream writers and readers) and the receiver all run on
    /// one thread: the server's single HTTP worker. A message then goes
    /// from raft to the socket, and from the socket to raft, without waking
    /// another thread; each such wake-up costs tens of microseconds of
    /// round trip on a small machine. This is the layout of a raft node that
    /// runs on one thread; its price is that the receiver has one worker.
    /// Setting [`workers`](Self::workers) has no effect here.
    ///
    /// `make_raft` is called on that thread, once. Resolves once it has
    /// run; [`Member::arbiter`] is that thread's arbiter.
    pub async fn start_on_one_thread<R, F>(mut self, make_raft: F) -> io::Result<Member<R>>
    where
        R: Actor,
        F: FnOnce(Addr<Transport>) -> RaftRecipients<R> + Send + 'static,
    {
        let (bound, config, streams) = self.prepare()?;
        let (started_tx, started) = futures::channel::oneshot::channel();
        let settings = self.server_settings(streams, Some(1));
        let (local, customize) = (bound.local.clone(), self.receiver);
        let first = move || {
            let (transport, raft, inbound) = start_transport(config, make_raft);
            let _ = started_tx.send((transport, raft, Arbiter::current()));
            customize(ReceiverConfig::new(&local, inbound))
        };
        let once = Once::new(first);
        let server = serve(bound.listeners, move || once.get(), settings)?;
        let Ok((transport, raft, arbiter)) = started.await else {
            server.stop(false).await;
            return Err(io::Error::other("the member's HTTP worker did not start"));
        };
        let member = Member::started(bound.local, bound.addrs, raft, transport, server);
        Ok(member.on(arbiter))
    }
}

/// Starts the transport with `config` on the current arbiter, and the raft
/// actor `make_raft` makes with its address: (transport, raft, where the
/// receiver delivers).
fn start_transport<R, F>(
    config: TransportConfig,
    make_raft: F,
) -> (Addr<Transport>, Addr<R>, Recipient<Inbound>)
where
    R: Actor,
    F: FnOnce(Addr<Transport>) -> RaftRecipients<R>,
{
    let (transport, (raft, inbound)) = Transport::start_with(config, |addr| {
        let wired = make_raft(addr);
        (wired.transport, (wired.raft, wired.inbound))
    });
    (transport, raft, inbound)
}

/// A running member: its raft actor, its transport and the receiver's
/// server. From [`MemberBuilder::start`] or
/// [`start_on_one_thread`](MemberBuilder::start_on_one_thread).
pub struct Member<R: Actor> {
    local: LocalMember,
    raft: Addr<R>,
    transport: Addr<Transport>,
    server: ServerHandle,
    local_addrs: Vec<SocketAddr>,
    arbiter: ArbiterHandle,
}

impl<R: Actor> std::fmt::Debug for Member<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("local", &self.local)
            .field("local_addrs", &self.local_addrs)
            .finish()
    }
}

impl<R: Actor> Member<R> {
    /// A member whose transport runs on the current arbiter (see
    /// [`on`](Self::on)).
    fn started(
        local: LocalMember,
        local_addrs: Vec<SocketAddr>,
        raft: Addr<R>,
        transport: Addr<Transport>,
        server: ServerHandle,
    ) -> Self {
        log::info!("member {} serving peers at {:?}", local.id, local.peer_urls);
        Member {
            local,
            raft,
            transport,
            server,
            local_addrs,
            arbiter: Arbiter::current(),
        }
    }

    fn on(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = arbiter;
        self
    }

    /// The arbiter the transport runs on (the caller's for
    /// [`MemberBuilder::start`], the HTTP worker's for
    /// [`start_on_one_thread`](MemberBuilder::start_on_one_thread)): work
    /// spawned there with [`ArbiterHandle::spawn_fn`] reaches the raft actor
    /// and the transport without waking another thread.
    pub fn arbiter(&self) -> &ArbiterHandle {
        &self.arbiter
    }

    /// This member, with the URLs peers reach it at.
    pub fn local(&self) -> &LocalMember {
        &self.local
    }

    /// The raft actor the start closure made.
    pub fn raft(&self) -> &Addr<R> {
        &self.raft
    }

    /// The transport: add and remove peers, send messages.
    pub fn transport(&self) -> &Addr<Transport> {
        &self.transport
    }

    /// The addresses the receiver listens on, with the ports picked for
    /// port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The URLs peers reach this member at (`X-PeerURLs`).
    pub fn urls(&self) -> &[String] {
        &self.local.peer_urls
    }

    /// Stops the member in etcd's order: the transport first (every
    /// pipeline stops and reports what it held), then the server, which
    /// lets requests in progress finish within the shutdown timeout.
    /// Resolves with every pipeline's final counters. The raft actor is
    /// the caller's to stop.
    pub async fn stop(self) -> HashMap<Id, PipelineStats> {
        let stats = self.transport.send(StopTransport).await;
        self.server.stop(true).await;
        log::info!("member {} stopped", self.local.id);
        stats.unwrap_or_default()
    }
}

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
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};

use super::actor::Transport;
use super::config::TransportConfig;
use super::messages::StopTransport;
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::messages::{CriticalError, PeerStatusChanged};
use crate::messages::{Inbound, ReportSnapshot, ReportUnreachable};
use crate::pipeline::Recipients;
use crate::receiver::{self, ReceiverConfig};
use crate::stats::PipelineStats;
use crate::stream::{stream_routes, StreamRoutes};

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
        let bound = Bound::listen(&self.bind, self.local.clone(), self.scheme())?;
        let config = self.transport_config(&bound.local);
        let streams = config
            .streams
            .clone()
            .map(|t| StreamRoutes::new(&bound.local, t));
        let (transport, (raft, inbound)) = Transport::start_with(config, |addr| {
            let wired = make_raft(addr);
            (wired.transport, (wired.raft, wired.inbound))
        });
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
        let bound = Bound::listen(&self.bind, self.local.clone(), self.scheme())?;
        let config = self.transport_config(&bound.local);
        let streams = config
            .streams
            .clone()
            .map(|t| StreamRoutes::new(&bound.local, t));
        let (started_tx, started) = futures::channel::oneshot::channel();
        let settings = self.server_settings(streams, Some(1));
        let (local, customize) = (bound.local.clone(), self.receiver);
        let first = move || {
            let (transport, (raft, inbound)) = Transport::start_with(config, |addr| {
                let wired = make_raft(addr);
                (wired.transport, (wired.raft, wired.inbound))
            });
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

/// The listeners, their addresses, and the member with its advertised
/// URLs defaulted from them.
struct Bound {
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    local: LocalMember,
}

impl Bound {
    fn listen(bind: &[SocketAddr], mut local: LocalMember, scheme: &str) -> io::Result<Self> {
        let loopback = [SocketAddr::from(([127, 0, 0, 1], 0))];
        let bind = if bind.is_empty() { &loopback[..] } else { bind };
        let listeners = bind
            .iter()
            .map(TcpListener::bind)
            .collect::<io::Result<Vec<_>>>()?;
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        if local.peer_urls.is_empty() {
            local.peer_urls = addrs.iter().map(|a| format!("{scheme}://{a}")).collect();
        }
        Ok(Bound {
            listeners,
            addrs,
            local,
        })
    }
}

/// A receiver configuration made once, by the first HTTP worker that asks,
/// and cloned for any worker after it (actix-server restarts a worker that
/// panicked).
struct Once<F> {
    state: Mutex<OnceState<F>>,
}

enum OnceState<F> {
    Pending(F),
    Made(ReceiverConfig),
    Taken,
}

impl<F: FnOnce() -> ReceiverConfig + Send + 'static> Once<F> {
    fn new(make: F) -> Arc<Self> {
        Arc::new(Once {
            state: Mutex::new(OnceState::Pending(make)),
        })
    }

    fn get(&self) -> ReceiverConfig {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let OnceState::Made(config) = &*state {
            return config.clone();
        }
        let OnceState::Pending(make) = std::mem::replace(&mut *state, OnceState::Taken) else {
            unreachable!("a worker panicked while making the receiver's configuration");
        };
        let config = make();
        *state = OnceState::Made(config.clone());
        config
    }
}

/// How the member's server runs.
struct ServerSettings {
    streams: Option<StreamRoutes>,
    workers: Option<usize>,
    shutdown_timeout: Duration,
    /// The server's side of [`MemberBuilder::tls`].
    #[cfg(feature = "tls")]
    tls: Option<rustls::ServerConfig>,
}

/// Serves the receiver on `listeners`, with the configuration `receiver`
/// gives on each worker, and returns the server's handle.
fn serve(
    listeners: Vec<TcpListener>,
    receiver: impl Fn() -> ReceiverConfig + Send + Clone + 'static,
    settings: ServerSettings,
) -> io::Result<ServerHandle> {
    let timeout = settings.shutdown_timeout;
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    let streams = settings.streams;
    let mut server = HttpServer::new(move || {
        let app = App::new();
        let app = match &streams {
            Some(routes) => app.configure(stream_routes(routes.clone())),
            None => app,
        };
        app.configure(receiver::configure(receiver()))
    })
    .on_connect(crate::nodelay::on_connect)
    .disable_signals()
    .shutdown_timeout(secs);
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    for listener in listeners {
        #[cfg(feature = "tls")]
        if let Some(tls) = &settings.tls {
            server = server.listen_rustls_0_23(listener, tls.clone())?;
            continue;
        }
        server = server.listen(listener)?;
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}

/// What [`MemberBuilder::start`]'s closure returns: the raft actor, which
/// receives every [`Inbound`] and the transport's callbacks, and the
/// optional extra recipients.
pub struct RaftRecipients<R: Actor> {
    raft: Addr<R>,
    inbound: Recipient<Inbound>,
    transport: Recipients,
}

impl<R: Actor> std::fmt::Debug for RaftRecipients<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRecipients")
            .field("transport", &self.transport)
            .finish()
    }
}

impl<R> RaftRecipients<R>
where
    R: Actor + Handler<Inbound> + Handler<ReportUnreachable> + Handler<ReportSnapshot>,
    R::Context:
        ToEnvelope<R, Inbound> + ToEnvelope<R, ReportUnreachable> + ToEnvelope<R, ReportSnapshot>,
{
    /// Everything to `raft`: inbound messages and both raft callbacks.
    pub fn new(raft: Addr<R>) -> Self {
        RaftRecipients {
            inbound: raft.clone().recipient(),
            transport: Recipients::from_addr(&raft).inbound(raft.clone().recipient()),
            raft,
        }
    }

    /// Also send every peer's [`PeerStatusChanged`] to the raft actor.
    pub fn with_peer_status(self) -> Self
    where
        R: Handler<PeerStatusChanged>,
        R::Context: ToEnvelope<R, PeerStatusChanged>,
    {
        let recipient = self.raft.clone().recipient();
        self.peer_status(recipient)
    }

    /// Also send [`CriticalError`]s (this member was removed) to the raft
    /// actor.
    pub fn with_critical_errors(self) -> Self
    where
        R: Handler<CriticalError>,
        R::Context: ToEnvelope<R, CriticalError>,
    {
        let recipient = self.raft.clone().recipient();
        self.critical_errors(recipient)
    }

    /// Also send every peer's [`PeerStatusChanged`] to `recipient`.
    pub fn peer_status(mut self, recipient: Recipient<PeerStatusChanged>) -> Self {
        self.transport = self.transport.peer_status(recipient);
        self
    }

    /// Also send [`CriticalError`]s to `recipient`.
    pub fn critical_errors(mut self, recipient: Recipient<CriticalError>) -> Self {
        self.transport = self.transport.critical_errors(recipient);
        self
    }
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

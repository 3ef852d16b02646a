//! The wiring: the actor, one pipeline per peer, and the HTTP server with
//! the receiver's routes and etcd's `/members`.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::prelude::*;
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::{ServerHandle, Service};
use actix_web::rt::net::TcpStream;
use actix_web::{web, App, HttpServer};
use log::{info, warn};
use rafthttp_pipeline::membership::{InitialCluster, Member};
use rafthttp_pipeline::metrics::{self, prometheus::Registry};
use rafthttp_pipeline::prober::ProberConfig;
use rafthttp_pipeline::receiver::SnapshotConfig;
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::transport::{AddPeer, TransportConfig, PEER_SHUTDOWN_TIMEOUT};
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::Metrics;
use rafthttp_pipeline::{Id, PipelineStats, Recipients, StreamRoutes, Transport};
use serde_json::json;

use crate::actor::{Shutdown, StandInActor};
use crate::events::Events;
use crate::flags::{FailMode, Flags};
use crate::members::{members_json, serve_members, MembersJson};
use crate::sinks::StandInSink;
use crate::snapshot_requests::{snapshot_request, PeerSocket, SnapshotRequests};
use crate::standin::StandIn;
use crate::stats::Counts;

/// A running stand-in: its HTTP servers and its actor.
pub struct Running {
    server: ServerHandle,
    metrics_server: Option<ServerHandle>,
    actor: Addr<StandInActor>,
}

impl Running {
    /// Stops the transport, then the servers, in etcd's order: the
    /// transport's stream writers end their connections, so that the
    /// graceful stop of the server has only requests in progress to wait
    /// for (at most [`PEER_SHUTDOWN_TIMEOUT`]). Returns every pipeline's
    /// final stats.
    pub async fn stop(self) -> Vec<(Id, PipelineStats)> {
        let stats = self.actor.send(Shutdown).await.unwrap_or_default();
        self.server.stop(true).await;
        if let Some(metrics) = self.metrics_server {
            metrics.stop(true).await;
        }
        stats
    }
}

/// Serves only `GET /metrics` on `addrs` (etcd's `--listen-metrics-urls`).
fn serve_metrics(registry: &Registry, addrs: &[String]) -> io::Result<Option<ServerHandle>> {
    if addrs.is_empty() {
        return Ok(None);
    }
    let registry = registry.clone();
    let mut server =
        HttpServer::new(move || App::new().configure(metrics::http::configure(registry.clone())))
            .workers(1)
            .disable_signals();
    for addr in addrs {
        server = server.bind(addr)?;
        info!("serving /metrics on {addr}");
    }
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            warn!("metrics server: {e}");
        }
    });
    Ok(Some(handle))
}

/// Starts the stand-in on `listeners`, inside a running actix `System`:
/// the actor, its transport (one pipeline per peer), and the HTTP server. The actor counts
/// into `counts`.
pub fn start_on(
    flags: &Flags,
    cluster: InitialCluster,
    me: Member,
    listeners: Vec<TcpListener>,
    counts: Arc<Mutex<Counts>>,
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
    let local = LocalMember::new(me.id, cluster.cluster_id).peer_urls(me.peer_urls.clone());
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).map_err(io::Error::other)?;
    let tls = match flags.tls().map_err(io::Error::other)? {
        Some(info) => Some(info.load().map_err(io::Error::other)?),
        None => None,
    };
    let pipeline_metrics = metrics.clone();
    let mut config = TransportConfig::new(&local)
        .pipeline_with(|p| p.metrics(pipeline_metrics))
        .probe(ProberConfig::default());
    if let Some(tls) = &tls {
        let client = tls.client_config();
        config = config.pipeline_with(|p| p.tls(client));
    }
    if flags.streams {
        info!("serving and dialling etcd's streams");
        config = config.with_streams();
    }
    let stream_routes = config.streams.clone().map(|t| StreamRoutes::new(&local, t));
    let peer_ids: Vec<Id> = peers.iter().map(|p| p.id).collect();
    let logic = StandIn::new(me.id, &peer_ids, !flags.no_append_ack);
    let stats_every = flags.stats_every;
    let (transport, actor) = Transport::start_with(config, |transport| {
        let actor = StandInActor {
            logic,
            transport,
            counts,
            stats_every,
            events,
        }
        .start();
        let recipients = Recipients::from_addr(&actor)
            .peer_status(actor.clone().recipient())
            .inbound(actor.clone().recipient());
        (recipients, actor)
    });
    for peer in &peers {
        // --initial-cluster's URLs were checked when it was parsed.
        let urls = peer.peer_urls.clone();
        transport.do_send(AddPeer { id: peer.id, urls });
    }

    let mut receiver_config = ReceiverConfig::new(&local, actor.clone().recipient())
        .serve_version(true)
        .metrics(metrics);
    if let Some(dir) = &flags.data_dir {
        let fail_500 = match flags.fail_mode {
            FailMode::Status500 => flags.fail_snapshots,
            FailMode::Cut => 0,
        };
        info!("taking snapshots into {dir:?}");
        if flags.fail_snapshots > 0 {
            info!(
                "failing the first {} snapshot transfer(s) (--fail-mode {})",
                flags.fail_snapshots,
                flags.fail_mode.name()
            );
        }
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
    let metrics_server =
        serve_metrics(&registry, &flags.metrics_addrs().map_err(io::Error::other)?)?;
    let members = web::Data::new(MembersJson {
        cluster_id: cluster.cluster_id.to_string(),
        body: members_json(&cluster),
    });
    let mut server = HttpServer::new(move || {
        let requests = requests.clone();
        let app = match &stream_routes {
            Some(routes) => App::new().configure(rafthttp_pipeline::stream_routes(routes.clone())),
            None => App::new(),
        };
        app.app_data(members.clone())
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
            .configure(metrics::http::configure(registry.clone()))
            .configure(receiver::configure(receiver_config.clone()))
    })
    .on_connect(|conn, data| {
        rafthttp_pipeline::nodelay::on_connect(conn, data);
        if let Some(tcp) = tcp_stream(conn) {
            data.insert(PeerSocket(tcp.as_raw_fd()));
        }
    })
    .workers(1)
    .shutdown_timeout(PEER_SHUTDOWN_TIMEOUT.as_secs())
    .disable_signals();
    for listener in listeners {
        info!("listening for peers on {}", listener.local_addr()?);
        server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.server_config())?,
            None => server.listen(listener)?,
        };
    }
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            warn!("peer server: {e}");
        }
    });
    Ok(Running {
        server: handle,
        metrics_server,
        actor,
    })
}

/// The TCP stream under an accepted connection, plain or TLS.
fn tcp_stream(conn: &dyn std::any::Any) -> Option<&TcpStream> {
    conn.downcast_ref::<TcpStream>().or_else(|| {
        conn.downcast_ref::<TlsStream<TcpStream>>()
            .map(|tls| tls.get_ref().0)
    })
}

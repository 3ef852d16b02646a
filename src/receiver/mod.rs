//! The receiving side: etcd's `pipelineHandler` and `snapshotHandler`
//! (`rafthttp/http.go`) as actix-web routes for the user's `App`.
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::{receiver::{self, ReceiverConfig}, Id, Inbound, LocalMember};
//! # async fn run(raft: Recipient<Inbound>) -> std::io::Result<()> {
//! let config = ReceiverConfig::new(&LocalMember::new(Id(1), Id(0x1000)), raft).serve_version(true);
//! HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .bind(("127.0.0.1", 2380))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! A `POST /raft` goes through etcd's checks in etcd's order (method,
//! version, cluster id, body, decode) and then reaches the user's raft actor
//! as an [`Inbound`]; its answer becomes the HTTP status. Status codes and
//! bodies are etcd's, byte for byte, except where etcd answers badly:
//! remote input never panics, a removed member gets a complete 403, a
//! processing error a complete 500, and bodies are capped at
//! [`ReceiverConfig::max_message_bytes`].
//!
//! # Resource bounds
//!
//! No peer can make the receiver hold more than it allows, whatever its
//! headers say. Memory is taken as body bytes arrive, never from a
//! `Content-Length`, and charged to one budget shared by every connection
//! and worker before it is allocated. Each bound is a setter on
//! [`ReceiverConfig`] (or [`SnapshotConfig`]); the defaults leave etcd's
//! real traffic untouched:
//!
//! | bound | default | over it |
//! |---|---|---|
//! | [`memory_budget_bytes`](ReceiverConfig::memory_budget_bytes): all bodies in flight, and what decoding them allocates, across connections and workers | [`MEMORY_BUDGET_BYTES`] (1 GiB) | 503, before the body is read when `Content-Length` already says it does not fit |
//! | [`max_message_bytes`](ReceiverConfig::max_message_bytes): one `/raft` body | [`MAX_MESSAGE_BYTES`] (512 MiB) | 413 |
//! | [`max_decode_ratio`](ReceiverConfig::max_decode_ratio): what decoding may allocate beyond the body, per body byte (entries, `ConfState` ids), counted before decoding | [`DECODE_RATIO`] (8), and always [`DECODE_ALLOWANCE_BYTES`] | 413 |
//! | [`read_idle_timeout`](ReceiverConfig::read_idle_timeout): a `/raft` body sending nothing | [`CONN_READ_TIMEOUT`] (5 s, etcd's) | 408 |
//! | [`max_requests_per_member`](ReceiverConfig::max_requests_per_member): concurrent `/raft` and `/raft/snapshot` requests per `X-Server-From` (per address without one) | [`MAX_REQUESTS_PER_MEMBER`] (16) | 429 |
//! | [`SnapshotConfig::max_db_bytes`]: one snapshot database | none, as etcd | 413, temp file removed |
//!
//! Every refusal is answered as Go's `http.Error` writes it, with our
//! cluster id, through the receiver's one answer path. A connection whose
//! body was not read to its end is closed after the answer (actix-web
//! reads on for at most its `client_disconnect_timeout`, 1 s by default),
//! so an endless body cannot keep a connection busy either.
//!
//! Requests are served concurrently: each one waits on its own for the raft
//! actor's answer, so a slow `MsgProp` does not hold up the heartbeats
//! behind it, as long as the raft actor answers them independently.
//!
//! # Streamed snapshots
//!
//! With a [`SnapshotSink`] in [`ReceiverConfig::snapshots`], [`configure`]
//! also mounts etcd's `POST /raft/snapshot` (`snapshotHandler`,
//! `rafthttp/http.go:200-348`). The simplest sink is a directory:
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::receiver::{self, DirSink, ReceiverConfig, SnapshotConfig};
//! # use rafthttp_pipeline::{Id, Inbound, LocalMember};
//! # async fn run(raft: Recipient<Inbound>) -> std::io::Result<()> {
//! let snapshots = SnapshotConfig::new().sink(DirSink::new("/var/lib/member/snap"));
//! let config = ReceiverConfig::new(&LocalMember::new(Id(1), Id(0x1000)), raft).snapshots(snapshots);
//! HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .bind(("127.0.0.1", 2380))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! A request goes through etcd's steps in etcd's order: the method, the
//! version and cluster id checks of `/raft`, then the 8-byte length (capped
//! at [`SnapshotConfig::limit_bytes`] before anything is allocated), the
//! `MsgSnap` (400 `failed to decode raft message (<err>)`, 400 `wrong raft
//! message type`), then the database, streamed to the sink until the body
//! ends (500 `failed to save KV snapshot (<err>)`). Only once the sink has
//! committed it does the raft actor get an [`Inbound`] whose `snapshot`
//! says where the database is; its answer becomes the status as for `/raft`
//! (204, a complete 403 for a removed member, or 500 `failed to process
//! raft message (<err>)`).
//!
//! The database is never collected: at most [`WRITE_BATCH_BYTES`] are
//! buffered, then written by the sink on actix's blocking thread pool while
//! the connection waits, so TCP pushes back on the sender. Memory per
//! transfer is that batch plus the framed message (at most
//! [`SnapshotConfig::limit_bytes`], allocated as it arrives).
//!
//! Whatever goes wrong after the sink began (the body is cut, stalls for
//! [`SnapshotConfig::stall_timeout`], or the sink fails), the writer is
//! dropped without being committed, which discards what it wrote: for a
//! [`DirSink`], the temp file is removed. This holds too when actix-web
//! drops the request's future, e.g. when the peer disconnects.
//!
//! # Streamed or inline?
//!
//! A `MsgSnap` can carry its snapshot inline in `snapshot.data` through the
//! pipeline's `POST /raft`, as etcd's raftexample does: fine for a small
//! state machine, since the whole message is encoded, sent and decoded in
//! memory. A real database goes through `POST /raft/snapshot`:
//! [`SendSnapshot`](crate::SendSnapshot) streams it from any byte stream,
//! this receiver streams it to disk, and memory stays flat on both ends.

use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest};

use crate::local_member::LocalMember;
use crate::log_limit::OUTPUT_INTERVAL;
use crate::messages::Inbound;
use crate::metrics::Metrics;

mod answer;
mod budget;
pub(crate) mod checks;
mod decode;
mod gather;
mod in_flight;
mod inflow;
mod probing;
mod raft;
mod sink;
mod snapshot;
mod version;
mod worker;

pub use crate::wire::{PROBING_PREFIX, RAFT_PREFIX, RAFT_SNAPSHOT_PREFIX, RAFT_STREAM_PREFIX};
pub use decode::{DECODE_ALLOWANCE_BYTES, DECODE_RATIO};
pub use inflow::CONN_READ_TIMEOUT;
pub use sink::{db_file_name, DirSink, SnapshotSink, SnapshotWriter};
pub use snapshot::{SnapshotConfig, WRITE_BATCH_BYTES};

use in_flight::InFlight;
use snapshot::SnapshotReceiver;
pub(crate) use worker::peer_headers;
use worker::Worker;

/// The largest raft message body accepted: 512 MiB (etcd `readBytesLimit`,
/// `rafthttp/msg_codec.go:46`). etcd's pipeline handler has no total cap at
/// all; we apply the limit etcd uses for its other framed reads.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// The memory all request bodies in flight may hold together, with what
/// decoding them allocates: 1 GiB, two messages at [`MAX_MESSAGE_BYTES`].
/// etcd has no such bound; its messages are about 1 MiB
/// (`--max-request-bytes` 1.5 MiB by default).
pub const MEMORY_BUDGET_BYTES: usize = 1024 * 1024 * 1024;

/// The most `/raft` and `/raft/snapshot` requests one member may have in
/// flight at once: 16. etcd sends at most 4 pipeline requests
/// (`connPerPipeline`, `rafthttp/pipeline.go:38`) and one snapshot at a
/// time.
pub const MAX_REQUESTS_PER_MEMBER: usize = 16;

/// The version path (etcd `versionPath`, `etcdserver/api/etcdhttp/base.go:43`).
pub const VERSION_PATH: &str = "/version";

/// What the receiver needs: who we are, which cluster we accept messages
/// for, how large a message may be, and the raft actor that takes them.
///
/// Build it with [`ReceiverConfig::new`] and refine it with the setters;
/// each documents its default. It is cloned into every HTTP worker; the
/// clones share one memory budget and one count of requests per member.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// This member. Its `cluster_id` is checked: `X-Etcd-Cluster-ID` must
    /// equal its lower-case hex exactly, and every answer after the method
    /// check carries it. Its `id` only appears in logs, as in etcd.
    pub local: LocalMember,
    /// The largest body accepted, in bytes (default [`MAX_MESSAGE_BYTES`]).
    /// A larger `Content-Length` gets 413 before the body is read; a body
    /// without one is cut off at the limit with 413.
    pub max_message_bytes: usize,
    /// Whether [`configure`] also mounts `GET /version` (default `false`,
    /// since the application may serve its own). Turn it on when real etcd
    /// members query this member's version on its peer URL.
    pub serve_version: bool,
    /// How `POST /raft/snapshot` is received (default: no sink, so the
    /// route is not mounted); see [Streamed snapshots](self#streamed-snapshots).
    pub snapshots: SnapshotConfig,
    /// What all bodies in flight may hold together, in bytes (default
    /// [`MEMORY_BUDGET_BYTES`]); see [Resource bounds](self#resource-bounds).
    pub memory_budget_bytes: usize,
    /// What decoding a `/raft` body may allocate beyond it, per body byte
    /// (default [`DECODE_RATIO`]); any body may use
    /// [`DECODE_ALLOWANCE_BYTES`].
    pub max_decode_ratio: usize,
    /// How long a `/raft` body may send nothing (default
    /// [`CONN_READ_TIMEOUT`]).
    pub read_idle_timeout: Duration,
    /// The most requests one member may have in flight (default
    /// [`MAX_REQUESTS_PER_MEMBER`]).
    pub max_requests_per_member: usize,
    /// The user's raft actor. It gets every accepted message as an
    /// [`Inbound`] and its answer decides the status.
    pub raft: Recipient<Inbound>,
    /// Where to count etcd's receive metrics (default: nowhere):
    /// `peer_received_bytes_total` and `peer_received_failures_total`
    /// (labelled by the sender's member id, never its address), and the
    /// `snapshot_receive_*` families.
    pub metrics: Option<Metrics>,
    /// The counts every clone shares: the memory held, the requests in
    /// flight per member.
    shared: Shared,
}

/// What the workers of one receiver count together.
#[derive(Debug, Clone, Default)]
struct Shared {
    memory_used: Arc<AtomicUsize>,
    in_flight: InFlight,
}

impl ReceiverConfig {
    /// A configuration with the defaults: no `/version` route, no
    /// snapshot route, and every bound at its default.
    pub fn new(local: &LocalMember, raft: Recipient<Inbound>) -> Self {
        ReceiverConfig {
            local: local.clone(),
            max_message_bytes: MAX_MESSAGE_BYTES,
            serve_version: false,
            snapshots: SnapshotConfig::default(),
            memory_budget_bytes: MEMORY_BUDGET_BYTES,
            max_decode_ratio: DECODE_RATIO,
            read_idle_timeout: CONN_READ_TIMEOUT,
            max_requests_per_member: MAX_REQUESTS_PER_MEMBER,
            raft,
            metrics: None,
            shared: Shared::default(),
        }
    }

    /// Counts etcd's receive metrics in `metrics`.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The bytes that requests hold now, of
    /// [`memory_budget_bytes`](Self::memory_budget_bytes): shared by every
    /// clone of this configuration, so by every worker it serves.
    pub fn memory_in_use(&self) -> usize {
        self.shared.memory_used.load(Ordering::Relaxed)
    }

    /// Sets what all bodies in flight may hold together (default
    /// [`MEMORY_BUDGET_BYTES`]). Keep it above `max_message_bytes`, or
    /// the largest messages are refused with 503.
    pub fn memory_budget_bytes(mut self, bytes: usize) -> Self {
        self.memory_budget_bytes = bytes;
        self
    }

    /// Sets what decoding may allocate per body byte (default
    /// [`DECODE_RATIO`]).
    pub fn max_decode_ratio(mut self, ratio: usize) -> Self {
        self.max_decode_ratio = ratio;
        self
    }

    /// Sets how long a `/raft` body may send nothing (default
    /// [`CONN_READ_TIMEOUT`]).
    pub fn read_idle_timeout(mut self, timeout: Duration) -> Self {
        self.read_idle_timeout = timeout;
        self
    }

    /// Sets how many requests one member may have in flight (default
    /// [`MAX_REQUESTS_PER_MEMBER`]).
    pub fn max_requests_per_member(mut self, requests: usize) -> Self {
        self.max_requests_per_member = requests;
        self
    }

    /// Sets the largest body accepted (default [`MAX_MESSAGE_BYTES`]).
    /// Keep it above the largest `MsgSnap` the cluster sends through the
    /// pipeline, or snapshots will keep failing with 413.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets how streamed snapshots are received (default: not at all);
    /// give it a sink to mount `POST /raft/snapshot`.
    pub fn snapshots(mut self, snapshots: SnapshotConfig) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Sets whether `GET /version` is mounted (default `false`).
    pub fn serve_version(mut self, serve: bool) -> Self {
        self.serve_version = serve;
        self
    }
}

/// Mounts the receiver's routes, for `App::new().configure(receiver::configure(cfg))`:
///
/// | path | answer |
/// |---|---|
/// | `/raft` | the pipeline: `POST` a raft message, 204 when raft took it |
/// | `/raft/snapshot` | only with a sink in [`ReceiverConfig::snapshots`]: `POST` a streamed snapshot (see [Streamed snapshots](self#streamed-snapshots)), 204 once stored and taken by raft |
/// | `/raft/probing` | any method: 200 `{"OK":true,"Now":"..."}` (etcd's prober) |
/// | `/raft/stream/...` | 404 without `X-Server-Version`, so an etcd 3.4 peer quietly uses the pipeline instead of streams |
/// | any other `/raft/...`, including `/raft/` | 404 `404 page not found` |
/// | `/version` | only with [`ReceiverConfig::serve_version`]: etcd's version JSON |
///
/// Register routes of your own under `/raft/` *before* this call: the
/// catch-all for `/raft/...` answers everything registered after it.
pub fn configure(config: ReceiverConfig) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let serve_version = config.serve_version;
        let snapshots = config.snapshots.clone();
        let worker = Rc::new(Worker::new(config));
        flush_merged_logs(Rc::downgrade(&worker));
        if let Some(rx) = SnapshotReceiver::new(worker.clone(), &snapshots).map(Rc::new) {
            cfg.service(web::resource(RAFT_SNAPSHOT_PREFIX).to(
                move |req: HttpRequest, body: web::Payload| snapshot::serve(rx.clone(), req, body),
            ));
        }
        cfg.service(
            web::resource(RAFT_PREFIX).to(move |req: HttpRequest, body: web::Payload| {
                raft::serve(worker.clone(), req, body)
            }),
        )
        .service(web::resource(PROBING_PREFIX).to(probing::serve))
        .service(
            web::resource(format!("{RAFT_STREAM_PREFIX}/{{tail:.*}}")).to(answer::serve_not_found),
        )
        .service(web::resource(format!("{RAFT_PREFIX}/{{tail:.*}}")).to(answer::serve_not_found));
        if serve_version {
            cfg.service(web::resource(VERSION_PATH).to(version::serve));
        }
    }
}

/// Logs the worker's merged refusals every
/// [`OUTPUT_INTERVAL`](crate::log_limit::OUTPUT_INTERVAL), so a burst's
/// count comes out when the burst ends, until the worker is gone (its
/// drop logs the rest).
fn flush_merged_logs(worker: Weak<Worker>) {
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(OUTPUT_INTERVAL).await;
            let Some(worker) = worker.upgrade() else {
                return;
            };
            worker.answers.flush(Instant::now());
        }
    });
}

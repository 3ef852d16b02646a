//! etcd's raft HTTP *pipeline*, rebuilt as actix actors.
//!
//! Raft members exchange `raftpb.Message`s over HTTP. The pipeline is the
//! POST channel of etcd's rafthttp: per remote peer, a bounded queue drained
//! by four concurrent senders, each message one `POST /raft` with a protobuf
//! body. This crate speaks it byte for byte like etcd 3.4, so a member built
//! on it can sit in a cluster beside real etcd members, and it fixes what
//! etcd's pipeline does badly (silent drops, no timeouts, panics on remote
//! input).
//!
//! - Sending: one [`PipelineActor`] per remote peer. Send it [`Envelope`]s;
//!   it supervises four [`SenderActor`]s and reports every outcome to your
//!   raft actor as typed messages ([`ReportUnreachable`],
//!   [`ReportSnapshot`], [`PeerStatusChanged`], [`CriticalError`]).
//! - Receiving: [`receiver::configure`] mounts etcd's `/raft` routes in your
//!   actix-web `App` and delivers each message to your raft actor as an
//!   [`Inbound`]; with a [`receiver::SnapshotSink`] it also
//!   receives streamed snapshots.
//!
//! # Public surface
//!
//! | what | items |
//! |---|---|
//! | this member | [`LocalMember`], [`Id`], [`PeerUrl`], [`membership`] (ids as etcd derives them, [`InitialCluster`]) |
//! | a whole member | [`transport`]: [`Transport`] (one pipeline per peer, routed by `to`), [`MemberBuilder`] / [`Member`] (receiver server and transport in one call), [`TransportConfig`] |
//! | sending to one peer | [`PipelineActor`], [`PipelineConfig`], [`SenderPlacement`], [`Recipients`], [`SenderActor`] |
//! | messages to a pipeline | [`Envelope`], [`SendSnapshot`] (with a [`SnapshotBody`]: [`body_from_bytes`], [`body_from_reader`]), [`Stop`], [`GetStats`], [`UpdateUrls`], [`ResetConnections`] |
//! | what a pipeline reports | [`ReportUnreachable`], [`ReportSnapshot`] ([`SnapshotStatus`]), [`PeerStatusChanged`], [`CriticalError`], [`Dropped`], [`PipelineStats`], [`FollowerStats`] |
//! | receiving | [`receiver`] (routes, [`receiver::ReceiverConfig`], snapshot sinks), [`Inbound`], [`ReceivedSnapshot`], [`ProcessError`], [`nodelay`] |
//! | streams (etcd's `/raft/stream/*`) | [`TransportConfig::with_streams`] for a whole member; or by hand: [`stream_routes`] ([`StreamRoutes`], [`StreamWriters`], [`RemovedCheck`]), [`StreamWriterActor`] ([`StreamSend`], [`StopStream`]), [`StreamReaderActor`] ([`StreamReaderConfig`], [`StreamReaderStatus`]), [`StreamType`], the codecs [`StreamEncoder`] and [`StreamDecoder`] ([`StreamDecodeError`]), [`STREAM_BUF_SIZE`], [`CONN_READ_TIMEOUT`], [`HEARTBEAT_INTERVAL`], [`DIAL_RETRY_FREQUENCY`], [`READ_BYTES_LIMIT`] |
//! | operating it | [`metrics`] ([`Metrics`]: etcd's `etcd_network_*` families in your registry), [`prober`] ([`Prober`]: etcd's per-peer round trip and clock check), `tls` (feature `tls`: mutual TLS with etcd's allow-lists) |
//! | wire types | [`raftpb`]; with the `raft-rs` feature, `raft_rs`: lossless conversions to and from raft-rs (tikv's `raft`) |
//! | errors | [`Error`], [`TransportError`] |
//! | defaults (etcd's names) | [`CONN_PER_PIPELINE`], [`PIPELINE_BUF_SIZE`], [`DIAL_TIMEOUT`], [`RESPONSE_TIMEOUT`], [`RESPONSE_TIMEOUT_PER_MIB`], [`SNAPSHOT_STALL_TIMEOUT`], [`SNAPSHOT_LIMIT_BYTES`], [`SERVER_VERSION`], [`MIN_CLUSTER_VERSION`] |
//!
//! # Quick start
//!
//! ```no_run
//! use actix::prelude::*;
//! use actix_web::{App, HttpServer};
//! use rafthttp_pipeline::raftpb::{Message, MessageType};
//! use rafthttp_pipeline::receiver::{self, ReceiverConfig};
//! use rafthttp_pipeline::*;
//!
//! /// Stands in for your raft node.
//! struct Raft;
//! impl Actor for Raft {
//!     type Context = Context<Self>;
//! }
//! impl Handler<Inbound> for Raft {
//!     type Result = Result<(), ProcessError>;
//!     fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
//!         println!("received {:?}", inbound.message.msg_type());
//!         Ok(()) // step raft here; Ok answers 204
//!     }
//! }
//! impl Handler<ReportUnreachable> for Raft {
//!     type Result = ();
//!     fn handle(&mut self, r: ReportUnreachable, _: &mut Context<Self>) {
//!         println!("peer {} unreachable: {}", r.to, r.reason);
//!     }
//! }
//! impl Handler<ReportSnapshot> for Raft {
//!     type Result = ();
//!     fn handle(&mut self, r: ReportSnapshot, _: &mut Context<Self>) {
//!         println!("snapshot to {}: {:?}", r.to, r.status);
//!     }
//! }
//!
//! #[actix::main]
//! async fn main() -> std::io::Result<()> {
//!     let raft = Raft.start();
//!     // This member, as every pipeline and the receiver describe it.
//!     let me = LocalMember::new(Id(1), Id(0x1000)).peer_urls(vec!["http://127.0.0.1:2380".into()]);
//!
//!     // Receive: etcd's /raft routes in your App.
//!     let config = ReceiverConfig::new(&me, raft.clone().recipient());
//!     let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!         .on_connect(nodelay::on_connect)
//!         .bind(("127.0.0.1", 2380))?
//!         .run();
//!     actix_web::rt::spawn(server);
//!
//!     // Send: one pipeline per remote peer.
//!     let config = PipelineConfig::new(&me, Id(2), vec!["http://127.0.0.1:2390".into()]);
//!     let pipeline = PipelineActor::start(config, Recipients::from_addr(&raft))
//!         .expect("valid configuration");
//!     let heartbeat = Message { r#type: MessageType::MsgHeartbeat as i32, to: 2, from: 1, ..Default::default() };
//!     if let Err(dropped) = pipeline.send(Envelope(heartbeat)).await.expect("pipeline running") {
//!         println!("{dropped}"); // raft was told already
//!     }
//!     let stats = pipeline.send(Stop).await.expect("pipeline running");
//!     assert_eq!(stats.offered, stats.delivered + stats.reported());
//!     Ok(())
//! }
//! ```
//!
//! # Snapshots: inline or streamed
//!
//! A snapshot can travel two ways, as in etcd:
//!
//! - **Inline**, a `MsgSnap` [`Envelope`] whose `snapshot.data` holds the
//!   whole state, through the pipeline's `POST /raft`, as etcd's
//!   raftexample does. Simple, but the whole message is encoded, sent and
//!   decoded in memory on both ends, within
//!   [`receiver::MAX_MESSAGE_BYTES`]: use it for small state machines.
//! - **Streamed**, a [`SendSnapshot`] with the `MsgSnap` and the database
//!   as a byte stream, through `POST /raft/snapshot`, as etcd sends its
//!   bbolt database. The receiver streams it into a
//!   [`receiver::SnapshotSink`] (a directory by default, written
//!   as etcd's `SaveDBFrom` does) and hands raft the `MsgSnap` with
//!   [`Inbound::snapshot`] saying where the database is. Memory stays flat
//!   whatever the size: use it for a real database, and to receive one
//!   from etcd.
//!
//! # Backpressure and drops
//!
//! A pipeline carries at most `connections` (4) messages at once and lets
//! at most `buffer` (64) more wait, so 68 are taken while the peer
//! blocks. The next [`Envelope`] is dropped at once: the answer is
//! [`Dropped`], and raft is told with [`ReportUnreachable`] (plus
//! [`ReportSnapshot`] with [`SnapshotStatus::Failure`] for a `MsgSnap`),
//! exactly as etcd's `peer.send` does when its buffer is full. A failed POST
//! is not retried: raft resends. At most `connections - 1` senders carry a
//! `MsgSnap` at once, so votes and heartbeats always find a free sender.
//!
//! # Stop and cancellation
//!
//! [`Stop`] cancels the requests in flight (their connections are dropped
//! mid-request), reports every message not delivered, queued or in flight,
//! and resolves once every sender has stopped, with the final
//! [`PipelineStats`]. Unlike etcd, nothing is dropped silently: after `Stop`,
//! `offered == delivered + reported()`. Envelopes sent after `Stop` are
//! refused with [`Error::Stopped`] and reported too. [`ResetConnections`]
//! stops the senders so their supervisors restart them with fresh clients;
//! a message held at that moment is reported as [`Error::SenderStopped`].
//!
//! Reporting is at-least-once: a message reported as not delivered may
//! still have been processed by the peer. A POST cancelled by `Stop` or
//! [`ResetConnections`], or one that timed out or lost its connection, may
//! have been processed before its 204 was read. Only a message that went
//! out can end so (one still queued at `Stop` never did), so after `Stop`
//! the peer may have processed up to `connections` more messages than
//! `delivered`, plus any that failed that way earlier. Raft tolerates this
//! as it tolerates a lost answer in etcd: it resends by index what it
//! believes lost, and a follower skips entries it already has (same index
//! and term), so a message processed twice does no harm.
//!
//! # Metrics, the prober and merged warnings
//!
//! [`Metrics::register`] puts etcd's fifteen `etcd_network_*` families
//! (same names, types, help texts, labels and buckets as etcd 3.4.23) in a
//! `prometheus::Registry` you own; give the handle to
//! [`PipelineConfig::metrics`] and
//! [`ReceiverConfig::metrics`](receiver::ReceiverConfig::metrics), and
//! mount [`metrics::http::configure`] to serve `GET /metrics`. The
//! pipeline counts where it counts [`PipelineStats`], so the two agree.
//! Labels are member ids, never addresses. [`Prober`] probes each peer's
//! `/raft/probing` as etcd does, for the round-trip histogram, a health
//! view and etcd's warnings on an unhealthy peer or a clock more than a
//! second off. The receiver merges repeated refusal warnings into counts
//! (`[merged N repeated lines in T]`), as etcd's merge logger does.
//!
//! # Timeouts
//!
//! etcd's pipeline has no response timeout, so one silent peer can hold all
//! four workers. Here a connection must open within
//! [`config::DIAL_TIMEOUT`] and an answer must come within
//! [`config::RESPONSE_TIMEOUT`] plus [`config::RESPONSE_TIMEOUT_PER_MIB`]
//! for each MiB of body, so a large `MsgSnap` is not killed by a timeout
//! sized for heartbeats.
//!
//! # Mutual TLS (feature `tls`)
//!
//! With the `tls` feature (off by default), the `tls` module speaks etcd's
//! peer TLS with rustls 0.23 (the `ring` provider): `TlsInfo` takes etcd's
//! `--peer-*` settings and loads a `PeerTls`, whose client configuration
//! goes to `PipelineConfig::tls` (the senders post to `https://` URLs with
//! a client certificate) and whose server configuration goes to actix-web's
//! `HttpServer::bind_rustls_0_23` (client certificates required and
//! verified in the handshake, with etcd's `--peer-cert-allowed-cn` and
//! `--peer-cert-allowed-hostname`). Certificate files are read again when
//! they change, for new connections.
//!
//! # Wire compatibility
//!
//! - HTTP/1.1 only: etcd's peer port sends HTTP/2 to gRPC.
//! - `POST <peer url>/raft` with etcd's headers: `Content-Type:
//!   application/protobuf`, `X-Server-From`, `X-Server-Version` (3.4.23),
//!   `X-Min-Cluster-Version` (3.0.0), `X-Etcd-Cluster-ID`, and `X-PeerURLs`
//!   when local URLs are set. Ids are lower-case hex ([`Id`]).
//! - Only 204 is success; a 412 body tells incompatible version from
//!   cluster id mismatch; 403 means this member was removed
//!   ([`CriticalError`]).
//! - [`raftpb`] encodes byte-identically to etcd 3.4.23 and decodes what it
//!   accepts, plus newer etcd's sparse encoding.
//! - The receiver answers with etcd's statuses and bodies, in etcd's order
//!   of checks, but never panics on remote input and caps body sizes.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![warn(unreachable_pub)]

mod body;
mod busy_poll;
mod config;
mod dispatch;
mod error;
mod etcd_text;
mod id;
mod local_member;
mod log_limit;
pub mod membership;
mod messages;
pub mod metrics;
pub mod nodelay;
mod peer;
mod peer_status;
mod peer_url;
mod picker;
mod pipeline;
mod pool;
pub mod prober;
#[cfg(feature = "raft-rs")]
pub mod raft_rs;
pub mod raftpb;
pub mod receiver;
mod sender;
mod snapshot;
mod snapshot_source;
mod stats;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
mod version;
mod wire;

pub use config::{
    PipelineConfig, SenderPlacement, CONN_PER_PIPELINE, DIAL_TIMEOUT, PIPELINE_BUF_SIZE,
    RESPONSE_TIMEOUT, RESPONSE_TIMEOUT_PER_MIB, SNAPSHOT_STALL_TIMEOUT,
};
pub use error::{Error, TransportError};
pub use id::Id;
pub use local_member::LocalMember;
pub use membership::InitialCluster;
pub use messages::{
    CriticalError, Dropped, Envelope, GetStats, Inbound, PeerStatusChanged, ProcessError,
    ReceivedSnapshot, ReportSnapshot, ReportUnreachable, ResetConnections, SendSnapshot,
    SnapshotStatus, Stop, UpdateUrls,
};
pub use metrics::Metrics;
pub use peer_url::PeerUrl;
pub use pipeline::{PipelineActor, Recipients};
pub use prober::Prober;
pub use sender::SenderActor;
pub use snapshot::{SnapshotBody, SNAPSHOT_LIMIT_BYTES};
pub use snapshot_source::{body_from_bytes, body_from_reader};
pub use stats::{FollowerStats, PipelineStats};
pub use stream::{
    stream_routes, RemovedCheck, StopStream, StreamDecodeError, StreamDecoder, StreamEncoder,
    StreamReaderActor, StreamReaderConfig, StreamReaderStatus, StreamRoutes, StreamSend,
    StreamType, StreamWriterActor, StreamWriters, CONN_READ_TIMEOUT, DIAL_RETRY_FREQUENCY,
    HEARTBEAT_INTERVAL, READ_BYTES_LIMIT, STREAM_BUF_SIZE,
};
pub use transport::{Member, MemberBuilder, Transport, TransportConfig};
pub use version::{MIN_CLUSTER_VERSION, SERVER_VERSION};

/// Not part of the API: pieces the benchmark and the integration tests
/// reach for to measure or build raw requests. They may change at any time.
#[doc(hidden)]
pub mod internals {
    pub use crate::sender::http_client;
    pub use crate::snapshot::frame_head;
    pub use crate::wire::check_post_response;
}

/// Compiles the README's examples as doctests, so its quick start stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

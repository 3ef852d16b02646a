//! Pipeline configuration and the defaults it starts from.

use std::time::Duration;

use actix::ArbiterHandle;

use crate::error::Error;
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::peer_url::PeerUrl;
use crate::version::{MIN_CLUSTER_VERSION, SERVER_VERSION};

/// What a sender's client connects with for `https://` URLs: rustls's
/// client configuration with the `tls` feature, nothing without it.
#[cfg(feature = "tls")]
pub(crate) type ClientTls = std::sync::Arc<rustls::ClientConfig>;
/// Without the `tls` feature there is no TLS configuration to hold.
#[cfg(not(feature = "tls"))]
pub(crate) type ClientTls = std::convert::Infallible;

/// How many senders, hence POSTs in flight, a pipeline has
/// (etcd `connPerPipeline`, `rafthttp/pipeline.go:35`).
pub const CONN_PER_PIPELINE: usize = 4;

/// How many messages may wait beside the ones in flight
/// (etcd `pipelineBufSize`, `rafthttp/pipeline.go:40`).
pub const PIPELINE_BUF_SIZE: usize = 64;

/// How long a connection may take to open (etcd `peerDialTimeout()` with
/// default ticks: 1 s + 10 ticks of 100 ms, `etcdserver/config.go:296`).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a small message may wait for its answer. etcd has none
/// (`rafthttp/util.go:46`), so one silent peer can hold every worker.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra response time per MiB of body, so a large `MsgSnap` is not killed
/// by a timeout sized for heartbeats (1 MiB/s). No etcd equivalent.
pub const RESPONSE_TIMEOUT_PER_MIB: Duration = Duration::from_secs(1);

/// How long a streamed snapshot may go without a byte moving, or wait for
/// its answer after the last byte, before it fails. etcd has no upload
/// timeout at all (`rafthttp/snapshot_sender.go`), and its receiver gives
/// up after 5 s without a read; this is a stall timeout, not a total one,
/// so a large database is never killed for being large.
pub const SNAPSHOT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the pipeline's [`SenderActor`](crate::sender::SenderActor)s run.
///
/// The default is [`SenderPlacement::Current`]: measured with
/// `examples/bench`, every message otherwise hops threads twice (to the
/// sender and back), which cost about two thirds of the sender's CPU per
/// small message (BENCHMARKS.md). Spread a node with many busy peers over
/// threads with [`SenderPlacement::SharedPool`], or start each pipeline on
/// an arbiter of its own.
#[derive(Clone, Default)]
pub enum SenderPlacement {
    /// A small pool of arbiters shared by every pipeline of the running
    /// actix `System` (one per CPU, at most [`CONN_PER_PIPELINE`]). A node
    /// with dozens of peers does not get a thread per sender per peer.
    SharedPool,
    /// On the arbiter the pipeline runs on: no thread hops at all, at the
    /// cost of sharing that thread with the pipeline.
    #[default]
    Current,
    /// On these arbiters, sender `i` on `arbiters[i % len]`.
    Arbiters(Vec<ArbiterHandle>),
}

impl std::fmt::Debug for SenderPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SenderPlacement::SharedPool => f.write_str("SharedPool"),
            SenderPlacement::Current => f.write_str("Current"),
            SenderPlacement::Arbiters(a) => write!(f, "Arbiters({})", a.len()),
        }
    }
}

/// Everything a [`PipelineActor`](crate::PipelineActor) needs to know about
/// its peer. Build it with [`PipelineConfig::new`]; every other field has
/// etcd's default, and [`PipelineConfig::validate`] checks it.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// This member: its id, its cluster's id and its advertised URLs.
    pub local: LocalMember,
    /// The remote peer's id; callbacks name it.
    pub peer_id: Id,
    /// The peer's URLs (`http://host:port`); the picker uses them sorted.
    pub peer_urls: Vec<String>,
    /// `X-Server-Version` (default [`SERVER_VERSION`]).
    pub server_version: String,
    /// `X-Min-Cluster-Version` (default [`MIN_CLUSTER_VERSION`]).
    pub min_cluster_version: String,
    /// Senders, i.e. POSTs in flight (default [`CONN_PER_PIPELINE`]).
    pub connections: usize,
    /// Messages that may wait beside those in flight
    /// (default [`PIPELINE_BUF_SIZE`]).
    pub buffer: usize,
    /// Connect timeout (default [`DIAL_TIMEOUT`]).
    pub dial_timeout: Duration,
    /// Response timeout for a small body (default [`RESPONSE_TIMEOUT`]).
    pub response_timeout: Duration,
    /// Extra response time per MiB of body
    /// (default [`RESPONSE_TIMEOUT_PER_MIB`]).
    pub response_timeout_per_mib: Duration,
    /// How long a streamed snapshot may stall
    /// (default [`SNAPSHOT_STALL_TIMEOUT`]).
    pub snapshot_stall_timeout: Duration,
    /// Where the senders run (default [`SenderPlacement::Current`]).
    pub placement: SenderPlacement,
    /// TLS for `https://` peer URLs: the client certificate and the
    /// trusted CA (default none: plain HTTP only). Usually
    /// [`PeerTls::client_config`](crate::tls::PeerTls::client_config).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl PipelineConfig {
    /// A pipeline from `local` to peer `peer_id` at `peer_urls`, with
    /// etcd's defaults for everything else.
    pub fn new(local: &LocalMember, peer_id: Id, peer_urls: Vec<String>) -> Self {
        PipelineConfig {
            local: local.clone(),
            peer_id,
            peer_urls,
            server_version: SERVER_VERSION.to_owned(),
            min_cluster_version: MIN_CLUSTER_VERSION.to_owned(),
            connections: CONN_PER_PIPELINE,
            buffer: PIPELINE_BUF_SIZE,
            dial_timeout: DIAL_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
            response_timeout_per_mib: RESPONSE_TIMEOUT_PER_MIB,
            snapshot_stall_timeout: SNAPSHOT_STALL_TIMEOUT,
            placement: SenderPlacement::Current,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Sets the number of senders (POSTs in flight).
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Sets the number of messages that may wait.
    pub fn buffer(mut self, n: usize) -> Self {
        self.buffer = n;
        self
    }

    /// Sets the response timeout for a small body.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// Sets how long a streamed snapshot may stall.
    pub fn snapshot_stall_timeout(mut self, timeout: Duration) -> Self {
        self.snapshot_stall_timeout = timeout;
        self
    }

    /// Sets where the senders run.
    pub fn placement(mut self, placement: SenderPlacement) -> Self {
        self.placement = placement;
        self
    }

    /// Sets the TLS client configuration for `https://` peer URLs.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The senders' TLS configuration, if any (always none without the
    /// `tls` feature).
    pub(crate) fn client_tls(&self) -> Option<ClientTls> {
        #[cfg(feature = "tls")]
        return self.tls.clone();
        #[cfg(not(feature = "tls"))]
        return None;
    }

    /// The response timeout for a body of `len` bytes: the base timeout
    /// plus [`PipelineConfig::response_timeout_per_mib`] for each MiB.
    pub fn response_timeout_for(&self, len: usize) -> Duration {
        let mib = (len as f64) / (1024.0 * 1024.0);
        self.response_timeout + self.response_timeout_per_mib.mul_f64(mib)
    }

    /// Checks the configuration: at least one valid peer URL, at least one
    /// sender, valid local URLs, and non-zero timeouts.
    pub fn validate(&self) -> Result<(), Error> {
        if self.peer_urls.is_empty() {
            return Err(Error::InvalidConfig("peer_urls is empty".into()));
        }
        if self.connections == 0 {
            return Err(Error::InvalidConfig(
                "connections must be at least 1".into(),
            ));
        }
        let timeouts = [
            self.dial_timeout,
            self.response_timeout,
            self.snapshot_stall_timeout,
        ];
        if timeouts.iter().any(Duration::is_zero) {
            return Err(Error::InvalidConfig("timeouts must be non-zero".into()));
        }
        for url in &self.peer_urls {
            crate::picker::pipeline_url(url)?;
        }
        for url in &self.local.peer_urls {
            PeerUrl::parse(url)?;
        }
        Ok(())
    }
}

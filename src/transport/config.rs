//! What a [`Transport`](super::Transport) needs to start a pipeline to
//! any peer.

use std::time::Duration;

use crate::config::PipelineConfig;
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::prober::ProberConfig;
use crate::stream::StreamWriters;

/// The member's identity and the settings every peer's pipeline starts
/// with.
///
/// The pipeline settings live in one [`PipelineConfig`] used as a
/// template: [`TransportConfig::peer_config`] copies it and fills in the
/// peer's id and URLs, so every setting the pipeline has (buffer,
/// connections, timeouts, placement) is set once here for all peers.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The template for every peer's pipeline; its `peer_id` and
    /// `peer_urls` are replaced per peer.
    pub pipeline: PipelineConfig,
    /// How each peer is probed, as etcd's transport probes every peer it
    /// adds (default: not at all). The round trips go to the template's
    /// [`PipelineConfig::metrics`].
    pub prober: Option<ProberConfig>,
    /// etcd's streams to every peer (default off: the pipeline alone).
    /// With a table, each peer gets a stream writer and reader of each
    /// type, and messages take etcd's `peer.pick` road; the member's
    /// server must mount [`stream_routes`](crate::stream_routes) on the
    /// same table ([`MemberBuilder`](super::MemberBuilder) does).
    pub streams: Option<StreamWriters>,
    /// How long a thread keeps polling its sockets, instead of sleeping,
    /// after a stream writer sent messages (default none: it sleeps at
    /// once). Spends CPU to cut the round trip by the wake-up of an idle
    /// CPU; see [`busy_poll`](Self::busy_poll).
    pub busy_poll: Option<Duration>,
}

impl TransportConfig {
    /// A configuration for `local` (its URLs are sent to every peer as
    /// `X-PeerURLs`, etcd's `Transport.URLs`), with etcd's pipeline
    /// defaults.
    pub fn new(local: &LocalMember) -> Self {
        TransportConfig {
            pipeline: PipelineConfig::new(local, Id(0), Vec::new()),
            prober: None,
            streams: None,
            busy_poll: None,
        }
    }

    /// Probes every peer with `config`, e.g. `ProberConfig::default()` for
    /// etcd's intervals; ask the transport [`GetHealth`](crate::prober::GetHealth).
    pub fn probe(mut self, config: ProberConfig) -> Self {
        self.prober = Some(config);
        self
    }

    /// Turns etcd's streams on, with a fresh writer table.
    pub fn with_streams(mut self) -> Self {
        self.streams = Some(StreamWriters::default());
        self
    }

    /// After a stream writer hands messages to its socket, keeps its
    /// thread polling for `window` instead of sleeping, so that the answer
    /// finds it awake: a sleeping thread on an idle CPU is woken by an
    /// interrupt, which on a virtual machine costs tens of microseconds
    /// per hop (Go's scheduler spins before it parks for the same reason).
    /// The thread is busy for up to `window` after each send, so this
    /// trades CPU for latency; 50–100 µs covers a loopback round trip.
    /// Best with [`MemberBuilder::start_on_one_thread`](super::MemberBuilder::start_on_one_thread),
    /// where the answer arrives on the same thread.
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = Some(window);
        self
    }

    /// Changes the pipeline template, e.g.
    /// `config.pipeline_with(|p| p.buffer(128))`.
    pub fn pipeline_with(mut self, f: impl FnOnce(PipelineConfig) -> PipelineConfig) -> Self {
        self.pipeline = f(self.pipeline);
        self
    }

    /// This member's id.
    pub fn local_id(&self) -> Id {
        self.pipeline.local.id
    }

    /// The configuration of the pipeline to `peer` at `urls`.
    pub fn peer_config(&self, peer: Id, urls: Vec<String>) -> PipelineConfig {
        PipelineConfig {
            peer_id: peer,
            peer_urls: urls,
            ..self.pipeline.clone()
        }
    }
}

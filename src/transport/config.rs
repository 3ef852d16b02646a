//! What a [`Transport`](super::Transport) needs to start a pipeline to
//! any peer.

use crate::config::PipelineConfig;
use crate::id::Id;
use crate::local_member::LocalMember;

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
}

impl TransportConfig {
    /// A configuration for `local` (its URLs are sent to every peer as
    /// `X-PeerURLs`, etcd's `Transport.URLs`), with etcd's pipeline
    /// defaults.
    pub fn new(local: &LocalMember) -> Self {
        TransportConfig {
            pipeline: PipelineConfig::new(local, Id(0), Vec::new()),
        }
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

//! This member as its peers see it: the one description of the local
//! member that every pipeline and the receiver share.

use crate::id::Id;

/// This member: its id, its cluster's id, and the peer URLs it advertises.
///
/// Every [`PipelineConfig`](crate::PipelineConfig) and the
/// [`ReceiverConfig`](crate::receiver::ReceiverConfig) start from the same
/// `LocalMember`, so the id sent as `X-Server-From`, the cluster id checked
/// and sent as `X-Etcd-Cluster-ID`, and the URLs sent as `X-PeerURLs` agree
/// everywhere and are written once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMember {
    /// This member's id (`X-Server-From`).
    pub id: Id,
    /// The cluster's id (`X-Etcd-Cluster-ID`).
    pub cluster_id: Id,
    /// This member's peer URLs, sent sorted as `X-PeerURLs`; empty omits
    /// the header, as etcd does when `tr.URLs` is nil.
    pub peer_urls: Vec<String>,
}

impl LocalMember {
    /// Member `id` of cluster `cluster_id`, advertising no URLs.
    pub fn new(id: Id, cluster_id: Id) -> Self {
        LocalMember {
            id,
            cluster_id,
            peer_urls: Vec::new(),
        }
    }

    /// Sets the peer URLs this member advertises (`X-PeerURLs`).
    pub fn peer_urls(mut self, urls: Vec<String>) -> Self {
        self.peer_urls = urls;
        self
    }
}

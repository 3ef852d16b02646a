//! Why a [`Transport`](super::Transport) refused an operation.

use crate::error::Error;
use crate::id::Id;

/// Why the transport refused to add, update or address a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The transport was stopped; it takes no new peers (etcd panics with
    /// `transport stopped`).
    #[error("transport stopped")]
    Stopped,
    /// The operation names a peer the transport does not have.
    #[error("unknown peer {0}")]
    UnknownPeer(Id),
    /// A member cannot be its own peer: raft never sends to itself.
    #[error("peer {0} is this member")]
    LocalMember(Id),
    /// The peer's pipeline refused its configuration, e.g. a URL that is
    /// not `http://host:port` (etcd panics on such URLs).
    #[error(transparent)]
    Pipeline(#[from] Error),
}

/// The reason given to raft for a message to a peer the transport does
/// not know: etcd's `errMemberNotFound` (`rafthttp/util.go`), which its
/// `SendSnapshot` reports for an unknown peer.
pub(crate) fn member_not_found() -> Error {
    Error::MemberNotFound
}

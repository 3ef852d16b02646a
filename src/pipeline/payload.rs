//! What the pipeline carries to its senders, and where they post it: the
//! payload the per-peer core holds unopened, and the peer's URLs with
//! etcd's two paths.

use awc::http::Uri;
use bytes::Bytes;

use crate::body::Body;
use crate::error::Error;
use crate::peer::WireLen;
use crate::peer_url::PeerUrl;
use crate::raftpb::Message;
use crate::snapshot::{frame_head, SnapshotBody};
use crate::wire::{request_uri, RAFT_PREFIX, RAFT_SNAPSHOT_PREFIX};

/// An encoded message, or a framed snapshot with its database stream.
pub(super) enum Payload {
    /// A message for `POST /raft`, encoded once.
    Message(Body),
    /// A snapshot for `POST /raft/snapshot`.
    Snapshot {
        /// The 8-byte length and the encoded `MsgSnap`.
        head: Bytes,
        /// The database.
        body: SnapshotBody,
        /// The exact size of the database.
        size: u64,
    },
}

impl Payload {
    /// `message`, encoded.
    pub(super) fn message(message: &Message) -> Self {
        Payload::Message(Body::encode(message))
    }

    /// A snapshot whose head is `message` and whose database is `size`
    /// bytes of `body`.
    pub(super) fn snapshot(message: &Message, body: SnapshotBody, size: u64) -> Self {
        Payload::Snapshot {
            head: frame_head(message),
            body,
            size,
        }
    }
}

impl WireLen for Payload {
    fn wire_len(&self) -> u64 {
        match self {
            Payload::Message(body) => body.len() as u64,
            Payload::Snapshot { head, size, .. } => head.len() as u64 + size,
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Message(body) => write!(f, "Message({} bytes)", body.len()),
            Payload::Snapshot { size, .. } => write!(f, "Snapshot({size} bytes)"),
        }
    }
}

/// A peer URL with etcd's two paths.
#[derive(Debug, Clone)]
pub(super) struct PeerUris {
    /// `<url>/raft`.
    pub(super) raft: Uri,
    /// `<url>/raft/snapshot`.
    pub(super) snapshot: Uri,
}

/// The request URIs for each of `urls`, in the same order.
pub(super) fn peer_uris(urls: &[PeerUrl]) -> Result<Vec<PeerUris>, Error> {
    let uris = |u: &PeerUrl| {
        Ok(PeerUris {
            raft: request_uri(u, RAFT_PREFIX)?,
            snapshot: request_uri(u, RAFT_SNAPSHOT_PREFIX)?,
        })
    };
    urls.iter().map(uris).collect()
}

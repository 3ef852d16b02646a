//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// Messages match etcd 3.4.23's texts where etcd has one
/// (`rafthttp/http.go`, `rafthttp/util.go`), so logs read the same on both
/// sides. Branch on the predicates ([`Error::is_timeout`], ...) rather than
/// on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer answered 412 `incompatible version`: its version and ours do
    /// not overlap (`errIncompatibleVersion`). Upgrade one side.
    #[error("incompatible version")]
    IncompatibleVersion,
    /// The peer answered 412 `cluster ID mismatch` (`errClusterIDMismatch`):
    /// it belongs to another cluster. Check the configured cluster id.
    #[error("cluster ID mismatch")]
    ClusterIdMismatch,
    /// The peer answered 403: this member was removed from the cluster
    /// (`errMemberRemoved`). This is critical: the member should stop.
    #[error("the member has been permanently removed from the cluster")]
    MemberRemoved,
    /// The peer answered 412 with a body etcd does not know.
    #[error("unhandled error {0:?} when precondition failed")]
    UnhandledPrecondition(String),
    /// The peer answered a status other than 204 (etcd's text, with Go's
    /// status text and the request URL).
    #[error("unexpected http status {status} while posting to {url:?}")]
    UnexpectedStatus {
        /// Go's `http.StatusText` of the answer, e.g. `Internal Server Error`.
        status: String,
        /// The URL that was posted to.
        url: String,
    },
    /// The connection could not be made or broke (connect refused, reset,
    /// body cut short).
    #[error("{0}")]
    Transport(String),
    /// No answer came in time: the connect timeout or the response timeout
    /// of [`crate::PipelineConfig`] passed.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The message was cancelled because the pipeline stopped (`errStopped`).
    #[error("stopped")]
    Stopped,
    /// The sender carrying the message stopped before it finished; its
    /// supervisor restarts it.
    #[error("sender stopped before the request finished")]
    SenderStopped,
    /// The queue was full, so the message was dropped (etcd's
    /// "sending buffer is full").
    #[error("dropped since sending buffer is full")]
    BufferFull,
    /// A snapshot's database stream ended before its declared size
    /// (etcd's `ErrShortRead`).
    #[error("ioutil: short read")]
    ShortRead,
    /// A snapshot's database stream went on past its declared size
    /// (etcd's `ErrExpectEOF`).
    #[error("ioutil: expect EOF")]
    ExpectEof,
    /// A [`SendSnapshot`](crate::SendSnapshot) carried a message that is
    /// not a `MsgSnap` (etcd's receiver answers `wrong raft message type`).
    #[error("wrong raft message type")]
    WrongMessageType,
    /// No snapshot bytes moved for the configured stall timeout.
    #[error("snapshot stalled: no bytes moved for {0:?}")]
    Stalled(Duration),
    /// A snapshot's framed message is longer than the receiver accepts
    /// (etcd's `ErrExceedSizeLimit`).
    #[error("rafthttp: error limit exceeded (message of {len} bytes, limit {limit})")]
    SnapshotTooLarge {
        /// The length the frame announced.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A string is not a valid id (lower-case or upper-case hex, 64 bits).
    #[error("invalid id {0:?}")]
    InvalidId(String),
    /// A URL cannot be used as a peer URL.
    #[error("invalid peer URL {0:?}")]
    InvalidUrl(String),
    /// A configuration value is out of range; the text names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// Whether the error is a timeout (connect or response).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::Stalled(_))
    }

    /// Whether the error means this member was removed from the cluster.
    pub fn is_member_removed(&self) -> bool {
        matches!(self, Error::MemberRemoved)
    }

    /// Whether the message was cancelled by a stop rather than failing.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Error::Stopped)
    }
}

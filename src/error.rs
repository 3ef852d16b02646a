//! The crate's one error type.

use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// Messages match etcd 3.4.23's texts where etcd has one
/// (`rafthttp/http.go`, `rafthttp/util.go`), so logs read the same on both
/// sides. Branch on the predicates ([`Error::is_timeout`], ...) rather than
/// on the text. A [`Error::Transport`] names what failed and keeps the
/// error beneath it as its [`source`](std::error::Error::source): walk the
/// chain to log the whole story. New variants may come in a minor release, so a `match` needs
/// a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// body cut short). Its [`source`](std::error::Error::source) is the
    /// underlying I/O or protocol error when there is one.
    #[error(transparent)]
    Transport(TransportError),
    /// No answer came in time: the connect timeout or the response timeout
    /// of [`crate::PipelineConfig`] passed.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The message was for a peer the [`Transport`](crate::Transport) does
    /// not know (`errMemberNotFound`): add the peer, or drop the message.
    #[error("member not found")]
    MemberNotFound,
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
    /// A [`Error::Transport`] saying what failed (`context`), keeping the
    /// error beneath it as its source.
    pub fn transport<E>(context: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Transport(TransportError {
            context: context.into(),
            source: Some(Arc::new(source)),
        })
    }

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

/// Why a connection could not be made or broke: what failed, and the error
/// beneath it when one can be kept (an I/O or protocol error).
///
/// `Display` shows only what failed; the error beneath it is the
/// [`source`](std::error::Error::source), as the error-handling convention
/// wants, so a reporter that walks the chain prints each cause once. Two
/// transport errors are equal when they read the same, cause included, so
/// [`Error`] stays `Clone` and `Eq` while keeping its source.
#[derive(Debug, Clone)]
pub struct TransportError {
    context: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A failure described by `context` alone, for an underlying error that
    /// cannot be kept (one that may not cross threads).
    pub fn new(context: impl Into<String>) -> Self {
        TransportError {
            context: context.into(),
            source: None,
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source = self.source.as_deref()?;
        Some(source)
    }
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        let cause = |e: &Self| e.source.as_ref().map(|s| s.to_string());
        self.context == other.context && cause(self) == cause(other)
    }
}

impl Eq for TransportError {}

/// `error` and every error beneath it, joined with `": "`, e.g.
/// `failed to connect to host: Connection refused (os error 111)`: the
/// whole story in one line, for logs and etcd's peer-status reasons.
pub(crate) fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;

    fn refused() -> Error {
        let io = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        Error::transport("failed to connect to host", io)
    }

    #[test]
    fn a_transport_error_keeps_its_source() {
        let err = refused();
        assert_eq!(err.to_string(), "failed to connect to host");
        let source = err.source().expect("the I/O error is kept");
        let io = source.downcast_ref::<io::Error>().expect("as an io::Error");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            chain_text(&err),
            "failed to connect to host: connection refused"
        );
    }

    #[test]
    fn transport_errors_are_equal_when_they_read_the_same() {
        assert_eq!(refused(), refused().clone());
        assert_ne!(
            refused(),
            Error::Transport(TransportError::new("failed to connect to host"))
        );
        assert_ne!(refused(), Error::Stopped);
    }

    #[test]
    fn chain_text_of_an_error_without_source_is_its_text() {
        assert_eq!(
            chain_text(&Error::BufferFull),
            "dropped since sending buffer is full"
        );
    }
}

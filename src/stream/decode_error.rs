//! Why a stream's bytes could not be decoded. Every case that makes etcd
//! 3.4.23 panic (its issue #12850: `MustUnmarshal` on garbage, `make` with
//! an untrusted length) is one of these errors here.

use crate::etcd_text::{ERR_EXCEED_SIZE_LIMIT, GO_EOF, GO_UNEXPECTED_EOF};

/// A stream decoder's error. The texts are etcd's and Go's where etcd has
/// one, so peer-status and log lines read as etcd's do. The stream that
/// produced it is closed; the next dial starts a fresh decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamDecodeError {
    /// The body ended on a frame or field boundary (Go's `io.EOF`): a clean
    /// end between frames, which etcd's reader does not count as a failure.
    #[error("{GO_EOF}")]
    Eof,
    /// The body ended inside a field (Go's `io.ErrUnexpectedEOF`).
    #[error("{GO_UNEXPECTED_EOF}")]
    UnexpectedEof,
    /// A length field, or the size a frame must reach, is over the limit
    /// (etcd's `ErrExceedSizeLimit`); nothing was allocated for it.
    #[error("{ERR_EXCEED_SIZE_LIMIT}")]
    LimitExceeded {
        /// The size the frame announced.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A msgappv2 frame began with an unknown type byte
    /// (`msgappv2_codec.go`'s text, the type in decimal).
    #[error("failed to parse type {0} in msgappv2 stream")]
    UnknownType(u8),
    /// The bytes of a message are not a raft `Message` (etcd panics with
    /// `unmarshal should never fail` on msgappv2).
    #[error("failed to unmarshal raft message ({0})")]
    Message(prost::DecodeError),
    /// The bytes of an entry are not a raft `Entry` (etcd panics).
    #[error("failed to unmarshal raft entry ({0})")]
    Entry(prost::DecodeError),
}

pub(crate) use StreamDecodeError as DecodeError;

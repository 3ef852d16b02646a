//! A request body read chunk by chunk, with an idle timeout: a peer that
//! stops sending in the middle of a body is cut off, as etcd's peer
//! listener cuts a connection after 5 s without a read
//! (`ConnReadTimeout`, `rafthttp/peer.go:40`).

use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::web;
use bytes::Bytes;
use futures::StreamExt;

use crate::etcd_text::GO_UNEXPECTED_EOF;

/// How long a `/raft` body may send nothing before the request is
/// answered 408 (etcd `ConnReadTimeout`, `rafthttp/peer.go:40`): 5 s.
pub const CONN_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError {
    /// Go's `io.ErrUnexpectedEOF`: the body was cut short.
    #[error("{GO_UNEXPECTED_EOF}")]
    UnexpectedEof,
    /// The connection failed.
    #[error("{0}")]
    Payload(String),
    /// Nothing arrived for the idle timeout.
    #[error("no bytes received for {0:?}")]
    Stalled(Duration),
}

/// The request body, read chunk by chunk with the idle timeout.
pub(crate) struct Inflow {
    payload: web::Payload,
    idle: Duration,
}

impl Inflow {
    /// `payload`, failing once it sends nothing for `idle`.
    pub(crate) fn new(payload: web::Payload, idle: Duration) -> Self {
        Inflow { payload, idle }
    }

    /// The next chunk, `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, ReadError> {
        match actix_web::rt::time::timeout(self.idle, self.payload.next()).await {
            Err(_) => Err(ReadError::Stalled(self.idle)),
            Ok(None) => Ok(None),
            // A body cut short, as Go's readers say it.
            Ok(Some(Err(PayloadError::Incomplete(_)))) => Err(ReadError::UnexpectedEof),
            Ok(Some(Err(e))) => Err(ReadError::Payload(e.to_string())),
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        }
    }
}

//! A request body read chunk by chunk, with an idle timeout: a peer that
//! stops sending in the middle of a body is cut off, as etcd's peer
//! listener cuts a connection after 5 s without a read
//! (`ConnReadTimeout`, `rafthttp/peer.go:40`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::error::PayloadError;
use actix_web::{web, HttpResponse};
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

/// The request body, read chunk by chunk with the idle timeout. It
/// borrows the payload, which the route keeps for [`close_if_unread`].
pub(crate) struct Inflow<'a> {
    payload: &'a mut web::Payload,
    idle: Duration,
}

impl<'a> Inflow<'a> {
    /// `payload`, failing once it sends nothing for `idle`.
    pub(crate) fn new(payload: &'a mut web::Payload, idle: Duration) -> Self {
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

/// Keeps `payload` in `response`'s body until the body is written, so
/// that a connection whose request body was not read to its end is closed
/// after the answer (actix-http checks right after the last body byte).
/// Otherwise actix-http would go on reading a chunked request body to
/// throw it away: an endless one for ever. A body read to its end changes
/// nothing, and the connection is kept alive as usual.
pub(crate) fn close_if_unread(response: HttpResponse, payload: web::Payload) -> HttpResponse {
    response
        .map_body(|_, body| HoldingBody {
            body,
            _payload: payload,
        })
        .map_into_boxed_body()
}

/// A response body that holds the request's payload until it is dropped.
struct HoldingBody {
    body: BoxBody,
    _payload: web::Payload,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

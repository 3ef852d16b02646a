//! The `POST /raft/snapshot` requests: numbered, reported, and the first
//! ones cut mid-body on demand (`--fail-mode cut`).

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::HttpMessage;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use rafthttp_pipeline::receiver::RAFT_SNAPSHOT_PREFIX;
use serde_json::json;

use crate::events::Events;
use crate::flags::CUT_AFTER_BYTES;

/// The connection's socket, recorded when it is accepted, so that
/// `--fail-mode cut` can shut it down.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerSocket(pub(crate) RawFd);

/// Numbers the `POST /raft/snapshot` requests, reports each one and its
/// answer, and cuts the first ones with `--fail-mode cut`. A cut request
/// may have no answer: actix drops a request whose connection is gone.
#[derive(Debug)]
pub(crate) struct SnapshotRequests {
    pub(crate) seen: AtomicU64,
    pub(crate) cut_first: u64,
    pub(crate) events: Events,
}

/// Passes `payload` through until `after` bytes went by, then shuts the
/// connection down (both directions) and fails the body, as a peer that
/// vanished mid-transfer would.
fn cut_after(payload: Payload, socket: PeerSocket, after: u64) -> Payload {
    let stream = futures::stream::unfold(
        (payload, 0u64, false),
        move |(mut payload, mut seen, cut)| async move {
            if cut {
                return None;
            }
            match payload.next().await? {
                Ok(chunk) => {
                    seen += chunk.len() as u64;
                    if seen < after {
                        return Some((Ok(chunk), (payload, seen, false)));
                    }
                    // SAFETY: shutdown(2) on the socket of the connection
                    // whose request this is; actix keeps it open while the
                    // request is served, and shutdown does not close it.
                    unsafe { libc::shutdown(socket.0, libc::SHUT_RDWR) };
                    let cut = io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("connection cut after {seen} bytes (--fail-mode cut)"),
                    );
                    Some((Err(PayloadError::Io(cut)), (payload, seen, true)))
                }
                Err(e) => Some((Err(e), (payload, seen, true))),
            }
        },
    );
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    Payload::from(boxed)
}

/// Numbers a `POST /raft/snapshot`, reports it, and for the first ones
/// with `--fail-mode cut` wraps its body to cut the connection. Returns the
/// request's number; `None` for any other request.
pub(crate) fn snapshot_request(
    requests: &SnapshotRequests,
    req: &mut ServiceRequest,
) -> Option<u64> {
    if req.method() != Method::POST || req.path() != RAFT_SNAPSHOT_PREFIX {
        return None;
    }
    let attempt = requests.seen.fetch_add(1, Ordering::Relaxed) + 1;
    let socket = req.conn_data::<PeerSocket>().copied();
    let cut = match socket {
        Some(socket) if attempt <= requests.cut_first => {
            let payload = req.take_payload();
            req.set_payload(cut_after(payload, socket, CUT_AFTER_BYTES));
            true
        }
        _ => false,
    };
    requests.events.detail(|| {
        json!({"event": "snapshot_request", "attempt": attempt, "cut": cut,
               "remote": req.peer_addr().map(|a| a.to_string())})
    });
    Some(attempt)
}

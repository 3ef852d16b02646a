//! `POST /raft`: etcd's `pipelineHandler` (`rafthttp/http.go:88-166`).
//!
//! The checks in etcd's order (method, versions, cluster id), then our
//! bounds on the request (requests in flight from its sender, declared
//! length, memory budget), then the body, read within the receiver's
//! limits, then the decode, bounded; the raft actor's answer decides the
//! status.

use std::rc::Rc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::answer::{Rejection, Route};
use super::budget::Lease;
use super::checks::{check_declared_length, check_method, declared_length, CheckError};
use super::gather::Gather;
use super::inflow::{close_if_unread, Inflow, ReadError};
use super::worker::{peer_headers, Worker};
use crate::id::Id;
use crate::messages::Inbound;

/// Serves one `POST /raft`.
pub(crate) async fn serve(
    worker: Rc<Worker>,
    req: HttpRequest,
    mut body: web::Payload,
) -> HttpResponse {
    let outcome = receive(&worker, &req, &mut body).await;
    close_if_unread(worker.answers.respond(Route::Raft, &req, outcome), body)
}

/// etcd's steps for a `POST /raft`, with our bounds: the checks, the body,
/// the decode, and the raft actor's answer. The slot and the lease are
/// held until the raft actor answered.
async fn receive(
    worker: &Worker,
    req: &HttpRequest,
    body: &mut web::Payload,
) -> Result<(), Rejection> {
    check_method(req.method().as_str(), "POST")?;
    let headers = peer_headers(req.headers());
    let sender = worker.checks.check(&headers)?;
    let _slot = worker.admit(req, &sender)?;
    let limit = worker.max_message_bytes;
    let declared = declared_length(headers.content_length);
    check_declared_length(declared, limit)?;
    let failed = |_: &Rejection| worker.count(|m| m.receive_failed(sender.from));
    if declared.is_some_and(|len| len > worker.budget.available() as u64) {
        return Err(worker.budget.exhausted().into());
    }
    let mut lease = worker.budget.lease();
    let mut inflow = Inflow::new(body, worker.read_idle_timeout);
    let bytes = read_body(&mut inflow, &mut lease, limit)
        .await
        .inspect_err(failed)?;
    let len = bytes.len() as u64;
    let message = worker
        .decode(bytes, &mut lease, Rejection::Unmarshal)
        .inspect_err(failed)?;
    // etcd labels the bytes with the message's `From` (http.go:139).
    worker.count(|m| m.received(Id(message.from), len));
    let inbound = Inbound {
        message,
        from: sender.from,
        peer_urls: sender.peer_urls,
        snapshot: None,
    };
    worker.deliver(inbound).await
}

/// Reads the whole body as it arrives, each chunk charged to `lease`
/// before it is kept ([`Gather`]); stops with 413 as soon as the body grows
/// past `limit`, with 503 when the budget cannot take it, with 408 when it
/// stalls. The body is copied at most once, and the decoded message's byte
/// fields share the result.
async fn read_body(
    inflow: &mut Inflow<'_>,
    lease: &mut Lease,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let mut body = Gather::default();
    while let Some(chunk) = inflow.next().await.map_err(read_rejection)? {
        if chunk.len() > limit - body.len() {
            return Err(CheckError::TooLarge { limit }.into());
        }
        body.push(chunk, lease)?;
    }
    Ok(body.finish(lease)?)
}

/// The answer to a body that could not be read: 408 for a stall (etcd's
/// read deadline), 400 `error reading raft message` otherwise.
fn read_rejection(e: ReadError) -> Rejection {
    match e {
        ReadError::Stalled(idle) => Rejection::Stalled(idle),
        other => Rejection::Read(other.to_string()),
    }
}

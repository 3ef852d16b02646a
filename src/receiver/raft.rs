//! `POST /raft`: etcd's `pipelineHandler` (`rafthttp/http.go:88-166`).
//!
//! The checks in etcd's order (method, versions, cluster id, declared
//! length), then the body, read whole within the receiver's limit, then
//! the decode; the raft actor's answer decides the status.

use std::rc::Rc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use prost::Message as _;

use super::answer::{Rejection, Route};
use super::checks::{check_declared_length, check_method, declared_length, CheckError};
use super::worker::{peer_headers, Worker};
use crate::id::Id;
use crate::messages::Inbound;
use crate::raftpb::Message as RaftMessage;

/// Serves one `POST /raft`.
pub(crate) async fn serve(
    worker: Rc<Worker>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let outcome = receive(&worker, &req, body).await;
    worker.answers.respond(Route::Raft, &req, outcome)
}

/// etcd's steps for a `POST /raft`: the checks, the body, and the raft
/// actor's answer.
async fn receive(worker: &Worker, req: &HttpRequest, body: web::Payload) -> Result<(), Rejection> {
    check_method(req.method().as_str(), "POST")?;
    let headers = peer_headers(req.headers());
    let sender = worker.checks.check(&headers)?;
    let limit = worker.max_message_bytes;
    let declared = declared_length(headers.content_length);
    check_declared_length(declared, limit)?;
    let failed = |_: &Rejection| worker.count(|m| m.receive_failed(sender.from));
    let bytes = read_body(body, declared, limit).await.inspect_err(failed)?;
    let len = bytes.len() as u64;
    let message = RaftMessage::decode(bytes)
        .map_err(Rejection::Unmarshal)
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

/// Reads the whole body into one buffer, sized up front from the
/// `Content-Length` (never beyond `limit`), and stops with 413 as soon as
/// the body grows past `limit`. Each received chunk is copied once; the
/// result is handed on as `Bytes` without further copies, and the decoded
/// message's byte fields share it.
async fn read_body(
    mut body: web::Payload,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
    let mut buf = BytesMut::with_capacity(capacity);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Rejection::Read(e.to_string()))?;
        if chunk.len() > limit - buf.len() {
            return Err(CheckError::TooLarge { limit }.into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

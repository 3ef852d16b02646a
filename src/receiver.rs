//! The receiving side of the pipeline: etcd's `pipelineHandler`
//! (`rafthttp/http.go:88-166`) as actix-web routes for the user's `App`.
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::{receiver::{self, ReceiverConfig}, Id, Inbound};
//! # async fn run(raft: Recipient<Inbound>) -> std::io::Result<()> {
//! let config = ReceiverConfig::new(Id(1), Id(0x1000), raft).serve_version(true);
//! HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .bind(("127.0.0.1", 2380))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! A `POST /raft` goes through etcd's checks in etcd's order (method,
//! version, cluster id, body, decode) and then reaches the user's raft actor
//! as an [`Inbound`]; its answer becomes the HTTP status. Status codes and
//! bodies are etcd's, byte for byte, except where etcd answers badly
//! (DESIGN.md §4): remote input never panics, a removed member gets a
//! complete 403, a processing error a complete 500, and bodies are capped at
//! [`ReceiverConfig::max_message_bytes`].
//!
//! Requests are served concurrently: each one waits on its own for the raft
//! actor's answer, so a slow `MsgProp` does not hold up the heartbeats
//! behind it, as long as the raft actor answers them independently.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use log::{debug, warn};
use prost::Message as _;

use crate::id::Id;
use crate::messages::{Inbound, ProcessError};
use crate::picker::parse_peer_url;
use crate::raftpb::Message as RaftMessage;
use crate::snapshot_receiver::{self, SnapshotConfig, SnapshotReceiver};
use crate::version::{
    check_version_compatibility, parse_version_header, Version, CLUSTER_VERSION, SERVER_VERSION,
};
use crate::wire::{name, PROBING_PREFIX, RAFT_PREFIX, RAFT_SNAPSHOT_PREFIX, RAFT_STREAM_PREFIX};

/// The largest raft message body accepted: 512 MiB (etcd `readBytesLimit`,
/// `rafthttp/msg_codec.go:46`). etcd's pipeline handler has no total cap at
/// all; we apply the limit etcd uses for its other framed reads.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// The version path (etcd `versionPath`, `etcdserver/api/etcdhttp/base.go:43`).
pub const VERSION_PATH: &str = "/version";

/// etcd `errIncompatibleVersion` (`rafthttp/http.go:53`).
const ERR_INCOMPATIBLE_VERSION: &str = "incompatible version";
/// etcd `errClusterIDMismatch` (`rafthttp/http.go:54`).
const ERR_CLUSTER_ID_MISMATCH: &str = "cluster ID mismatch";
/// etcd's answer to a body read error (`rafthttp/http.go:118`).
const ERR_READING: &str = "error reading raft message";
/// etcd's answer to an undecodable body (`rafthttp/http.go:134`).
const ERR_UNMARSHALLING: &str = "error unmarshalling raft message";
/// etcdserver's removed-member answer (`etcdserver/server.go:909`).
const ERR_REMOVED_MEMBER: &str = "cannot process message from removed member";
/// etcd's answer to a `Process` error (`rafthttp/http.go:155`).
const ERR_PROCESSING: &str = "error processing raft message";
/// Our answer to a body over [`ReceiverConfig::max_message_bytes`]; etcd
/// has no such limit, hence no text of its own.
const ERR_TOO_LARGE: &str = "raft message too large";
/// Go's `http.NotFound` body.
const ERR_NOT_FOUND: &str = "404 page not found";
/// How many distinct values of a header a worker remembers as checked: a
/// few per peer that sends to it. Past that, it starts over.
const HEADER_MEMO_SIZE: usize = 16;
/// Go's `http.StatusText(405)`, which etcd writes for a wrong method.
const ERR_METHOD_NOT_ALLOWED: &str = "Method Not Allowed";

/// What the receiver needs: who we are, which cluster we accept messages
/// for, how large a message may be, and the raft actor that takes them.
///
/// Build it with [`ReceiverConfig::new`] and refine it with the setters;
/// each documents its default. It is cloned into every HTTP worker.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// This member's id; only logs use it, as in etcd.
    pub local_id: Id,
    /// The cluster id. `X-Etcd-Cluster-ID` must equal its lower-case hex
    /// exactly, and every answer after the method check carries it.
    pub cluster_id: Id,
    /// The largest body accepted, in bytes (default [`MAX_MESSAGE_BYTES`]).
    /// A larger `Content-Length` gets 413 before the body is read; a body
    /// without one is cut off at the limit with 413.
    pub max_message_bytes: usize,
    /// Whether [`configure`] also mounts `GET /version` (default `false`,
    /// since the application may serve its own). Turn it on when real etcd
    /// members query this member's version on its peer URL.
    pub serve_version: bool,
    /// How `POST /raft/snapshot` is received (default: no sink, so the
    /// route is not mounted); see [`snapshot_receiver`].
    pub snapshots: SnapshotConfig,
    /// The user's raft actor. It gets every accepted message as an
    /// [`Inbound`] and its answer decides the status.
    pub raft: Recipient<Inbound>,
}

impl ReceiverConfig {
    /// A configuration with the defaults: [`MAX_MESSAGE_BYTES`] and no
    /// `/version` route.
    pub fn new(local_id: Id, cluster_id: Id, raft: Recipient<Inbound>) -> Self {
        ReceiverConfig {
            local_id,
            cluster_id,
            max_message_bytes: MAX_MESSAGE_BYTES,
            serve_version: false,
            snapshots: SnapshotConfig::default(),
            raft,
        }
    }

    /// Sets the largest body accepted (default [`MAX_MESSAGE_BYTES`]).
    /// Keep it above the largest `MsgSnap` the cluster sends through the
    /// pipeline, or snapshots will keep failing with 413.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets how streamed snapshots are received (default: not at all);
    /// give it a sink to mount `POST /raft/snapshot`.
    pub fn snapshots(mut self, snapshots: SnapshotConfig) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Sets whether `GET /version` is mounted (default `false`).
    pub fn serve_version(mut self, serve: bool) -> Self {
        self.serve_version = serve;
        self
    }
}

/// Mounts the receiver's routes, for `App::new().configure(receiver::configure(cfg))`:
///
/// | path | answer |
/// |---|---|
/// | `/raft` | the pipeline: `POST` a raft message, 204 when raft took it |
/// | `/raft/snapshot` | only with a sink in [`ReceiverConfig::snapshots`]: `POST` a streamed snapshot ([`snapshot_receiver`]), 204 once stored and taken by raft |
/// | `/raft/probing` | any method: 200 `{"OK":true,"Now":"..."}` (etcd's prober) |
/// | `/raft/stream/...` | 404 without `X-Server-Version`, so an etcd 3.4 peer quietly uses the pipeline instead of streams |
/// | any other `/raft/...`, including `/raft/` | 404 `404 page not found` |
/// | `/version` | only with [`ReceiverConfig::serve_version`]: etcd's version JSON |
///
/// Register routes of your own under `/raft/` *before* this call: the
/// catch-all for `/raft/...` answers everything registered after it.
pub fn configure(config: ReceiverConfig) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let serve_version = config.serve_version;
        let snapshots = config.snapshots.clone();
        let receiver = Rc::new(Receiver::new(config));
        if let Some(rx) = SnapshotReceiver::new(receiver.clone(), &snapshots).map(Rc::new) {
            cfg.service(web::resource(RAFT_SNAPSHOT_PREFIX).to(
                move |req: HttpRequest, body: web::Payload| {
                    snapshot_receiver::serve(rx.clone(), req, body)
                },
            ));
        }
        cfg.service(
            web::resource(RAFT_PREFIX).to(move |req: HttpRequest, body: web::Payload| {
                serve_raft(receiver.clone(), req, body)
            }),
        )
        .service(web::resource(PROBING_PREFIX).to(serve_probing))
        .service(web::resource(format!("{RAFT_STREAM_PREFIX}/{{tail:.*}}")).to(serve_not_found))
        .service(web::resource(format!("{RAFT_PREFIX}/{{tail:.*}}")).to(serve_not_found));
        if serve_version {
            cfg.service(web::resource(VERSION_PATH).to(serve_version_json));
        }
    }
}

/// One worker's copy of the configuration, with the cluster id prepared
/// both for comparing and for answering.
pub(crate) struct Receiver {
    pub(crate) local_id: Id,
    cluster_id: String,
    pub(crate) cluster_id_header: HeaderValue,
    max_message_bytes: usize,
    raft: Recipient<Inbound>,
    memo: HeaderMemo,
}

/// Header values this worker has already checked. A peer sends the same
/// version headers and `X-PeerURLs` with every message, so each value is
/// parsed once per worker rather than once per message.
#[derive(Default)]
struct HeaderMemo {
    /// `X-Server-Version` and `X-Min-Cluster-Version` pairs that passed.
    versions: RefCell<Vec<[Option<HeaderValue>; 2]>>,
    /// `X-PeerURLs` values and what they parsed to.
    peer_urls: RefCell<Vec<(HeaderValue, Vec<String>)>>,
}

impl HeaderMemo {
    /// [`check_versions`], skipped for a pair of values that passed before.
    fn check_versions(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let pair = [
            headers.get(name::SERVER_VERSION),
            headers.get(name::MIN_CLUSTER_VERSION),
        ];
        let known = |seen: &[Option<HeaderValue>; 2]| seen.iter().map(Option::as_ref).eq(pair);
        if self.versions.borrow().iter().any(known) {
            return Ok(());
        }
        check_versions(headers)?;
        remember(&self.versions, pair.map(|v| v.map(owned_header)));
        Ok(())
    }

    /// [`sender_urls`], parsed once per distinct value.
    fn sender_urls(&self, headers: &HeaderMap) -> Vec<String> {
        let Some(value) = headers.get(name::PEER_URLS) else {
            return Vec::new();
        };
        let memo = self.peer_urls.borrow();
        if let Some((_, urls)) = memo.iter().find(|(seen, _)| seen == value) {
            return urls.clone();
        }
        drop(memo);
        let urls = sender_urls(headers);
        remember(&self.peer_urls, (owned_header(value), urls.clone()));
        urls
    }
}

/// Adds `entry` to a memo, emptying it first when it is full.
fn remember<T>(memo: &RefCell<Vec<T>>, entry: T) {
    let mut memo = memo.borrow_mut();
    if memo.len() >= HEADER_MEMO_SIZE {
        memo.clear();
    }
    memo.push(entry);
}

/// A copy of `value` that does not keep the request's buffer alive.
fn owned_header(value: &HeaderValue) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
}

/// Why a `POST /raft` was not delivered, with what to log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("failed to check version compatibility ({0})")]
    IncompatibleVersion(String),
    #[error("request cluster ID mismatch (remote {0:?})")]
    ClusterIdMismatch(String),
    #[error("raft message larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed to read Raft message ({0})")]
    Read(String),
    #[error("failed to unmarshal Raft message ({0})")]
    Unmarshal(prost::DecodeError),
    #[error("rejected Raft message from removed member")]
    RemovedMember,
    #[error("failed to process Raft message ({0})")]
    Process(String),
}

impl Rejection {
    /// The status and etcd's body text for this rejection.
    pub(crate) fn status_and_text(&self) -> (StatusCode, &'static str) {
        match self {
            Rejection::IncompatibleVersion(_) => {
                (StatusCode::PRECONDITION_FAILED, ERR_INCOMPATIBLE_VERSION)
            }
            Rejection::ClusterIdMismatch(_) => {
                (StatusCode::PRECONDITION_FAILED, ERR_CLUSTER_ID_MISMATCH)
            }
            Rejection::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ERR_TOO_LARGE),
            Rejection::Read(_) => (StatusCode::BAD_REQUEST, ERR_READING),
            Rejection::Unmarshal(_) => (StatusCode::BAD_REQUEST, ERR_UNMARSHALLING),
            Rejection::RemovedMember => (StatusCode::FORBIDDEN, ERR_REMOVED_MEMBER),
            Rejection::Process(_) => (StatusCode::INTERNAL_SERVER_ERROR, ERR_PROCESSING),
        }
    }
}

impl Receiver {
    fn new(config: ReceiverConfig) -> Self {
        let cluster_id = config.cluster_id.to_string();
        Receiver {
            local_id: config.local_id,
            cluster_id_header: HeaderValue::from_str(&cluster_id)
                .expect("lower-case hex digits are a valid header value"),
            cluster_id,
            max_message_bytes: config.max_message_bytes,
            raft: config.raft,
            memo: HeaderMemo::default(),
        }
    }

    /// etcd's steps 3 to 9 for a `POST /raft`: the checks, the body, and
    /// the raft actor's answer.
    async fn receive(&self, req: &HttpRequest, body: web::Payload) -> Result<(), Rejection> {
        let headers = req.headers();
        self.memo.check_versions(headers)?;
        self.check_cluster_id(headers)?;
        let declared = declared_length(headers);
        if declared.is_some_and(|len| len > self.max_message_bytes as u64) {
            return Err(Rejection::TooLarge {
                limit: self.max_message_bytes,
            });
        }
        let bytes = read_body(body, declared, self.max_message_bytes).await?;
        let message = RaftMessage::decode(bytes).map_err(Rejection::Unmarshal)?;
        let inbound = Inbound {
            message,
            from: sender_id(headers),
            peer_urls: self.memo.sender_urls(headers),
            snapshot: None,
        };
        self.deliver(inbound).await
    }

    /// etcd's exact string compare of `X-Etcd-Cluster-ID`
    /// (`rafthttp/http.go:545`): `"01"` or upper case do not match `"1"`.
    pub(crate) fn check_cluster_id(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let remote = headers
            .get(name::CLUSTER_ID)
            .map_or(&b""[..], HeaderValue::as_bytes);
        if remote == self.cluster_id.as_bytes() {
            return Ok(());
        }
        let remote = String::from_utf8_lossy(remote).into_owned();
        Err(Rejection::ClusterIdMismatch(remote))
    }

    /// Hands the message to the raft actor and maps its answer
    /// (etcd `Process`, `rafthttp/http.go:141-160`).
    pub(crate) async fn deliver(&self, inbound: Inbound) -> Result<(), Rejection> {
        match self.raft.send(inbound).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ProcessError::RemovedMember)) => Err(Rejection::RemovedMember),
            Ok(Err(ProcessError::Other(reason))) => Err(Rejection::Process(reason)),
            Err(mailbox) => Err(Rejection::Process(format!("raft actor: {mailbox}"))),
        }
    }
}

/// `/raft`: etcd's pipeline handler. The method check comes first and its
/// 405 has no cluster id; every later answer carries ours.
async fn serve_raft(rx: Rc<Receiver>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let mut response = match rx.receive(&req, body).await {
        Ok(()) => go_style(HttpResponse::NoContent().finish()),
        Err(rejection) => {
            log_rejection(&rx, &req, &rejection);
            let (status, text) = rejection.status_and_text();
            go_http_error(status, text)
        }
    };
    response
        .headers_mut()
        .insert(name::CLUSTER_ID, rx.cluster_id_header.clone());
    response
}

/// Logs a rejection as etcd does, at Warn; a removed member is the raft
/// actor's own decision and only worth a Debug line here.
fn log_rejection(rx: &Receiver, req: &HttpRequest, rejection: &Rejection) {
    let remote = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let from = req
        .headers()
        .get(name::SERVER_FROM)
        .map_or(Cow::Borrowed("unknown"), |v| {
            String::from_utf8_lossy(v.as_bytes())
        });
    let local = rx.local_id;
    match rejection {
        Rejection::RemovedMember => {
            debug!("{rejection} (local {local}, remote {from} at {remote})")
        }
        _ => warn!("{rejection} (local {local}, remote {from} at {remote})"),
    }
}

/// etcd's version check (`checkClusterCompatibilityFromHeader`,
/// `rafthttp/http.go:501-538`), except that a malformed header is an
/// incompatible version rather than a panic.
pub(crate) fn check_versions(headers: &HeaderMap) -> Result<(), Rejection> {
    let server = version_header(headers, &name::SERVER_VERSION)?;
    let min_cluster = version_header(headers, &name::MIN_CLUSTER_VERSION)?;
    check_version_compatibility(&server, &min_cluster).map_err(|_| {
        Rejection::IncompatibleVersion(format!(
            "remote server {server}, remote min cluster {min_cluster}, local server {SERVER_VERSION}"
        ))
    })
}

/// One version header, missing meaning 2.0.0; a value that is not text or
/// not a version is a [`Rejection::IncompatibleVersion`].
fn version_header(headers: &HeaderMap, name: &HeaderName) -> Result<Version, Rejection> {
    let value = headers
        .get(name)
        .map(HeaderValue::to_str)
        .transpose()
        .map_err(|_| Rejection::IncompatibleVersion(format!("{name} is not visible ASCII")))?;
    parse_version_header(value).map_err(|e| Rejection::IncompatibleVersion(format!("{name}: {e}")))
}

/// The body length the client announced, if it sent a `Content-Length`.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
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
            return Err(Rejection::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `X-Server-From` as an id (etcd `types.IDFromString`); missing gives
/// `None`, and so does a malformed value, which is logged.
pub(crate) fn sender_id(headers: &HeaderMap) -> Option<Id> {
    let value = headers.get(name::SERVER_FROM)?;
    let parsed = value.to_str().ok().and_then(|s| s.parse().ok());
    if parsed.is_none() {
        warn!("ignoring malformed {} header {value:?}", name::SERVER_FROM);
    }
    parsed
}

/// `X-PeerURLs` split on `,` and validated as etcd's `types.NewURLs`
/// would, all or nothing: one malformed URL drops the whole header (logged)
/// where etcd would panic.
pub(crate) fn sender_urls(headers: &HeaderMap) -> Vec<String> {
    let Some(value) = headers.get(name::PEER_URLS) else {
        return Vec::new();
    };
    let parsed = value.to_str().ok().and_then(|list| {
        if list.is_empty() {
            return Some(Vec::new());
        }
        list.split(',')
            .map(|url| parse_peer_url(url.trim()).ok())
            .collect::<Option<Vec<_>>>()
    });
    parsed.unwrap_or_else(|| {
        warn!("ignoring malformed {} header {value:?}", name::PEER_URLS);
        Vec::new()
    })
}

/// `/raft/probing`: etcd's prober target (`xiang90/probing`, `server.go:21-25`).
/// Any method; 200 with `{"OK":true,"Now":"<RFC 3339 time>"}` and a newline,
/// typed as Go sniffs it.
async fn serve_probing() -> HttpResponse {
    let now = rfc3339_nano(SystemTime::now());
    go_style(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body(format!("{{\"OK\":true,\"Now\":\"{now}\"}}\n")),
    )
}

/// `/version`: etcd's `versionHandler` (`etcdserver/api/etcdhttp/base.go:58-84`).
async fn serve_version_json(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    go_style(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(format!(
                "{{\"etcdserver\":\"{SERVER_VERSION}\",\"etcdcluster\":\"{CLUSTER_VERSION}\"}}"
            )),
    )
}

/// Go's `http.NotFound`: no version header, so an etcd stream dialer takes
/// the peer for one without streams and keeps to the pipeline.
async fn serve_not_found() -> HttpResponse {
    go_http_error(StatusCode::NOT_FOUND, ERR_NOT_FOUND)
}

/// etcd's wrong-method answer: `Allow: <method>` and 405.
pub(crate) fn method_not_allowed(allowed: &'static str) -> HttpResponse {
    let mut response = go_http_error(StatusCode::METHOD_NOT_ALLOWED, ERR_METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Go's `http.Error(w, text, status)`: plain text, `nosniff`, and the text
/// with a newline. etcd's sender compares the text without the newline.
pub(crate) fn go_http_error(status: StatusCode, text: &str) -> HttpResponse {
    go_style(
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(format!("{text}\n")),
    )
}

/// Writes header names as Go does (`X-Etcd-Cluster-Id`, `Content-Type`),
/// so our raw answers read like etcd's. Names are case-insensitive either
/// way.
pub(crate) fn go_style(mut response: HttpResponse) -> HttpResponse {
    response.head_mut().set_camel_case_headers(true);
    response
}

/// Formats `t` as Go's `time.RFC3339Nano` in UTC, as JSON encodes a
/// `time.Time`: `2006-01-02T15:04:05.999999999Z`, trailing zeros of the
/// fraction dropped, no fraction at all on a whole second. Times before
/// 1970 print as the epoch.
fn rfc3339_nano(t: SystemTime) -> String {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let nanos = since_epoch.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Error;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn rfc3339_nano_matches_go() {
        assert_eq!(rfc3339_nano(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(at(1_700_000_000, 123_456_789)),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(at(951_782_400, 500_000_000)),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(
            rfc3339_nano(at(4_107_542_399, 1_000)),
            "2100-02-28T23:59:59.000001Z"
        );
        assert_eq!(rfc3339_nano(at(4_107_542_400, 0)), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339_nano(at(1_709_251_199, 0)), "2024-02-29T23:59:59Z");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn precondition_texts_are_the_errors_the_sender_maps() {
        assert_eq!(
            ERR_INCOMPATIBLE_VERSION,
            Error::IncompatibleVersion.to_string()
        );
        assert_eq!(
            ERR_CLUSTER_ID_MISMATCH,
            Error::ClusterIdMismatch.to_string()
        );
        assert_eq!(ERR_REMOVED_MEMBER, ProcessError::RemovedMember.to_string());
    }

    #[test]
    fn peer_urls_are_all_or_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            name::PEER_URLS,
            HeaderValue::from_static("http://a:2380, https://b:2380/"),
        );
        assert_eq!(sender_urls(&headers), ["http://a:2380", "https://b:2380"]);
        for bad in ["http://a:2380,::", "%%%", ",", "http://a:2380,"] {
            headers.insert(name::PEER_URLS, HeaderValue::from_static(bad));
            assert!(sender_urls(&headers).is_empty(), "{bad}");
        }
    }
}

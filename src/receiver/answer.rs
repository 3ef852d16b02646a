//! The answer path: every answer the receiver writes, one way. A request
//! ends as `Ok` (204) or as a [`Rejection`], which is logged once and
//! answered with etcd's status and body, written as Go's `http.Error`
//! writes it. Every answer after the method check carries our
//! `X-Etcd-Cluster-ID`, as etcd's handlers set it once the method passed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::Duration;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use log::{log, Level};

use super::budget::Exhausted;
use super::checks::CheckError;
use super::decode::OverBound;
use crate::etcd_text::{
    go_error_body, go_status_text, with_cause, ERR_CLUSTER_ID_MISMATCH, ERR_INCOMPATIBLE_VERSION,
    ERR_PROCESSING, ERR_READING, ERR_REMOVED_MEMBER, ERR_SNAPSHOT_DECODE, ERR_SNAPSHOT_PROCESS,
    ERR_SNAPSHOT_SAVE, ERR_TOO_LARGE, ERR_UNMARSHALLING, ERR_WRONG_TYPE, GO_NOT_FOUND,
    GO_TEXT_PLAIN,
};
use crate::id::Id;
use crate::log_limit::{LogLimiter, Merged, MERGE_PERIOD};
use crate::snapshot::FrameError;
use crate::wire::name;

/// Our answer when the receiver's memory budget cannot take a request
/// (503). etcd has no budget, hence no text of its own.
pub(crate) const ERR_BUDGET: &str = "receiver memory budget exhausted";

/// Our answer when one member has too many requests in flight (429).
/// etcd has no such cap, hence no text of its own.
pub(crate) const ERR_TOO_MANY_REQUESTS: &str = "too many requests in flight from this member";

/// The route that answers: etcd's two handlers word a processing error
/// differently, and logs say which one refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /raft`, etcd's `pipelineHandler`.
    Raft,
    /// `POST /raft/snapshot`, etcd's `snapshotHandler`.
    Snapshot,
}

/// Why a message was not delivered, with what to log; its answer is
/// [`Rejection::status_and_text`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    /// A check on the request's method or headers failed.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The `/raft` body could not be read.
    #[error("failed to read Raft message ({0})")]
    Read(String),
    /// The `/raft` body is not a raft message.
    #[error("failed to unmarshal Raft message ({0})")]
    Unmarshal(prost::DecodeError),
    /// The `/raft/snapshot` frame could not be read.
    #[error("failed to decode Raft message ({0})")]
    Decode(FrameError),
    /// The `/raft/snapshot` message is not a `MsgSnap`.
    #[error("unexpected Raft message type {0}")]
    WrongType(i32),
    /// The snapshot's database could not be stored.
    #[error("failed to save KV snapshot ({0})")]
    Save(String),
    /// The receiver's memory budget cannot take the request.
    #[error("refused Raft message ({0})")]
    Busy(#[from] Exhausted),
    /// The sender has its cap of requests in flight already.
    #[error("refused Raft message ({cap} requests in flight from this sender)")]
    TooManyRequests {
        /// The cap in force.
        cap: usize,
    },
    /// The `/raft` body sent nothing for the idle timeout.
    #[error("failed to read Raft message (no bytes received for {0:?})")]
    Stalled(Duration),
    /// Decoding the message would allocate more than the bound allows.
    #[error("failed to unmarshal Raft message ({0})")]
    OverDecodeBound(OverBound),
    /// The snapshot's database is larger than the receiver takes.
    #[error("failed to save KV snapshot (database larger than {limit} bytes)")]
    DbTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// The raft actor says the sender was removed.
    #[error("rejected Raft message from removed member")]
    RemovedMember,
    /// The raft actor could not take the message.
    #[error("failed to process Raft message ({0})")]
    Process(String),
}

impl Rejection {
    /// The status and etcd's body text for this rejection on `route`.
    pub(crate) fn status_and_text(&self, route: Route) -> (StatusCode, Cow<'static, str>) {
        let fixed = |status, text: &'static str| (status, Cow::Borrowed(text));
        match self {
            Rejection::Check(check) => check_status_and_text(check),
            Rejection::Read(_) => fixed(StatusCode::BAD_REQUEST, ERR_READING),
            Rejection::Unmarshal(_) => fixed(StatusCode::BAD_REQUEST, ERR_UNMARSHALLING),
            Rejection::Decode(e) => (
                StatusCode::BAD_REQUEST,
                with_cause(ERR_SNAPSHOT_DECODE, e).into(),
            ),
            Rejection::WrongType(_) => fixed(StatusCode::BAD_REQUEST, ERR_WRONG_TYPE),
            Rejection::Save(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                with_cause(ERR_SNAPSHOT_SAVE, e).into(),
            ),
            Rejection::Busy(_) => fixed(StatusCode::SERVICE_UNAVAILABLE, ERR_BUDGET),
            Rejection::TooManyRequests { .. } => {
                fixed(StatusCode::TOO_MANY_REQUESTS, ERR_TOO_MANY_REQUESTS)
            }
            Rejection::Stalled(_) => fixed(StatusCode::REQUEST_TIMEOUT, ERR_READING),
            Rejection::OverDecodeBound(_) => fixed(StatusCode::PAYLOAD_TOO_LARGE, ERR_TOO_LARGE),
            Rejection::DbTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                with_cause(
                    ERR_SNAPSHOT_SAVE,
                    format!("database larger than {limit} bytes"),
                )
                .into(),
            ),
            Rejection::RemovedMember => fixed(StatusCode::FORBIDDEN, ERR_REMOVED_MEMBER),
            Rejection::Process(e) => match route {
                Route::Raft => fixed(StatusCode::INTERNAL_SERVER_ERROR, ERR_PROCESSING),
                Route::Snapshot => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    with_cause(ERR_SNAPSHOT_PROCESS, e).into(),
                ),
            },
        }
    }

    /// What the log line adds to the rejection's text.
    fn log_detail(&self) -> String {
        match self {
            Rejection::Decode(FrameError::LimitExceeded { len, limit }) => {
                format!(", length {len} over limit {limit}")
            }
            _ => String::new(),
        }
    }
}

/// The status and text of a failed check.
fn check_status_and_text(check: &CheckError) -> (StatusCode, Cow<'static, str>) {
    let (status, text) = match check {
        CheckError::MethodNotAllowed { .. } => {
            (StatusCode::METHOD_NOT_ALLOWED, go_status_text(405))
        }
        CheckError::IncompatibleVersion(_) => {
            (StatusCode::PRECONDITION_FAILED, ERR_INCOMPATIBLE_VERSION)
        }
        CheckError::ClusterIdMismatch(_) => {
            (StatusCode::PRECONDITION_FAILED, ERR_CLUSTER_ID_MISMATCH)
        }
        CheckError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ERR_TOO_LARGE),
    };
    (status, Cow::Borrowed(text))
}

/// How one worker answers: our id, for logs, and our cluster id, for the
/// header.
#[derive(Debug)]
pub(crate) struct Answers {
    local_id: Id,
    cluster_id: HeaderValue,
    /// Repeated refusals merged into counts, keyed by what was refused and
    /// who sent it, so a misbehaving peer cannot flood the log.
    merged: RefCell<LogLimiter<(String, String)>>,
}

impl Answers {
    /// The answers of member `local_id` of cluster `cluster_id`.
    pub(crate) fn new(local_id: Id, cluster_id: Id) -> Self {
        Answers {
            local_id,
            cluster_id: HeaderValue::from_str(&cluster_id.to_string())
                .expect("lower-case hex digits are a valid header value"),
            merged: RefCell::new(LogLimiter::new(MERGE_PERIOD)),
        }
    }

    /// Logs the refusals merged since their first line, for the keys whose
    /// merge period ended by `now`. Called every
    /// [`OUTPUT_INTERVAL`](crate::log_limit::OUTPUT_INTERVAL) by the
    /// worker's timer, and before each new refusal is logged.
    pub(crate) fn flush(&self, now: Instant) {
        let merged = self.merged.borrow_mut().tick(now);
        self.log_merged(merged);
    }

    fn log_merged(&self, merged: Vec<Merged<(String, String)>>) {
        let local = self.local_id;
        for m in merged {
            let (what, from) = &m.key;
            log::warn!("{what} (local {local}, remote {from}) {m}");
        }
    }

    /// The answer to a request on `route` that ended in `outcome`: 204, or
    /// the rejection, logged and answered as etcd answers it. A wrong
    /// method gets etcd's bare 405; every other answer carries our cluster
    /// id.
    pub(crate) fn respond(
        &self,
        route: Route,
        req: &HttpRequest,
        outcome: Result<(), Rejection>,
    ) -> HttpResponse {
        let mut response = match outcome {
            Ok(()) => go_style(HttpResponse::NoContent().finish()),
            Err(Rejection::Check(CheckError::MethodNotAllowed { allowed, .. })) => {
                return method_not_allowed(allowed);
            }
            Err(rejection) => {
                self.log_rejection(route, req, &rejection);
                let (status, text) = rejection.status_and_text(route);
                go_http_error(status, &text)
            }
        };
        response
            .headers_mut()
            .insert(name::CLUSTER_ID, self.cluster_id.clone());
        response
    }

    /// Logs a rejection as etcd does, at Warn; a removed member is the raft
    /// actor's own decision and only worth a Debug line here.
    fn log_rejection(&self, route: Route, req: &HttpRequest, rejection: &Rejection) {
        let remote = req
            .peer_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let from = req
            .headers()
            .get(name::SERVER_FROM)
            .map_or(Cow::Borrowed("unknown"), |v| {
                String::from_utf8_lossy(v.as_bytes())
            });
        let prefix = match route {
            Route::Raft => "",
            Route::Snapshot => "snapshot: ",
        };
        let level = match rejection {
            Rejection::RemovedMember => Level::Debug,
            _ => Level::Warn,
        };
        if level == Level::Warn {
            let now = Instant::now();
            self.flush(now);
            let key = (format!("{prefix}{rejection}"), from.to_string());
            if !self.merged.borrow_mut().event(key, now) {
                return;
            }
        }
        let detail = rejection.log_detail();
        let local = self.local_id;
        log!(
            level,
            "{prefix}{rejection}{detail} (local {local}, remote {from} at {remote})"
        );
    }
}

impl Drop for Answers {
    /// The worker stops: the counts not logged yet are logged now.
    fn drop(&mut self) {
        let merged = self.merged.get_mut().drain(Instant::now());
        self.log_merged(merged);
    }
}

/// Go's `http.NotFound`: no version header, so an etcd stream dialer takes
/// the peer for one without streams and keeps to the pipeline.
pub(crate) async fn serve_not_found() -> HttpResponse {
    go_http_error(StatusCode::NOT_FOUND, GO_NOT_FOUND)
}

/// etcd's wrong-method answer: `Allow: <method>` and 405, without our
/// cluster id.
pub(crate) fn method_not_allowed(allowed: &'static str) -> HttpResponse {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let mut response = go_http_error(status, go_status_text(status.as_u16()));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Go's `http.Error(w, text, status)`: plain text, `nosniff`, and the text
/// with a newline.
fn go_http_error(status: StatusCode, text: &str) -> HttpResponse {
    go_style(
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, GO_TEXT_PLAIN))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(go_error_body(text)),
    )
}

/// Writes header names as Go does (`X-Etcd-Cluster-Id`, `Content-Type`),
/// so our raw answers read like etcd's. Names are case-insensitive either
/// way.
pub(crate) fn go_style(mut response: HttpResponse) -> HttpResponse {
    response.head_mut().set_camel_case_headers(true);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::FrameError;

    #[test]
    fn snapshot_answers_are_etcds() {
        let cases = [
            (
                Rejection::Decode(FrameError::UnexpectedEof),
                400,
                "failed to decode raft message (unexpected EOF)",
            ),
            (
                Rejection::Decode(FrameError::LimitExceeded { len: 9, limit: 8 }),
                400,
                "failed to decode raft message (rafthttp: error limit exceeded)",
            ),
            (Rejection::WrongType(3), 400, "wrong raft message type"),
            (
                Rejection::DbTooLarge { limit: 10 },
                413,
                "failed to save KV snapshot (database larger than 10 bytes)",
            ),
            (
                Rejection::Save("disk full".into()),
                500,
                "failed to save KV snapshot (disk full)",
            ),
            (
                Rejection::Process("raft: stopped".into()),
                500,
                "failed to process raft message (raft: stopped)",
            ),
        ];
        for (rejection, status, text) in cases {
            let (s, t) = rejection.status_and_text(Route::Snapshot);
            assert_eq!((s.as_u16(), &*t), (status, text));
        }
    }

    #[test]
    fn raft_answers_are_etcds() {
        let cases = [
            (
                Rejection::Check(CheckError::IncompatibleVersion(String::new())),
                412,
                "incompatible version",
            ),
            (
                Rejection::Check(CheckError::ClusterIdMismatch(String::new())),
                412,
                "cluster ID mismatch",
            ),
            (
                Rejection::Read("reset".into()),
                400,
                "error reading raft message",
            ),
            (
                Rejection::Stalled(Duration::from_secs(5)),
                408,
                "error reading raft message",
            ),
            (
                Rejection::OverDecodeBound(OverBound {
                    decoded: 2,
                    limit: 1,
                }),
                413,
                "raft message too large",
            ),
            (
                Rejection::Busy(Exhausted { limit: 1 }),
                503,
                "receiver memory budget exhausted",
            ),
            (
                Rejection::TooManyRequests { cap: 1 },
                429,
                "too many requests in flight from this member",
            ),
            (
                Rejection::RemovedMember,
                403,
                "cannot process message from removed member",
            ),
            (
                Rejection::Process("raft: stopped".into()),
                500,
                "error processing raft message",
            ),
        ];
        for (rejection, status, text) in cases {
            let (s, t) = rejection.status_and_text(Route::Raft);
            assert_eq!((s.as_u16(), &*t), (status, text));
        }
    }
}

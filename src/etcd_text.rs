//! etcd's texts and the Go helpers that shape them, each in one place.
//!
//! A peer running etcd compares some of these texts byte for byte (a 412
//! body picks `incompatible version` or `cluster ID mismatch`), and the
//! rest should read the same in both members' logs. Everything here is
//! pure: constants, and functions of their arguments only (the time to
//! format is passed in).

use std::fmt::Display;
use std::time::{SystemTime, UNIX_EPOCH};

/// etcd `errIncompatibleVersion` (`rafthttp/http.go:53`): the 412 body for
/// a peer whose version and ours do not overlap.
pub(crate) const ERR_INCOMPATIBLE_VERSION: &str = "incompatible version";

/// etcd `errClusterIDMismatch` (`rafthttp/http.go:54`): the 412 body for a
/// peer of another cluster.
pub(crate) const ERR_CLUSTER_ID_MISMATCH: &str = "cluster ID mismatch";

/// etcd's answer to a `/raft` body it could not read (`rafthttp/http.go:118`).
pub(crate) const ERR_READING: &str = "error reading raft message";

/// etcd's answer to a `/raft` body that is not a raft message
/// (`rafthttp/http.go:134`).
pub(crate) const ERR_UNMARSHALLING: &str = "error unmarshalling raft message";

/// etcd's answer when raft could not process a `/raft` message
/// (`rafthttp/http.go:155`).
pub(crate) const ERR_PROCESSING: &str = "error processing raft message";

/// etcdserver's answer to a message from a removed member
/// (`etcdserver/server.go:909`), which etcd's sender maps to its
/// member-removed error.
pub(crate) const ERR_REMOVED_MEMBER: &str = "cannot process message from removed member";

/// Our answer to a `/raft` body over the receiver's limit. etcd has no
/// such limit, hence no text of its own.
pub(crate) const ERR_TOO_LARGE: &str = "raft message too large";

/// etcd's answer to a `/raft/snapshot` message that is not a `MsgSnap`
/// (`snapshotHandler`, `rafthttp/http.go`).
pub(crate) const ERR_WRONG_TYPE: &str = "wrong raft message type";

/// etcd `ErrExceedSizeLimit` (`rafthttp/msg_codec.go`): a framed message
/// longer than the limit.
pub(crate) const ERR_EXCEED_SIZE_LIMIT: &str = "rafthttp: error limit exceeded";

/// etcd's answer to a `/raft/snapshot` whose framed message cannot be read,
/// followed by ` (<cause>)` ([`with_cause`]; `rafthttp/http.go`).
pub(crate) const ERR_SNAPSHOT_DECODE: &str = "failed to decode raft message";

/// etcd's answer to a `/raft/snapshot` whose database could not be stored,
/// followed by ` (<cause>)` ([`with_cause`]; `rafthttp/http.go`).
pub(crate) const ERR_SNAPSHOT_SAVE: &str = "failed to save KV snapshot";

/// etcd's answer when raft could not process a `/raft/snapshot` message,
/// followed by ` (<cause>)` ([`with_cause`]; `rafthttp/http.go`).
pub(crate) const ERR_SNAPSHOT_PROCESS: &str = "failed to process raft message";

/// Go's `io.EOF`: a read that got no byte at all.
pub(crate) const GO_EOF: &str = "EOF";

/// Go's `io.ErrUnexpectedEOF`: a read that ended part way.
pub(crate) const GO_UNEXPECTED_EOF: &str = "unexpected EOF";

/// Go's `http.NotFound` body.
pub(crate) const GO_NOT_FOUND: &str = "404 page not found";

/// The content type of Go's `http.Error` (and of any text Go sniffs as
/// plain text).
pub(crate) const GO_TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// etcd's `fmt.Sprintf("<text> (%v)", err)`: a text with its cause.
pub(crate) fn with_cause(text: &str, cause: impl Display) -> String {
    format!("{text} ({cause})")
}

/// The body Go's `http.Error(w, text, code)` writes: the text and a
/// newline. etcd's sender compares the text without the newline.
pub(crate) fn go_error_body(text: &str) -> String {
    format!("{text}\n")
}

/// Go's `http.StatusText` (`net/http/status.go`), which differs from the
/// `http` crate's reason phrases in places (`Request Entity Too Large`,
/// `Non-Authoritative Information`). Empty for a code Go does not know.
pub(crate) fn go_status_text(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Formats `t` as Go's `time.RFC3339Nano` in UTC, as JSON encodes a
/// `time.Time`: `2006-01-02T15:04:05.999999999Z`, trailing zeros of the
/// fraction dropped, no fraction at all on a whole second. Times before
/// 1970 print as the epoch.
pub(crate) fn rfc3339_nano(t: SystemTime) -> String {
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
    use crate::messages::ProcessError;

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
    fn go_status_texts_are_gos_where_the_http_crate_differs() {
        assert_eq!(go_status_text(405), "Method Not Allowed");
        assert_eq!(go_status_text(413), "Request Entity Too Large");
        assert_eq!(go_status_text(414), "Request URI Too Long");
        assert_eq!(go_status_text(416), "Requested Range Not Satisfiable");
        assert_eq!(go_status_text(203), "Non-Authoritative Information");
        assert_eq!(go_status_text(599), "");
    }

    #[test]
    fn answers_are_shaped_as_go_and_etcd_shape_them() {
        assert_eq!(go_error_body(GO_NOT_FOUND), "404 page not found\n");
        assert_eq!(
            with_cause(ERR_SNAPSHOT_SAVE, "disk full"),
            "failed to save KV snapshot (disk full)"
        );
    }
}

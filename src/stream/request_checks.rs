//! etcd's checks of a stream GET (`streamHandler`, `rafthttp/http.go:370-494`),
//! in etcd's order, on plain values: the method, the version and cluster-id
//! headers (shared with `/raft`), the path (stream type and sender id),
//! whether the sender was removed or is a peer, and `X-Raft-To`. Pure.

use crate::etcd_text::{ERR_CLUSTER_ID_MISMATCH, ERR_INCOMPATIBLE_VERSION};
use crate::id::Id;
use crate::receiver::checks::{CheckError, HeaderChecks, PeerHeaders};

use super::stream_type::StreamType;

/// A stream GET as the checks see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRequest<'a> {
    /// The request method.
    pub(crate) method: &'a str,
    /// The URL path, e.g. `/raft/stream/msgapp/1`.
    pub(crate) path: &'a str,
    /// The version, cluster-id, sender and URL headers.
    pub(crate) headers: PeerHeaders<'a>,
    /// `X-Raft-To`.
    pub(crate) raft_to: Option<&'a [u8]>,
}

/// What the member knows about the sender, asked once the path names it.
pub(crate) trait SenderLookup {
    /// Whether `id` was removed from the cluster (etcd `Raft.IsIDRemoved`).
    fn is_removed(&self, id: Id) -> bool;
    /// Whether `id` is a peer with stream writers here.
    fn is_peer(&self, id: Id) -> bool;
}

/// Why a stream GET is refused, and etcd's answer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamRefusal {
    /// Not a `GET`: 405 with `Allow: GET`, before any other check.
    MethodNotAllowed,
    /// The versions or the cluster id do not match: 412.
    Headers(CheckError),
    /// The path is not `/raft/stream/{message,msgapp}/<id>`: 404.
    InvalidPath,
    /// The id in the path is not hex: 404.
    InvalidFrom(String),
    /// The sender was removed from the cluster: 410.
    Removed(Id),
    /// The sender is not a peer of this member: 404.
    SenderNotFound(Id),
    /// `X-Raft-To` is not exactly our id: 412.
    ToMismatch(String),
}

impl StreamRefusal {
    /// etcd's status and `http.Error` text for the refusal.
    pub(crate) fn status_and_text(&self) -> (u16, &'static str) {
        match self {
            StreamRefusal::MethodNotAllowed => (405, "Method Not Allowed"),
            StreamRefusal::Headers(CheckError::ClusterIdMismatch(_)) => {
                (412, ERR_CLUSTER_ID_MISMATCH)
            }
            StreamRefusal::Headers(_) => (412, ERR_INCOMPATIBLE_VERSION),
            StreamRefusal::InvalidPath => (404, "invalid path"),
            StreamRefusal::InvalidFrom(_) => (404, "invalid from"),
            StreamRefusal::Removed(_) => (410, "removed member"),
            StreamRefusal::SenderNotFound(_) => (404, "error sender not found"),
            StreamRefusal::ToMismatch(_) => (412, "to field mismatch"),
        }
    }

    /// etcd's log line for the refusal (`http.go`), for the shell to log.
    pub(crate) fn log_text(&self) -> String {
        match self {
            StreamRefusal::MethodNotAllowed => "stream request with a method other than GET".into(),
            StreamRefusal::Headers(e) => e.to_string(),
            StreamRefusal::InvalidPath => "ignored unexpected streaming request path".into(),
            StreamRefusal::InvalidFrom(s) => format!("failed to parse path into ID {s:?}"),
            StreamRefusal::Removed(id) => {
                format!("rejected stream from remote peer {id} because it was removed")
            }
            StreamRefusal::SenderNotFound(id) => {
                format!("failed to find remote peer {id} in cluster")
            }
            StreamRefusal::ToMismatch(to) => {
                format!("ignored streaming request; ID mismatch (X-Raft-To {to:?})")
            }
        }
    }
}

/// Runs etcd's checks in etcd's order; on success, the stream type and the
/// sender (the id in the path, not `X-Server-From`).
pub(crate) fn check_stream_request(
    request: &StreamRequest<'_>,
    local: Id,
    cluster_id: Id,
    members: &impl SenderLookup,
) -> Result<(StreamType, Id), StreamRefusal> {
    if request.method != "GET" {
        return Err(StreamRefusal::MethodNotAllowed);
    }
    HeaderChecks::new(cluster_id)
        .check(&request.headers)
        .map_err(StreamRefusal::Headers)?;
    let (kind, from) = parse_path(request.path)?;
    if members.is_removed(from) {
        return Err(StreamRefusal::Removed(from));
    }
    if !members.is_peer(from) {
        return Err(StreamRefusal::SenderNotFound(from));
    }
    let to = request.raft_to.unwrap_or_default();
    if to != local.to_string().as_bytes() {
        return Err(StreamRefusal::ToMismatch(
            String::from_utf8_lossy(to).into_owned(),
        ));
    }
    Ok((kind, from))
}

/// etcd's `path.Dir` must be exactly a stream endpoint and `path.Base`
/// parses as a hex id (`types.IDFromString`).
fn parse_path(path: &str) -> Result<(StreamType, Id), StreamRefusal> {
    let (dir, base) = path.rsplit_once('/').ok_or(StreamRefusal::InvalidPath)?;
    let kind = StreamType::ALL
        .into_iter()
        .find(|t| t.endpoint() == dir)
        .ok_or(StreamRefusal::InvalidPath)?;
    let from = base
        .parse()
        .map_err(|_| StreamRefusal::InvalidFrom(base.to_owned()))?;
    Ok((kind, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Member 2 of cluster 1; peer 1 known, member 5 removed.
    struct Members;

    impl SenderLookup for Members {
        fn is_removed(&self, id: Id) -> bool {
            id == Id(5)
        }
        fn is_peer(&self, id: Id) -> bool {
            id == Id(1)
        }
    }

    fn request<'a>(method: &'a str, path: &'a str, cluster: &'a [u8]) -> StreamRequest<'a> {
        StreamRequest {
            method,
            path,
            headers: PeerHeaders {
                server_version: Some(b"3.4.23"),
                min_cluster_version: Some(b"3.0.0"),
                cluster_id: Some(cluster),
                ..PeerHeaders::default()
            },
            raft_to: Some(b"2"),
        }
    }

    fn answer(request: &StreamRequest<'_>) -> Result<(StreamType, Id), (u16, &'static str)> {
        check_stream_request(request, Id(2), Id(1), &Members).map_err(|r| r.status_and_text())
    }

    // etcd's TestServeRaftStreamPrefix.
    #[test]
    fn both_stream_types_are_accepted_for_a_peer() {
        for (path, kind) in [
            ("/raft/stream/message/1", StreamType::Message),
            ("/raft/stream/msgapp/1", StreamType::MsgAppV2),
            ("/raft/stream/msgapp/01", StreamType::MsgAppV2),
        ] {
            assert_eq!(answer(&request("GET", path, b"1")), Ok((kind, Id(1))));
        }
    }

    // etcd's TestServeRaftStreamPrefixBad, and the answers of
    // ETCD-STREAMS.md §3.2.
    #[test]
    fn bad_requests_get_etcds_answers() {
        // method, path, cluster id, X-Raft-To, answer
        type Case = (
            &'static str,
            &'static str,
            &'static [u8],
            Option<&'static [u8]>,
            (u16, &'static str),
        );
        let cases: &[Case] = &[
            (
                "PUT",
                "/raft/stream/message/1",
                b"1",
                Some(b"2"),
                (405, "Method Not Allowed"),
            ),
            (
                "POST",
                "/raft/stream/message/1",
                b"1",
                Some(b"2"),
                (405, "Method Not Allowed"),
            ),
            (
                "GET",
                "/raft/stream/strange/1",
                b"1",
                Some(b"2"),
                (404, "invalid path"),
            ),
            (
                "GET",
                "/raft/stream/strange",
                b"1",
                Some(b"2"),
                (404, "invalid path"),
            ),
            (
                "GET",
                "/raft/stream/message",
                b"1",
                Some(b"2"),
                (404, "invalid path"),
            ),
            (
                "GET",
                "/raft/stream/message/1/",
                b"1",
                Some(b"2"),
                (404, "invalid path"),
            ),
            (
                "GET",
                "/raft/stream/message/zz",
                b"1",
                Some(b"2"),
                (404, "invalid from"),
            ),
            (
                "GET",
                "/raft/stream/message/0x1",
                b"1",
                Some(b"2"),
                (404, "invalid from"),
            ),
            (
                "GET",
                "/raft/stream/message/3",
                b"1",
                Some(b"2"),
                (404, "error sender not found"),
            ),
            (
                "GET",
                "/raft/stream/message/5",
                b"1",
                Some(b"2"),
                (410, "removed member"),
            ),
            (
                "GET",
                "/raft/stream/message/1",
                b"2",
                Some(b"2"),
                (412, "cluster ID mismatch"),
            ),
            (
                "GET",
                "/raft/stream/message/1",
                b"1",
                Some(b"9"),
                (412, "to field mismatch"),
            ),
            (
                "GET",
                "/raft/stream/message/1",
                b"1",
                Some(b"02"),
                (412, "to field mismatch"),
            ),
            (
                "GET",
                "/raft/stream/message/1",
                b"1",
                None,
                (412, "to field mismatch"),
            ),
            (
                "GET",
                "/raft/stream/message/5",
                b"2",
                Some(b"2"),
                (412, "cluster ID mismatch"),
            ),
            (
                "GET",
                "/raft/stream/message/5",
                b"1",
                Some(b"9"),
                (410, "removed member"),
            ),
        ];
        for &(method, path, cluster, to, want) in cases {
            let mut r = request(method, path, cluster);
            r.raft_to = to;
            assert_eq!(answer(&r), Err(want), "{method} {path} {cluster:?} {to:?}");
        }
    }

    #[test]
    fn an_old_or_missing_version_is_incompatible() {
        let mut r = request("GET", "/raft/stream/message/1", b"1");
        r.headers.server_version = Some(b"2.3.0");
        assert_eq!(answer(&r), Err((412, "incompatible version")));
        r.headers.server_version = None;
        assert_eq!(answer(&r), Err((412, "incompatible version")));
    }
}

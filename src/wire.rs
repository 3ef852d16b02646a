//! What a pipeline request looks like on the wire and how its answer is
//! read: etcd's `createPostRequest` and `checkPostResponse`
//! (`rafthttp/util.go:63-103`). Pure functions, no I/O.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{StatusCode, Uri};

use crate::config::PipelineConfig;
use crate::error::Error;
use crate::etcd_text::{go_status_text, ERR_CLUSTER_ID_MISMATCH, ERR_INCOMPATIBLE_VERSION};
use crate::peer_url::PeerUrl;

/// The pipeline's path (etcd `RaftPrefix`, `rafthttp/http.go:48`).
pub const RAFT_PREFIX: &str = "/raft";
/// The snapshot path (etcd `RaftSnapshotPrefix`, `rafthttp/http.go:51`).
pub const RAFT_SNAPSHOT_PREFIX: &str = "/raft/snapshot";
/// The probing path (etcd `ProbingPrefix`, `rafthttp/http.go:49`).
pub const PROBING_PREFIX: &str = "/raft/probing";
/// The stream path prefix (etcd `RaftStreamPrefix`, `rafthttp/http.go:50`).
pub const RAFT_STREAM_PREFIX: &str = "/raft/stream";

/// Content type of a pipeline body (`rafthttp/pipeline.go:138`).
pub(crate) const CONTENT_TYPE_PROTOBUF: &str = "application/protobuf";
/// Content type of a snapshot body (`rafthttp/snapshot_sender.go:79`).
pub(crate) const CONTENT_TYPE_OCTET_STREAM: &str = "application/octet-stream";

/// The sender's member id, lower-case hex.
pub(crate) const HEADER_SERVER_FROM: &str = "x-server-from";
/// The sender's etcd version.
pub(crate) const HEADER_SERVER_VERSION: &str = "x-server-version";
/// The lowest cluster version the sender works with.
pub(crate) const HEADER_MIN_CLUSTER_VERSION: &str = "x-min-cluster-version";
/// The cluster id, lower-case hex; the receiver echoes its own.
pub(crate) const HEADER_CLUSTER_ID: &str = "x-etcd-cluster-id";
/// The sender's URLs, comma separated.
pub(crate) const HEADER_PEER_URLS: &str = "x-peerurls";

/// The same header names as [`HeaderName`]s, built at compile time. A
/// lookup by `&str` parses (and, for these non-standard names, allocates)
/// the name on every call; the receiver looks these up on every message.
pub(crate) mod name {
    use awc::http::header::HeaderName;

    /// [`HEADER_SERVER_FROM`](super::HEADER_SERVER_FROM).
    pub(crate) const SERVER_FROM: HeaderName = HeaderName::from_static(super::HEADER_SERVER_FROM);
    /// [`HEADER_SERVER_VERSION`](super::HEADER_SERVER_VERSION).
    pub(crate) const SERVER_VERSION: HeaderName =
        HeaderName::from_static(super::HEADER_SERVER_VERSION);
    /// [`HEADER_MIN_CLUSTER_VERSION`](super::HEADER_MIN_CLUSTER_VERSION).
    pub(crate) const MIN_CLUSTER_VERSION: HeaderName =
        HeaderName::from_static(super::HEADER_MIN_CLUSTER_VERSION);
    /// [`HEADER_CLUSTER_ID`](super::HEADER_CLUSTER_ID).
    pub(crate) const CLUSTER_ID: HeaderName = HeaderName::from_static(super::HEADER_CLUSTER_ID);
    /// [`HEADER_PEER_URLS`](super::HEADER_PEER_URLS).
    pub(crate) const PEER_URLS: HeaderName = HeaderName::from_static(super::HEADER_PEER_URLS);
}

/// The headers of every pipeline request from one member, built once per
/// pipeline and shared by its senders (etcd `createPostRequest`).
#[derive(Debug, Clone)]
pub(crate) struct RequestHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl RequestHeaders {
    /// The headers `config` calls for, with `content_type`: `Content-Type`,
    /// `X-Server-From`, `X-Server-Version`, `X-Min-Cluster-Version`,
    /// `X-Etcd-Cluster-ID`, and `X-PeerURLs` (sorted) when local URLs are
    /// set.
    pub(crate) fn new(config: &PipelineConfig, content_type: &'static str) -> Result<Self, Error> {
        let mut headers = vec![
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            header(HEADER_SERVER_FROM, &config.local.id.to_string())?,
            header(HEADER_SERVER_VERSION, &config.server_version)?,
            header(HEADER_MIN_CLUSTER_VERSION, &config.min_cluster_version)?,
            header(HEADER_CLUSTER_ID, &config.local.cluster_id.to_string())?,
        ];
        if !config.local.peer_urls.is_empty() {
            let mut urls = config
                .local
                .peer_urls
                .iter()
                .map(|u| PeerUrl::parse(u).map(String::from))
                .collect::<Result<Vec<_>, _>>()?;
            urls.sort();
            headers.push(header(HEADER_PEER_URLS, &urls.join(","))?);
        }
        Ok(RequestHeaders { headers })
    }

    /// Every header, in the order they are sent.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(HeaderName, HeaderValue)> {
        self.headers.iter()
    }
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidConfig(format!("{name} value {value:?} is not a header")))?;
    Ok((HeaderName::from_static(name), value))
}

/// The URL to post to: the peer URL with its path replaced by `path`, as
/// etcd does (`uu.Path = path`).
pub(crate) fn request_uri(peer_url: &PeerUrl, path: &str) -> Result<Uri, Error> {
    format!("{peer_url}{path}")
        .parse()
        .map_err(|_| Error::InvalidUrl(peer_url.to_string()))
}

/// Maps a pipeline answer to an outcome, as etcd's `checkPostResponse`:
/// only 204 is success; a 412 body picks incompatible version or cluster
/// mismatch; 403 means this member was removed; anything else is an
/// unexpected status.
pub fn check_post_response(status: StatusCode, body: &[u8], url: &str) -> Result<(), Error> {
    match status {
        StatusCode::NO_CONTENT => Ok(()),
        StatusCode::PRECONDITION_FAILED => Err(precondition_error(body)),
        StatusCode::FORBIDDEN => Err(Error::MemberRemoved),
        other => Err(Error::UnexpectedStatus {
            status: go_status_text(other.as_u16()).to_owned(),
            url: url.to_owned(),
        }),
    }
}

fn precondition_error(body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    match text {
        ERR_INCOMPATIBLE_VERSION => Error::IncompatibleVersion,
        ERR_CLUSTER_ID_MISMATCH => Error::ClusterIdMismatch,
        other => Error::UnhandledPrecondition(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use crate::local_member::LocalMember;

    fn config() -> PipelineConfig {
        PipelineConfig::new(
            &LocalMember::new(Id(0x1a), Id(0xabc)),
            Id(2),
            vec!["http://localhost:2380".into()],
        )
    }

    #[test]
    fn headers_are_etcds() {
        let mut cfg = config();
        cfg.local.peer_urls = vec!["http://127.0.0.1:37941".into(), "http://127.0.0.1:1".into()];
        let h = RequestHeaders::new(&cfg, CONTENT_TYPE_PROTOBUF).unwrap();
        let got: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let want = [
            ("content-type", "application/protobuf"),
            ("x-server-from", "1a"),
            ("x-server-version", "3.4.23"),
            ("x-min-cluster-version", "3.0.0"),
            ("x-etcd-cluster-id", "abc"),
            ("x-peerurls", "http://127.0.0.1:1,http://127.0.0.1:37941"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn peer_urls_header_is_omitted_without_local_urls() {
        let h = RequestHeaders::new(&config(), CONTENT_TYPE_PROTOBUF).unwrap();
        assert!(h.iter().all(|(k, _)| k != HEADER_PEER_URLS));
    }

    #[test]
    fn request_uri_appends_the_path() {
        let url = PeerUrl::parse("http://localhost:2380").unwrap();
        let uri = request_uri(&url, RAFT_PREFIX).unwrap();
        assert_eq!(uri.to_string(), "http://localhost:2380/raft");
    }

    // etcd TestPipelinePostBad: only 204 succeeds.
    #[test]
    fn only_204_is_success() {
        let url = "http://localhost:2380/raft";
        assert!(check_post_response(StatusCode::NO_CONTENT, b"", url).is_ok());
        for status in [200, 201, 500, 404] {
            let s = StatusCode::from_u16(status).unwrap();
            assert!(check_post_response(s, b"", url).is_err(), "{status}");
        }
        let err = check_post_response(StatusCode::INTERNAL_SERVER_ERROR, b"", url).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unexpected http status Internal Server Error while posting to "http://localhost:2380/raft""#
        );
    }

    #[test]
    fn precondition_bodies_map_to_etcds_errors() {
        let pf = StatusCode::PRECONDITION_FAILED;
        let check = |body: &[u8]| check_post_response(pf, body, "u").unwrap_err();
        assert_eq!(check(b"incompatible version\n"), Error::IncompatibleVersion);
        assert_eq!(check(b"cluster ID mismatch\n"), Error::ClusterIdMismatch);
        assert_eq!(check(b"cluster ID mismatch"), Error::ClusterIdMismatch);
        assert_eq!(
            check(b"other\n").to_string(),
            r#"unhandled error "other" when precondition failed"#
        );
    }

    // etcd TestPipelinePostErrorc: 403 is member removed.
    #[test]
    fn forbidden_means_member_removed() {
        let err = check_post_response(StatusCode::FORBIDDEN, b"anything", "u").unwrap_err();
        assert!(err.is_member_removed());
        assert_eq!(
            err.to_string(),
            "the member has been permanently removed from the cluster"
        );
    }
}

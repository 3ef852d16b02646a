//! etcd's request checks for `/raft` and `/raft/snapshot`, in etcd's
//! order (`rafthttp/http.go:88-166`, `:501-548`): the method, the
//! versions, the cluster id, then who sent the message (`X-Server-From`,
//! `X-PeerURLs`) and, for `/raft`, the declared length.
//!
//! Pure: the checks read header values as plain bytes ([`PeerHeaders`]),
//! never a framework's request type, and where etcd panics on a malformed
//! header they answer or ignore it instead.

use std::cell::RefCell;

use log::warn;

use crate::id::Id;
use crate::peer_url::PeerUrl;
use crate::version::{check_version_compatibility, parse_version_header, Version, SERVER_VERSION};
use crate::wire::{
    HEADER_MIN_CLUSTER_VERSION, HEADER_PEER_URLS, HEADER_SERVER_FROM, HEADER_SERVER_VERSION,
};

/// How many distinct values of a header a worker remembers as checked: a
/// few per peer that sends to it. Past that, it starts over.
const HEADER_MEMO_SIZE: usize = 16;

/// The request headers the checks read, as raw bytes; `None` when absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerHeaders<'a> {
    /// `X-Server-Version`.
    pub(crate) server_version: Option<&'a [u8]>,
    /// `X-Min-Cluster-Version`.
    pub(crate) min_cluster_version: Option<&'a [u8]>,
    /// `X-Etcd-Cluster-ID`.
    pub(crate) cluster_id: Option<&'a [u8]>,
    /// `X-Server-From`.
    pub(crate) server_from: Option<&'a [u8]>,
    /// `X-PeerURLs`.
    pub(crate) peer_urls: Option<&'a [u8]>,
    /// `Content-Length`.
    pub(crate) content_length: Option<&'a [u8]>,
}

/// Who sent a message that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sender {
    /// `X-Server-From` as an id; `None` when missing or malformed.
    pub(crate) from: Option<Id>,
    /// `X-PeerURLs`, empty when missing or malformed.
    pub(crate) peer_urls: Vec<String>,
}

/// Why a request failed a check, with what to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CheckError {
    /// The route takes only `allowed` (etcd answers 405 before any other
    /// check).
    #[error("method {method} not allowed, only {allowed}")]
    MethodNotAllowed {
        /// The method the request used.
        method: String,
        /// The one method the route takes.
        allowed: &'static str,
    },
    /// The versions do not overlap, or a version header is malformed.
    #[error("failed to check version compatibility ({0})")]
    IncompatibleVersion(String),
    /// `X-Etcd-Cluster-ID` is not exactly ours.
    #[error("request cluster ID mismatch (remote {0:?})")]
    ClusterIdMismatch(String),
    /// The body is, or says it is, over the receiver's limit.
    #[error("raft message larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
}

/// An `X-Server-Version` and `X-Min-Cluster-Version` pair, as received.
type VersionPair = [Option<Box<[u8]>>; 2];

/// An `X-PeerURLs` value, as received, and the URLs it parsed to.
type ParsedUrls = (Box<[u8]>, Vec<String>);

/// One worker's checks: our cluster id, and the header values this worker
/// has already checked. A peer sends the same version headers and
/// `X-PeerURLs` with every message, so each value is parsed once per
/// worker rather than once per message.
#[derive(Debug)]
pub(crate) struct HeaderChecks {
    cluster_id: String,
    /// `X-Server-Version` and `X-Min-Cluster-Version` pairs that passed.
    versions: RefCell<Vec<VersionPair>>,
    /// `X-PeerURLs` values and what they parsed to.
    peer_urls: RefCell<Vec<ParsedUrls>>,
}

impl HeaderChecks {
    /// The checks for a member of cluster `cluster_id`.
    pub(crate) fn new(cluster_id: Id) -> Self {
        HeaderChecks {
            cluster_id: cluster_id.to_string(),
            versions: RefCell::default(),
            peer_urls: RefCell::default(),
        }
    }

    /// etcd's checks after the method, in etcd's order: the versions,
    /// then the cluster id; then who sent the message.
    pub(crate) fn check(&self, headers: &PeerHeaders<'_>) -> Result<Sender, CheckError> {
        self.check_versions(headers.server_version, headers.min_cluster_version)?;
        check_cluster_id(headers.cluster_id, &self.cluster_id)?;
        Ok(Sender {
            from: sender_id(headers.server_from),
            peer_urls: self.sender_urls(headers.peer_urls),
        })
    }

    /// [`check_versions`], skipped for a pair of values that passed before.
    fn check_versions(
        &self,
        server: Option<&[u8]>,
        min_cluster: Option<&[u8]>,
    ) -> Result<(), CheckError> {
        let pair = [server, min_cluster];
        let known = |seen: &VersionPair| seen.iter().map(Option::as_deref).eq(pair);
        if self.versions.borrow().iter().any(known) {
            return Ok(());
        }
        check_versions(server, min_cluster)?;
        remember(&self.versions, pair.map(|v| v.map(Box::from)));
        Ok(())
    }

    /// [`sender_urls`], parsed once per distinct value.
    fn sender_urls(&self, value: Option<&[u8]>) -> Vec<String> {
        let Some(value) = value else {
            return Vec::new();
        };
        let memo = self.peer_urls.borrow();
        if let Some((_, urls)) = memo.iter().find(|(seen, _)| **seen == *value) {
            return urls.clone();
        }
        drop(memo);
        let urls = sender_urls(Some(value));
        remember(&self.peer_urls, (Box::from(value), urls.clone()));
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

/// etcd's method check: the route takes `allowed` only.
pub(crate) fn check_method(method: &str, allowed: &'static str) -> Result<(), CheckError> {
    if method == allowed {
        return Ok(());
    }
    Err(CheckError::MethodNotAllowed {
        method: method.to_owned(),
        allowed,
    })
}

/// etcd's version check (`checkClusterCompatibilityFromHeader`,
/// `rafthttp/http.go:501-538`), except that a malformed header is an
/// incompatible version rather than a panic.
fn check_versions(server: Option<&[u8]>, min_cluster: Option<&[u8]>) -> Result<(), CheckError> {
    let server = version_header(HEADER_SERVER_VERSION, server)?;
    let min_cluster = version_header(HEADER_MIN_CLUSTER_VERSION, min_cluster)?;
    check_version_compatibility(&server, &min_cluster).map_err(|_| {
        CheckError::IncompatibleVersion(format!(
            "remote server {server}, remote min cluster {min_cluster}, local server {SERVER_VERSION}"
        ))
    })
}

/// One version header, missing meaning 2.0.0; a value that is not text or
/// not a version is a [`CheckError::IncompatibleVersion`].
fn version_header(name: &str, value: Option<&[u8]>) -> Result<Version, CheckError> {
    let value = value
        .map(|v| visible_ascii(v).ok_or(()))
        .transpose()
        .map_err(|()| CheckError::IncompatibleVersion(format!("{name} is not visible ASCII")))?;
    parse_version_header(value).map_err(|e| CheckError::IncompatibleVersion(format!("{name}: {e}")))
}

/// etcd's exact string compare of `X-Etcd-Cluster-ID`
/// (`rafthttp/http.go:545`): `"01"` or upper case do not match `"1"`, and
/// a missing header is the empty string.
fn check_cluster_id(remote: Option<&[u8]>, local: &str) -> Result<(), CheckError> {
    let remote = remote.unwrap_or_default();
    if remote == local.as_bytes() {
        return Ok(());
    }
    let remote = String::from_utf8_lossy(remote).into_owned();
    Err(CheckError::ClusterIdMismatch(remote))
}

/// `X-Server-From` as an id (etcd `types.IDFromString`); missing gives
/// `None`, and so does a malformed value, which is logged.
fn sender_id(value: Option<&[u8]>) -> Option<Id> {
    let value = value?;
    let parsed = visible_ascii(value).and_then(|s| s.parse().ok());
    if parsed.is_none() {
        let shown = String::from_utf8_lossy(value);
        warn!("ignoring malformed {HEADER_SERVER_FROM} header {shown:?}");
    }
    parsed
}

/// `X-PeerURLs` split on `,` and validated as etcd's `types.NewURLs`
/// would, all or nothing: one malformed URL drops the whole header (logged)
/// where etcd would panic.
fn sender_urls(value: Option<&[u8]>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let parsed = visible_ascii(value).and_then(|list| {
        if list.is_empty() {
            return Some(Vec::new());
        }
        list.split(',')
            .map(|url| PeerUrl::parse(url).ok().map(String::from))
            .collect::<Option<Vec<_>>>()
    });
    parsed.unwrap_or_else(|| {
        let shown = String::from_utf8_lossy(value);
        warn!("ignoring malformed {HEADER_PEER_URLS} header {shown:?}");
        Vec::new()
    })
}

/// The body length the client announced, if it sent a `Content-Length`.
pub(crate) fn declared_length(value: Option<&[u8]>) -> Option<u64> {
    visible_ascii(value?)?.parse().ok()
}

/// Refuses a body that says it is over `limit` before it is read.
pub(crate) fn check_declared_length(declared: Option<u64>, limit: usize) -> Result<(), CheckError> {
    match declared {
        Some(len) if len > limit as u64 => Err(CheckError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// A header value as text, when it is visible ASCII (or tab), the rule of
/// the `http` crate's `HeaderValue::to_str`.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    let visible = |b: &u8| *b == b'\t' || (0x20..0x7f).contains(b);
    if !value.iter().all(visible) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(server: &'a str, min: &'a str, cluster: &'a str) -> PeerHeaders<'a> {
        PeerHeaders {
            server_version: Some(server.as_bytes()),
            min_cluster_version: Some(min.as_bytes()),
            cluster_id: Some(cluster.as_bytes()),
            ..PeerHeaders::default()
        }
    }

    #[test]
    fn peer_urls_are_all_or_nothing() {
        let urls = sender_urls(Some(b"http://a:2380, https://b:2380"));
        assert_eq!(urls, ["http://a:2380", "https://b:2380"]);
        // A path, even "/", is refused by etcd's types.NewURLs.
        for bad in [
            "http://a:2380,::",
            "%%%",
            ",",
            "http://a:2380,",
            "http://a:2380/",
        ] {
            assert!(sender_urls(Some(bad.as_bytes())).is_empty(), "{bad}");
        }
        assert!(sender_urls(None).is_empty());
    }

    #[test]
    fn checks_run_in_etcds_order() {
        let checks = HeaderChecks::new(Id(0x1000));
        let ok = headers("3.4.23", "3.0.0", "1000");
        assert_eq!(
            checks.check(&ok),
            Ok(Sender {
                from: None,
                peer_urls: Vec::new()
            })
        );
        let both_wrong = headers("1.0.0", "3.0.0", "2000");
        assert!(matches!(
            checks.check(&both_wrong),
            Err(CheckError::IncompatibleVersion(_))
        ));
        let wrong_cluster = headers("3.4.23", "3.0.0", "01000");
        assert_eq!(
            checks.check(&wrong_cluster),
            Err(CheckError::ClusterIdMismatch("01000".into()))
        );
    }

    #[test]
    fn a_remembered_pair_still_checks_the_cluster_id() {
        let checks = HeaderChecks::new(Id(0x1000));
        assert!(checks.check(&headers("3.4.23", "3.0.0", "1000")).is_ok());
        assert!(checks.check(&headers("3.4.23", "3.0.0", "2000")).is_err());
        assert!(checks.check(&headers("3.4.23", "9.9.9", "1000")).is_err());
    }

    #[test]
    fn malformed_headers_are_answered_not_panicked_on() {
        assert!(check_versions(Some(b"3.4.\xff"), None).is_err());
        assert!(check_versions(Some(b"garbage"), None).is_err());
        assert_eq!(sender_id(Some(b"1a")), Some(Id(0x1a)));
        assert_eq!(sender_id(Some(b"zz")), None);
        assert_eq!(sender_id(Some(b"\xff")), None);
        assert_eq!(check_cluster_id(None, ""), Ok(()));
    }

    #[test]
    fn declared_length_is_checked_against_the_limit() {
        assert_eq!(declared_length(Some(b"12")), Some(12));
        assert_eq!(declared_length(Some(b"x")), None);
        assert_eq!(check_declared_length(Some(12), 12), Ok(()));
        assert_eq!(check_declared_length(None, 0), Ok(()));
        assert_eq!(
            check_declared_length(Some(13), 12),
            Err(CheckError::TooLarge { limit: 12 })
        );
    }

    #[test]
    fn only_the_allowed_method_passes() {
        assert_eq!(check_method("POST", "POST"), Ok(()));
        assert!(matches!(
            check_method("GET", "POST"),
            Err(CheckError::MethodNotAllowed {
                allowed: "POST",
                ..
            })
        ));
    }
}

//! How a stream reader reads the answer to its GET (etcd's
//! `streamReader.dial`, `rafthttp/stream.go:628-705`), in etcd's order: the
//! version gate first, whatever the status, then the status. Pure.
//!
//! Unlike etcd, a malformed `X-Server-Version` is an error, not a panic
//! (`semver.Must`), and a 200 without a version is "unsupported" at once
//! instead of a read of the stream to its end that never comes.

use std::cmp::Ordering;

use crate::error::{Error, TransportError};
use crate::id::Id;
use crate::version::{compare_major_minor, parse_version_header, Version};

/// The version the gate compares with: ours, major.minor (3.4).
const LOCAL: (u64, u64) = (3, 4);

/// What the answer to a stream GET means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialAnswer {
    /// 200 with a version that supports streams: read the body.
    Established,
    /// The peer has no streams (no `X-Server-Version`, or a version that
    /// does not support this type): keep to the pipeline, silently
    /// (etcd's `errUnsupportedStreamType`).
    Unsupported,
    /// 412: the body says why; [`precondition_failed`] reads it.
    PreconditionFailed,
    /// The dial failed for this reason.
    Failed(Error),
}

/// Classifies a stream GET's answer from its status and `X-Server-Version`.
pub(crate) fn classify(
    status: u16,
    server_version: Option<&[u8]>,
    local: Id,
    peer: Id,
) -> DialAnswer {
    let version = server_version.map(|v| std::str::from_utf8(v).unwrap_or("\u{fffd}"));
    let remote = match parse_version_header(version) {
        Ok(v) => v,
        Err(e) => return DialAnswer::Failed(Error::transport("malformed X-Server-Version", e)),
    };
    if !supports_streams(&remote) {
        return DialAnswer::Unsupported;
    }
    match status {
        200 => DialAnswer::Established,
        410 => DialAnswer::Failed(Error::MemberRemoved),
        404 => DialAnswer::Failed(failure(format!(
            "peer {peer} failed to find local node {local}"
        ))),
        412 => DialAnswer::PreconditionFailed,
        other => DialAnswer::Failed(failure(format!("unhandled http status {other}"))),
    }
}

/// etcd's version gate with `checkStreamSupport` (`stream.go:51-61`): a
/// peer at or above 3.4 has both streams; 2.1 to 3.3 have both; 2.0 (what a
/// missing header reads as) and anything else below have none.
fn supports_streams(remote: &Version) -> bool {
    let local = Version {
        major: LOCAL.0,
        minor: LOCAL.1,
        ..Version::default()
    };
    if compare_major_minor(remote, &local) != Ordering::Less {
        return true;
    }
    matches!((remote.major, remote.minor), (2, 1..=3) | (3, 0..=3))
}

/// The error a 412's body stands for, the body with one trailing `\n`
/// trimmed (`stream.go:670-697`).
pub(crate) fn precondition_failed(body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    match text.strip_suffix('\n').unwrap_or(&text) {
        "incompatible version" => Error::IncompatibleVersion,
        "cluster ID mismatch" => Error::ClusterIdMismatch,
        _ => Error::UnhandledPrecondition(text.into_owned()),
    }
}

fn failure(text: String) -> Error {
    Error::Transport(TransportError::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, version: Option<&str>) -> DialAnswer {
        classify(status, version.map(str::as_bytes), Id(1), Id(2))
    }

    // etcd's TestStreamReaderDialResult.
    #[test]
    fn answers_with_a_version_are_etcds() {
        let v = Some("3.4.23");
        assert_eq!(answer(200, v), DialAnswer::Established);
        assert_eq!(answer(410, v), DialAnswer::Failed(Error::MemberRemoved));
        assert_eq!(answer(412, v), DialAnswer::PreconditionFailed);
        let DialAnswer::Failed(e) = answer(404, v) else {
            panic!("404 fails")
        };
        assert_eq!(e.to_string(), "peer 2 failed to find local node 1");
        let DialAnswer::Failed(e) = answer(405, v) else {
            panic!("405 fails")
        };
        assert_eq!(e.to_string(), "unhandled http status 405");
    }

    // etcd's TestStreamReaderDialDetectUnsupport, and §5.1's table.
    #[test]
    fn answers_without_a_version_are_unsupported_whatever_the_status() {
        for status in [200, 404, 410, 500] {
            assert_eq!(answer(status, None), DialAnswer::Unsupported);
        }
        assert_eq!(answer(200, Some("2.0.0")), DialAnswer::Unsupported);
        assert_eq!(answer(200, Some("2.4.0")), DialAnswer::Unsupported);
        assert_eq!(answer(200, Some("1.9.0")), DialAnswer::Unsupported);
    }

    // etcd's TestCheckStreamSupport, and newer peers.
    #[test]
    fn versions_with_streams() {
        for v in [
            "2.1.0",
            "2.1.9",
            "2.1.0-alpha",
            "3.0.0",
            "3.3.9",
            "3.4.0",
            "3.5.17",
            "4.0.0",
        ] {
            assert_eq!(answer(200, Some(v)), DialAnswer::Established, "{v}");
        }
    }

    #[test]
    fn a_malformed_version_is_an_error_not_a_crash() {
        assert!(matches!(answer(404, Some("abc")), DialAnswer::Failed(_)));
        assert!(matches!(answer(200, Some("3.4")), DialAnswer::Failed(_)));
    }

    #[test]
    fn precondition_bodies_are_read_as_etcd_does() {
        assert_eq!(
            precondition_failed(b"incompatible version\n"),
            Error::IncompatibleVersion
        );
        assert_eq!(
            precondition_failed(b"cluster ID mismatch\n"),
            Error::ClusterIdMismatch
        );
        assert_eq!(
            precondition_failed(b"to field mismatch\n").to_string(),
            "unhandled error \"to field mismatch\\n\" when precondition failed"
        );
    }
}

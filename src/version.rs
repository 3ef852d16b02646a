//! The versions this member announces, and etcd's compatibility check.
//!
//! etcd reads a peer's `X-Server-Version` and `X-Min-Cluster-Version` as
//! semantic versions (`rafthttp/util.go:120-169`, with
//! `github.com/coreos/go-semver`) and compares major.minor only. These are
//! the same rules as pure functions, with one difference: etcd panics on a
//! malformed header (`semver.Must`), while [`parse_version_header`] returns
//! an error the receiver answers with 412 `incompatible version`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// `X-Server-Version` we send (etcd `version.Version`,
/// `version/version.go:29`).
pub const SERVER_VERSION: &str = "3.4.23";

/// `X-Min-Cluster-Version` we send (etcd `version.MinClusterVersion`,
/// `version/version.go:28`).
pub const MIN_CLUSTER_VERSION: &str = "3.0.0";

/// The cluster version `/version` reports (etcd 3.4's `etcdcluster`).
pub(crate) const CLUSTER_VERSION: &str = "3.4.0";

/// The version assumed when a peer sends no version header: etcd 2.0 did
/// not send one (`rafthttp/util.go:138`, `:148`).
pub(crate) const DEFAULT_HEADER_VERSION: &str = "2.0.0";

/// A semantic version as go-semver reads it: `major.minor.patch`, then an
/// optional `-pre.release` and `+build.metadata`.
///
/// Only `major` and `minor` take part in etcd's checks
/// ([`compare_major_minor`]); the rest is kept so that the version prints
/// back exactly as it was received, for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Version {
    /// The major version.
    pub major: u64,
    /// The minor version.
    pub minor: u64,
    /// The patch version (ignored by the checks).
    pub patch: u64,
    /// The pre-release after `-`, empty when there is none (ignored by the
    /// checks).
    pub pre_release: String,
    /// The build metadata after `+`, empty when there is none (ignored by
    /// the checks).
    pub metadata: String,
}

/// Why a version string is not a semantic version. The receiver answers it
/// with 412 `incompatible version`, where etcd would panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {value:?}: {reason}")]
pub(crate) struct InvalidVersion {
    /// The string that was rejected.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Version {
    /// A version without pre-release or metadata.
    #[cfg(test)]
    pub(crate) const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
            pre_release: String::new(),
            metadata: String::new(),
        }
    }
}

impl FromStr for Version {
    type Err = InvalidVersion;

    /// Parses as go-semver's `NewVersion`: exactly three dot-separated
    /// decimal numbers that fit an `i64`, and pre-release and metadata made
    /// of dot-separated `[0-9A-Za-z-]+` identifiers.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidVersion {
            value: s.to_owned(),
            reason,
        };
        let (rest, metadata) = split_off(s, '+');
        let (core, pre_release) = split_off(rest, '-');
        if !is_identifier_list(pre_release) {
            return Err(invalid("bad pre-release"));
        }
        if !is_identifier_list(metadata) {
            return Err(invalid("bad metadata"));
        }
        let mut parts = core.splitn(3, '.');
        let mut number = || parts.next().and_then(parse_number);
        let (Some(major), Some(minor), Some(patch)) = (number(), number(), number()) else {
            return Err(invalid("not in dotted-tri format"));
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre_release: pre_release.to_owned(),
            metadata: metadata.to_owned(),
        })
    }
}

impl fmt::Display for Version {
    /// Prints as go-semver's `String()`: the input it was parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre_release.is_empty() {
            write!(f, "-{}", self.pre_release)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

/// Splits `s` at the first `delim` (go-semver's `splitOff`); the second half
/// is empty when `delim` does not occur.
fn split_off(s: &str, delim: char) -> (&str, &str) {
    s.split_once(delim).unwrap_or((s, ""))
}

/// go-semver's `validateIdentifier`: empty, or matching
/// `^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$`.
fn is_identifier_list(s: &str) -> bool {
    s.is_empty()
        || s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// One version number, as Go's `strconv.ParseInt(s, 10, 64)` reads it
/// after go-semver has split off `-` and `+`: decimal digits, at most
/// `i64::MAX`.
fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok())
}

/// Reads a version header as etcd's `serverVersion` / `minClusterVersion`
/// do (`rafthttp/util.go:134-150`): a missing or empty header means
/// [`DEFAULT_HEADER_VERSION`]; anything else must be a semantic version.
pub(crate) fn parse_version_header(value: Option<&str>) -> Result<Version, InvalidVersion> {
    match value {
        None | Some("") => DEFAULT_HEADER_VERSION.parse(),
        Some(v) => v.parse(),
    }
}

/// Compares major.minor only, ignoring patch, pre-release and metadata
/// (etcd `compareMajorMinorVersion`, `rafthttp/util.go:120-132`), so 3.4.0
/// and 3.4.23 count as equal.
pub(crate) fn compare_major_minor(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor).cmp(&(b.major, b.minor))
}

/// etcd's two compatibility rules (`checkVersionCompatibility`,
/// `rafthttp/util.go:155-169`): a remote server older than our
/// [`MIN_CLUSTER_VERSION`] is too old for us, and a remote whose minimum
/// cluster version is newer than our [`SERVER_VERSION`] finds us too old.
/// Either gives [`Error::IncompatibleVersion`].
pub(crate) fn check_version_compatibility(
    remote_server: &Version,
    remote_min_cluster: &Version,
) -> Result<(), Error> {
    let local_server = local_version(SERVER_VERSION);
    let local_min_cluster = local_version(MIN_CLUSTER_VERSION);
    let remote_too_old = compare_major_minor(remote_server, &local_min_cluster).is_lt();
    let local_too_old = compare_major_minor(remote_min_cluster, &local_server).is_gt();
    if remote_too_old || local_too_old {
        return Err(Error::IncompatibleVersion);
    }
    Ok(())
}

/// One of our own version constants, parsed. They are valid (a unit test
/// checks it); were one not, 0.0.0 would make the check strict, not panic.
fn local_version(constant: &str) -> Version {
    constant.parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn own_constants_are_valid_versions() {
        for c in [SERVER_VERSION, MIN_CLUSTER_VERSION, CLUSTER_VERSION] {
            assert_eq!(v(c).to_string(), c);
        }
        assert_eq!(v(SERVER_VERSION), Version::new(3, 4, 23));
    }

    // etcd TestCompareMajorMinorVersion (util_test.go:54)
    #[test]
    fn compare_major_minor_ignores_patch_and_pre_release() {
        let cases = [
            ("2.1.0", "2.1.0", Ordering::Equal),
            ("2.0.0", "2.1.0", Ordering::Less),
            ("2.2.0", "2.1.0", Ordering::Greater),
            ("2.1.1", "2.1.0", Ordering::Equal),
            ("2.1.0-alpha.0", "2.1.0", Ordering::Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_major_minor(&v(a), &v(b)), want, "{a} vs {b}");
        }
    }

    // etcd TestServerVersion (util_test.go:97) and TestMinClusterVersion
    // (util_test.go:124): both headers are read the same way.
    #[test]
    fn version_header_defaults_to_2_0_0_and_parses_verbatim() {
        let cases = [
            (None, "2.0.0"),
            (Some(""), "2.0.0"),
            (Some("2.1.0"), "2.1.0"),
            (Some("2.1.0-alpha.0+git"), "2.1.0-alpha.0+git"),
        ];
        for (header, want) in cases {
            assert_eq!(parse_version_header(header).unwrap().to_string(), want);
        }
    }

    #[test]
    fn malformed_version_header_is_an_error_not_a_panic() {
        let bad = [
            "garbage",
            "3",
            "3.4",
            "3.4.x",
            "3..0",
            "3.4.0.1",
            " 3.4.0",
            "+3.4.0",
            "3.4.0-a..b",
            "3.4.0-é",
            "99999999999999999999.0.0",
            "9223372036854775808.0.0",
            "-1.0.0",
        ];
        for s in bad {
            assert!(parse_version_header(Some(s)).is_err(), "{s:?}");
        }
        assert_eq!(v("9223372036854775807.0.0").major, i64::MAX as u64);
        assert_eq!(
            v("03.04.00"),
            Version::new(3, 4, 0),
            "Go's ParseInt accepts leading zeros"
        );
        assert_eq!(
            v("3.4.0-"),
            Version::new(3, 4, 0),
            "go-semver accepts an empty pre-release"
        );
        assert_eq!(
            v("3.4.0+"),
            Version::new(3, 4, 0),
            "go-semver accepts empty metadata"
        );
    }

    // etcd TestCheckVersionCompatibility (util_test.go:151)
    #[test]
    fn check_version_compatibility_follows_etcd_rules() {
        let ls = v(SERVER_VERSION);
        let lmc = v(MIN_CLUSTER_VERSION);
        let cases = [
            // the same version as local
            (ls.clone(), lmc.clone(), true),
            // one version lower
            (lmc.clone(), Version::default(), true),
            // one version higher
            (Version::new(ls.major + 1, 0, 0), ls.clone(), true),
            // too low version
            (Version::new(lmc.major - 1, 0, 0), Version::default(), false),
            // too high version
            (
                Version::new(ls.major + 1, 1, 0),
                Version::new(ls.major + 1, 0, 0),
                false,
            ),
        ];
        for (server, min_cluster, ok) in cases {
            let got = check_version_compatibility(&server, &min_cluster);
            assert_eq!(
                got.is_ok(),
                ok,
                "server {server}, min cluster {min_cluster}"
            );
            if !ok {
                assert_eq!(got, Err(Error::IncompatibleVersion));
            }
        }
    }

    #[test]
    fn etcd_2_3_and_a_missing_header_are_incompatible() {
        let default = parse_version_header(None).unwrap();
        assert!(check_version_compatibility(&v("2.3.0"), &default).is_err());
        assert!(check_version_compatibility(&default, &default).is_err());
        assert!(check_version_compatibility(&v("3.5.0"), &v("3.4.99")).is_ok());
        assert!(check_version_compatibility(&v("3.6.0"), &v("3.5.0")).is_err());
    }
}

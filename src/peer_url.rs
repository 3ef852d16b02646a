//! A peer URL as etcd accepts it: one type and one validator for every URL
//! the crate takes (peer URLs of a pipeline, this member's advertised URLs,
//! `X-PeerURLs` from a remote, `--initial-cluster`). Pure.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A peer URL checked as etcd's `types.NewURLs` checks it, in the form Go's
/// `url.Parse(s).String()` prints it, which is also the form etcd hashes
/// into member ids.
///
/// Surrounding blanks are trimmed and the scheme is lower-cased; the rest
/// is kept as written (Go keeps the host's case). The scheme must be
/// `http`, `https`, `unix` or `unixs`, the address `host:port`, and the path
/// empty, as etcd requires. User info, a query or a fragment, which etcd
/// would keep but no peer URL needs, are refused, as are characters Go
/// would escape, so the form kept is always Go's. A pipeline posts only to
/// `http` and `https` URLs ([`PeerUrl::is_http`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerUrl(String);

impl PeerUrl {
    /// Checks `url` and returns it in Go's form.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidUrl(format!("{url} ({why})"));
        let trimmed = url.trim();
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| invalid("no scheme://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "unix" | "unixs") {
            return Err(invalid("scheme must be http, https, unix or unixs"));
        }
        if rest.contains(['@', '?', '#']) {
            return Err(invalid("user info, query and fragment are not supported"));
        }
        if rest.contains('/') {
            return Err(invalid("URL must not contain a path"));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| invalid("address is not host:port"))?;
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("port must be digits"));
        }
        if !host_is_go_form(host) {
            return Err(invalid("host has characters Go would escape"));
        }
        Ok(PeerUrl(format!("{scheme}://{rest}")))
    }

    /// The URL as text, e.g. `http://10.0.0.1:2380`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the scheme is `http` or `https`, the ones a pipeline can
    /// post to.
    pub fn is_http(&self) -> bool {
        self.0.starts_with("http://") || self.0.starts_with("https://")
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PeerUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self, Error> {
        PeerUrl::parse(url)
    }
}

impl PartialEq<str> for PeerUrl {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PeerUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for PeerUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<PeerUrl> for String {
    fn from(url: PeerUrl) -> String {
        url.0
    }
}

/// Whether Go would print `host` as it is: a bracketed IPv6 address, or
/// letters, digits and `-._~` only.
fn host_is_go_form(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(v6) => {
            let v6 = v6.strip_suffix(']').unwrap_or("");
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')),
    }
}

/// Go's `net.SplitHostPort` for the forms a peer URL can take:
/// `host:port` with no other colon, or `[v6]:port`.
fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    if addr.starts_with('[') {
        let end = addr.find(']')?;
        let port = addr[end + 1..].strip_prefix(':')?;
        return Some((&addr[..=end], port));
    }
    let (host, port) = addr.split_once(':')?;
    if port.contains(':') || host.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> String {
        PeerUrl::parse(url).expect(url).to_string()
    }

    #[test]
    fn go_lower_cases_the_scheme_only() {
        assert_eq!(parsed("Https://Example.COM:1"), "https://Example.COM:1");
        assert_eq!(parsed(" HTTP://127.0.0.1:2380 "), "http://127.0.0.1:2380");
        assert_eq!(parsed("http://[::1]:2380"), "http://[::1]:2380");
    }

    #[test]
    fn rejects_what_etcd_rejects() {
        for bad in [
            "",
            "127.0.0.1:2380",
            "ftp://127.0.0.1:2380",
            "http://",
            "http://localhost",
            "http://127.0.0.1:2380/",
            "http://127.0.0.1:2380/raft",
            "http://127.0.0.1:x",
            "http://a:1:2",
            "http://u@h:1",
            "/raft",
        ] {
            assert!(PeerUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_http_and_https_can_be_posted_to() {
        assert!(PeerUrl::parse("https://h:1").unwrap().is_http());
        assert!(!PeerUrl::parse("unix://h:1").unwrap().is_http());
    }

    #[test]
    fn sorts_as_text() {
        let mut urls = vec![parsed("http://b:1"), parsed("http://a:1")];
        urls.sort();
        assert_eq!(urls, ["http://a:1", "http://b:1"]);
    }
}

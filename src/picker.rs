//! etcd's `urlPicker` (`rafthttp/urlpick.go`): which of the peer's URLs to
//! post to. Pure: no I/O, no clock.

use crate::error::Error;
use crate::peer_url::PeerUrl;

/// Picks one of the peer's URLs and moves on only when that URL fails.
///
/// It starts at the first URL of the sorted list. [`UrlPicker::unreachable`]
/// advances only when the failed URL is still the current pick, so four
/// senders failing on the same URL advance it once, as in etcd.
#[derive(Debug, Clone)]
pub(crate) struct UrlPicker {
    urls: Vec<PeerUrl>,
    picked: usize,
}

impl UrlPicker {
    /// A picker over `urls`, validated ([`PeerUrl`], and `http` or `https`
    /// since the pipeline posts to them) and sorted as etcd's
    /// `types.NewURLs` does.
    pub(crate) fn new(urls: &[String]) -> Result<Self, Error> {
        if urls.is_empty() {
            return Err(Error::InvalidConfig("peer_urls is empty".into()));
        }
        let mut urls = urls
            .iter()
            .map(|u| pipeline_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        urls.sort();
        Ok(UrlPicker { urls, picked: 0 })
    }

    /// The URL to use now.
    pub(crate) fn pick(&self) -> &PeerUrl {
        &self.urls[self.picked]
    }

    /// The position of the current pick in [`UrlPicker::urls`].
    pub(crate) fn picked_index(&self) -> usize {
        self.picked
    }

    /// Records that `url` failed: the next pick moves on, but only when
    /// `url` is still the current pick.
    pub(crate) fn unreachable(&mut self, url: &PeerUrl) {
        if self.pick() == url {
            self.picked = (self.picked + 1) % self.urls.len();
        }
    }

    /// All URLs, sorted.
    pub(crate) fn urls(&self) -> &[PeerUrl] {
        &self.urls
    }
}

/// `url` as a [`PeerUrl`] the pipeline can post to (`http` or `https`).
pub(crate) fn pipeline_url(url: &str) -> Result<PeerUrl, Error> {
    let parsed = PeerUrl::parse(url)?;
    match parsed.is_http() {
        true => Ok(parsed),
        false => Err(Error::InvalidUrl(format!(
            "{url} (the pipeline posts to http and https URLs only)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    // etcd TestURLPickerPickTwice
    #[test]
    fn pick_twice_gives_the_same_url() {
        let p = UrlPicker::new(&urls(&["http://127.0.0.1:2380", "http://127.0.0.1:7001"])).unwrap();
        let first = p.pick().to_owned();
        assert_eq!(*p.pick(), first);
        assert!(p.urls().contains(&first));
    }

    // etcd TestURLPickerUpdate: an update is a new picker (the per-peer
    // core swaps it in, see `peer::tests::update_urls_*`).
    #[test]
    fn a_new_picker_starts_at_the_first_sorted_url() {
        let p = UrlPicker::new(&urls(&["http://localhost:4002", "http://localhost:4001"])).unwrap();
        assert_eq!(p.pick().as_str(), "http://localhost:4001");
        assert_eq!(p.picked_index(), 0);
    }

    // etcd TestURLPickerUnreachable
    #[test]
    fn unreachable_advances_only_for_the_current_pick() {
        let mut p = UrlPicker::new(&urls(&["http://b:1", "http://a:1", "http://c:1"])).unwrap();
        assert_eq!(p.pick().as_str(), "http://a:1", "sorted");
        let failed = p.pick().to_owned();
        p.unreachable(&failed);
        assert_eq!(p.pick().as_str(), "http://b:1");
        p.unreachable(&failed);
        assert_eq!(
            p.pick().as_str(),
            "http://b:1",
            "a stale failure does not advance"
        );
        p.unreachable(&PeerUrl::parse("http://b:1").unwrap());
        p.unreachable(&PeerUrl::parse("http://c:1").unwrap());
        assert_eq!(p.pick().as_str(), "http://a:1", "wraps around");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "127.0.0.1:2380",
            "ftp://x:1",
            "http://",
            "/raft",
            "unix://x:1",
        ] {
            assert!(UrlPicker::new(&urls(&[bad])).is_err(), "{bad}");
        }
    }
}

//! Member and cluster ids as etcd derives them, so that a member built from
//! this crate agrees with a real etcd cluster on who is who.
//!
//! etcd 3.4 gives each member of a new cluster an id computed from its peer
//! URLs and the `--initial-cluster-token` (`membership.NewMember`,
//! `etcdserver/api/membership/member.go:66-89`), and the cluster an id
//! computed from its members' ids (`RaftCluster.genID`,
//! `etcdserver/api/membership/cluster.go:223-231`):
//!
//! - member id: the first 8 bytes, big-endian, of
//!   `sha1(concat(sorted peer URLs) + token)`. The member's name does not
//!   enter the hash.
//! - cluster id: the first 8 bytes, big-endian, of
//!   `sha1(concat(be64(id) for id in sorted member ids))`.
//!
//! The URLs are hashed in the form Go's `url.Parse(s).String()` prints them,
//! after etcd's `types.NewURLs` checks; [`PeerUrl`] produces it.
//!
//! ```
//! use rafthttp_pipeline::membership::InitialCluster;
//!
//! let cluster = InitialCluster::parse("default=http://localhost:2380", "etcd-cluster").unwrap();
//! assert_eq!(cluster.member("default").unwrap().id.to_string(), "8e9e05c52164694d");
//! assert_eq!(cluster.cluster_id.to_string(), "cdf818194e3a8c32");
//! ```

use sha1::{Digest, Sha1};

use crate::error::Error;
use crate::id::Id;
use crate::peer_url::PeerUrl;

/// The token etcd uses when `--initial-cluster-token` is not given.
pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &str = "etcd-cluster";

/// One member of an initial cluster: its name, its id and its peer URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name (`--name`); it does not enter the id.
    pub name: String,
    /// The id etcd derives for it ([`member_id`]).
    pub id: Id,
    /// Its peer URLs, normalised ([`PeerUrl`]) and sorted.
    pub peer_urls: Vec<String>,
}

/// The members of a new cluster and the cluster's id, as etcd derives them
/// from `--initial-cluster` and `--initial-cluster-token`
/// (`membership.NewClusterFromURLsMap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCluster {
    /// The members, sorted by id (etcd's `MemberIDs` order).
    pub members: Vec<Member>,
    /// The cluster's id ([`cluster_id`]).
    pub cluster_id: Id,
}

impl InitialCluster {
    /// Parses `--initial-cluster` (`name=url,name=url,...`; a name given
    /// several times gets all of its URLs, as etcd's `types.NewURLsMap`
    /// does) and derives every id with `token`.
    ///
    /// Fails on an empty list, an entry without `=`, a URL etcd would
    /// refuse, or two members with the same id (etcd's
    /// `member exists with identical ID`).
    pub fn parse(initial_cluster: &str, token: &str) -> Result<Self, Error> {
        let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
        for entry in initial_cluster.split(',').filter(|e| !e.is_empty()) {
            let (name, url) = entry.split_once('=').ok_or_else(|| {
                Error::InvalidConfig(format!("initial cluster entry {entry:?} is not name=url"))
            })?;
            match by_name.iter_mut().find(|(n, _)| n == name) {
                Some((_, urls)) => urls.push(url.to_owned()),
                None => by_name.push((name.to_owned(), vec![url.to_owned()])),
            }
        }
        if by_name.is_empty() {
            return Err(Error::InvalidConfig("initial cluster is empty".into()));
        }
        let members = by_name
            .into_iter()
            .map(|(name, urls)| Member::new(name, &urls, token))
            .collect::<Result<Vec<_>, _>>()?;
        InitialCluster::from_members(members)
    }

    /// A cluster of these members; its id is derived from theirs.
    ///
    /// Fails when two members have the same id.
    pub fn from_members(mut members: Vec<Member>) -> Result<Self, Error> {
        members.sort_by_key(|m| m.id);
        if let Some(w) = members.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(Error::InvalidConfig(format!(
                "member exists with identical ID {} ({} and {})",
                w[0].id, w[0].name, w[1].name
            )));
        }
        let ids: Vec<Id> = members.iter().map(|m| m.id).collect();
        Ok(InitialCluster {
            cluster_id: cluster_id(&ids),
            members,
        })
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The member with id `id`.
    pub fn member_by_id(&self, id: Id) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Every member but the one called `name`: the peers `name` talks to.
    pub fn peers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members.iter().filter(move |m| m.name != name)
    }
}

impl Member {
    /// A member called `name` with these peer URLs, its id derived with
    /// `token`. Fails on a URL etcd would refuse, or on an id of 0, which
    /// raft reserves for "none".
    pub fn new(name: impl Into<String>, peer_urls: &[String], token: &str) -> Result<Self, Error> {
        let mut urls = peer_urls
            .iter()
            .map(|u| PeerUrl::parse(u).map(String::from))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(Error::InvalidConfig("a member needs a peer URL".into()));
        }
        urls.sort();
        let id = hash_member(&urls, token);
        if id.0 == 0 {
            return Err(Error::InvalidConfig("cannot use 0 as member id".into()));
        }
        Ok(Member {
            name: name.into(),
            id,
            peer_urls: urls,
        })
    }
}

/// The id etcd gives a member of a new cluster with these peer URLs and
/// `--initial-cluster-token` `token`: the first 8 bytes, big-endian, of
/// `sha1(concat(sorted normalised URLs) + token)`.
///
/// Fails on a URL etcd would refuse ([`PeerUrl`]).
pub fn member_id<S: AsRef<str>>(peer_urls: &[S], token: &str) -> Result<Id, Error> {
    let mut urls = peer_urls
        .iter()
        .map(|u| PeerUrl::parse(u.as_ref()).map(String::from))
        .collect::<Result<Vec<_>, _>>()?;
    urls.sort();
    Ok(hash_member(&urls, token))
}

fn hash_member(sorted_urls: &[String], token: &str) -> Id {
    let mut hasher = Sha1::new();
    for url in sorted_urls {
        hasher.update(url.as_bytes());
    }
    hasher.update(token.as_bytes());
    first_eight_bytes(&hasher.finalize())
}

/// The id of a cluster with these members: the first 8 bytes, big-endian,
/// of `sha1(concat(be64(id) for id in sorted ids))`. The order of `members`
/// does not matter.
pub fn cluster_id(members: &[Id]) -> Id {
    let mut ids = members.to_vec();
    ids.sort();
    let mut hasher = Sha1::new();
    for id in ids {
        hasher.update(id.0.to_be_bytes());
    }
    first_eight_bytes(&hasher.finalize())
}

fn first_eight_bytes(digest: &[u8]) -> Id {
    let mut be = [0u8; 8];
    be.copy_from_slice(&digest[..8]);
    Id(u64::from_be_bytes(be))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    // etcd's defaults: `etcd` alone, as its logs and `endpoint status` show.
    #[test]
    fn default_single_member_cluster_matches_etcd() {
        let id = member_id(&["http://localhost:2380"], "etcd-cluster").unwrap();
        assert_eq!(id.to_string(), "8e9e05c52164694d");
        assert_eq!(cluster_id(&[id]).to_string(), "cdf818194e3a8c32");
        let c = InitialCluster::parse(
            "default=http://localhost:2380",
            DEFAULT_INITIAL_CLUSTER_TOKEN,
        )
        .unwrap();
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.members[0].id, Id(0x8e9e05c52164694d));
        assert_eq!(c.cluster_id, Id(0xcdf818194e3a8c32));
    }

    // Two members, token "tok", as etcd derives them.
    #[test]
    fn two_member_cluster_matches_etcd() {
        let c = InitialCluster::parse("a=http://127.0.0.1:2380,b=http://127.0.0.1:2390", "tok")
            .unwrap();
        assert_eq!(c.member("a").unwrap().id.to_string(), "71405583d3e2d5ce");
        assert_eq!(c.member("b").unwrap().id.to_string(), "ff9d11e786a34662");
        assert_eq!(c.cluster_id.to_string(), "b68d8883cd0382a6");
        let ids = [Id(0xff9d11e786a34662), Id(0x71405583d3e2d5ce)];
        assert_eq!(
            cluster_id(&ids),
            c.cluster_id,
            "member order does not matter"
        );
        let peers: Vec<_> = c.peers_of("a").map(|m| m.name.as_str()).collect();
        assert_eq!(peers, ["b"]);
        assert_eq!(c.member_by_id(Id(0xff9d11e786a34662)).unwrap().name, "b");
    }

    #[test]
    fn name_does_not_enter_the_hash() {
        let a = InitialCluster::parse("x=http://127.0.0.1:2380", "tok").unwrap();
        let b = InitialCluster::parse("some-other-name=http://127.0.0.1:2380", "tok").unwrap();
        assert_eq!(a.members[0].id, b.members[0].id);
        assert_eq!(a.cluster_id, b.cluster_id);
    }

    #[test]
    fn urls_are_hashed_in_gos_form() {
        let plain = member_id(&["http://127.0.0.1:2380"], "tok").unwrap();
        assert_eq!(
            member_id(&[" HTTP://127.0.0.1:2380 "], "tok").unwrap(),
            plain
        );
    }

    #[test]
    fn several_urls_of_one_member_are_sorted_and_concatenated() {
        let urls = ["http://127.0.0.1:2390", "http://127.0.0.1:2380"];
        let mut hasher = Sha1::new();
        hasher.update(b"http://127.0.0.1:2380http://127.0.0.1:2390tok");
        let expected = first_eight_bytes(&hasher.finalize());
        assert_eq!(member_id(&urls, "tok").unwrap(), expected);
        let c = InitialCluster::parse("m=http://127.0.0.1:2390,m=http://127.0.0.1:2380", "tok")
            .unwrap();
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.members[0].id, expected);
        assert_eq!(
            c.members[0].peer_urls,
            s(&["http://127.0.0.1:2380", "http://127.0.0.1:2390"])
        );
    }

    #[test]
    fn rejects_what_etcd_rejects() {
        for bad in [
            "",
            "127.0.0.1:2380",
            "ftp://127.0.0.1:2380",
            "http://localhost",
            "http://127.0.0.1:2380/",
            "http://127.0.0.1:2380/raft",
            "http://127.0.0.1:x",
            "http://a:1:2",
        ] {
            assert!(member_id(&[bad], "tok").is_err(), "{bad:?}");
        }
        assert!(InitialCluster::parse("", "tok").is_err());
        assert!(InitialCluster::parse("noequals", "tok").is_err());
        let dup = InitialCluster::parse("a=http://127.0.0.1:1,b=http://127.0.0.1:1", "tok");
        assert!(matches!(dup, Err(Error::InvalidConfig(m)) if m.contains("identical ID")));
    }
}

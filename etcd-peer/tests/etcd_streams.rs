//! etcd's streams with a real etcd 3.4.23.
//!
//! - Our member, started with the library's `MemberBuilder` and streams on,
//!   is a peer in etcd's initial cluster. etcd dials our stream endpoints
//!   and we dial etcd's; etcd logs `established TCP streaming connection
//!   with remote peer` for its two readers and its two writers, and etcd's
//!   campaign messages reach our raft actor by stream.
//! - etcd and the `etcd-peer` stand-in with `--streams` form a cluster: all
//!   four streams come up, writes commit, and no append is rejected (the
//!   leader's MsgApps arrive in order on the msgappv2 stream). Killing
//!   etcd and starting it again brings all four streams back.
//! - Two etcds and the stand-in with `--streams` form a cluster of three:
//!   all four streams come up between every pair, writes commit, then
//!   commit again after `etcdctl move-leader` hands leadership to the other
//!   etcd, and again after that leader is killed and the remaining etcd
//!   wins an election with our vote (2 of 3, so every commit needs our
//!   MsgAppResp).
//! - The stand-in stops (SIGTERM) and starts again on the same URL: etcd
//!   logs all four streams established again, and a write commits.

mod support;

use std::time::{Duration, Instant};

use actix::prelude::*;
use rafthttp_pipeline::membership::InitialCluster;
use rafthttp_pipeline::transport::{AddPeer, MemberBuilder, RaftRecipients, TransportConfig};
use rafthttp_pipeline::{Inbound, LocalMember, ProcessError, ReportSnapshot, ReportUnreachable};
use tokio::sync::watch;

use serde_json::Value;
use support::etcd::{etcd_available, free_port, loopback_url, Etcd, EtcdConfig, TempDir};
use support::peer::Peer;
use support::streams::{all_four, established, wait_all_four, wait_all_four_since};

/// How long etcd may take to establish its streams.
const WAIT: Duration = Duration::from_secs(20);
/// How long a write may take to commit after a change of leader.
const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// Counts messages that came by stream (no `X-PeerURLs`) and by pipeline.
struct Raft {
    by_stream: watch::Sender<usize>,
}

impl Actor for Raft {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Raft {
    type Result = Result<(), ProcessError>;
    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        if inbound.peer_urls.is_empty() {
            self.by_stream.send_modify(|n| *n += 1);
        }
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Raft {
    type Result = ();
    fn handle(&mut self, _: ReportUnreachable, _: &mut Context<Self>) {}
}

impl Handler<ReportSnapshot> for Raft {
    type Result = ();
    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

#[actix_rt::test]
async fn etcd_establishes_all_four_streams_with_our_member() {
    if !etcd_available() {
        return;
    }
    let _ = env_logger::builder().is_test(true).try_init();
    let our_port = free_port();
    let config = EtcdConfig::new("etcd", "streams").member("peer", &loopback_url(our_port));
    let cluster = InitialCluster::parse(&config.initial_cluster(), "streams").expect("cluster");
    let me = cluster.member("peer").expect("our member").id;
    let etcd_id = cluster.member("etcd").expect("etcd").id;

    let (by_stream, seen) = watch::channel(0usize);
    let member = MemberBuilder::new(LocalMember::new(me, cluster.cluster_id))
        .bind(([127, 0, 0, 1], our_port))
        .workers(1)
        .receiver(|r| r.serve_version(true))
        .transport(TransportConfig::with_streams)
        .start(|_| RaftRecipients::new(Raft { by_stream }.start()))
        .expect("bind our port");
    let add = AddPeer {
        id: etcd_id,
        urls: vec![config.peer_url()],
    };
    member
        .transport()
        .send(add)
        .await
        .unwrap()
        .expect("etcd as a peer");

    let etcd = actix_web::web::block(move || Etcd::start(config))
        .await
        .expect("start thread")
        .expect("etcd starts");
    let ours = me.to_string();
    let deadline = Instant::now() + WAIT;
    while established(&etcd.log(), &ours) != all_four() {
        assert!(
            Instant::now() < deadline,
            "etcd log tail:\n{}",
            etcd.log_tail(30)
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // etcd, alone without our votes, campaigns: its votes reach us by
    // stream.
    let mut seen = seen.clone();
    let arrived = tokio::time::timeout(WAIT, seen.wait_for(|n| *n > 0)).await;
    assert!(
        arrived.is_ok(),
        "no message by stream; log tail:\n{}",
        etcd.log_tail(30)
    );
    member.stop().await;
}

#[test]
fn etcd_and_the_stand_in_commit_writes_over_streams_and_reconnect() {
    if !etcd_available() {
        return;
    }
    let dir = TempDir::new("rafthttp-etcd-streams").expect("temp dir");
    let our_url = loopback_url(free_port());
    let config = EtcdConfig::new("etcd-s", "tok-s")
        .member("rust-peer", &our_url)
        .fast_timers();
    let args: Vec<String> = [
        "--name",
        "rust-peer",
        "--initial-cluster",
        &config.initial_cluster(),
        "--initial-cluster-token",
        "tok-s",
        "--listen-peer-urls",
        &our_url,
        "--streams",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut standin = Peer::spawn("rust-peer", &args, dir.path());
    standin
        .try_wait_for(WAIT, |e| e["event"] == "up")
        .unwrap_or_else(|e| panic!("stand-in: {e}\n{}", standin.log_tail(10)));
    let ours = standin.identity()["member_id"]
        .as_str()
        .expect("our id")
        .to_owned();
    let mut etcd = Etcd::start(config.clone()).expect("etcd starts");
    wait_all_four(&etcd, &ours, WAIT);
    etcd.wait_healthy(WAIT).expect("a leader, with our vote");
    for i in 0..100 {
        let out = etcd.etcdctl(&["put", &format!("k{i}"), "v"], Duration::from_secs(5));
        assert!(
            out.status.success(),
            "put {i}: {out:?}\n{}",
            etcd.log_tail(20)
        );
    }
    let counts = standin.counts(WAIT);
    assert!(
        counts["in"]["MsgApp"].as_u64().unwrap_or(0) >= 100,
        "{counts}"
    );
    assert_eq!(counts["rejected_appends"], 0, "MsgApps in order: {counts}");

    // etcd goes away and comes back: the streams come back too.
    etcd.terminate(WAIT).expect("etcd stops");
    drop(etcd);
    let etcd = Etcd::start(config).expect("etcd starts again");
    wait_all_four(&etcd, &ours, WAIT);
}

/// The stand-in's flags: member `name` of `initial_cluster`, listening on
/// `url`, with `--streams`.
fn standin_args(name: &str, initial_cluster: &str, token: &str, url: &str) -> Vec<String> {
    [
        "--name",
        name,
        "--initial-cluster",
        initial_cluster,
        "--initial-cluster-token",
        token,
        "--listen-peer-urls",
        url,
        "--streams",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts the stand-in and waits until it says it is up.
fn spawn_standin(label: &str, args: &[String], dir: &std::path::Path) -> Peer {
    let mut standin = Peer::spawn(label, args, dir);
    standin
        .try_wait_for(WAIT, |e| e["event"] == "up")
        .unwrap_or_else(|e| panic!("stand-in: {e}\n{}", standin.log_tail(10)));
    standin
}

/// Puts `key` through `etcd`, trying again (an election may be under way)
/// until it commits, at most [`COMMIT_WAIT`].
fn put_committed(etcd: &Etcd, key: &str) {
    let deadline = Instant::now() + COMMIT_WAIT;
    loop {
        let out = etcd.etcdctl(&["put", key, "v"], Duration::from_secs(1));
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "put {key} on {}: {out:?}\n{}",
            etcd.config.name,
            etcd.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The leader `etcd` knows of (`etcdctl endpoint status`), as a hex id the
/// way etcd and the stand-in print ids; `None` while there is none.
fn leader_of(etcd: &Etcd) -> Option<String> {
    let out = etcd.etcdctl(
        &["endpoint", "status", "-w", "json"],
        Duration::from_secs(2),
    );
    let status: Value = serde_json::from_slice(&out.stdout).ok()?;
    match status[0]["Status"]["leader"].as_u64() {
        Some(0) | None => None,
        Some(id) => Some(format!("{id:x}")),
    }
}

/// Waits until `etcd` reports a leader that `wanted` accepts, at most
/// [`COMMIT_WAIT`], and returns it.
fn wait_leader(etcd: &Etcd, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + COMMIT_WAIT;
    loop {
        let leader = leader_of(etcd);
        if let Some(id) = leader.as_deref().filter(|id| wanted(id)) {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{} reports leader {leader:?}\n{}",
            etcd.config.name,
            etcd.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many messages of type `kind` (e.g. `"MsgApp"`) the stand-in
/// counted in `direction` (`"in"`: received, `"out"`: sent).
fn count(counts: &Value, direction: &str, kind: &str) -> u64 {
    counts[direction][kind].as_u64().unwrap_or(0)
}

/// An id as the stand-in prints it, normalised to etcd's unpadded hex.
fn hex(id: &Value) -> String {
    let text = id.as_str().unwrap_or_else(|| panic!("not an id: {id}"));
    let n = u64::from_str_radix(text, 16).unwrap_or_else(|_| panic!("not a hex id: {text}"));
    format!("{n:x}")
}

#[test]
fn a_mixed_cluster_of_two_etcd_and_our_member_keeps_working_across_leader_changes() {
    if !etcd_available() {
        return;
    }
    let dir = TempDir::new("rafthttp-etcd-mixed").expect("temp dir");
    let our_url = loopback_url(free_port());
    let token = "tok-mixed";
    let c1 = EtcdConfig::new("e1", token).fast_timers();
    let c2 = EtcdConfig::new("e2", token).fast_timers();
    let (url1, url2) = (c1.peer_url(), c2.peer_url());
    let c1 = c1.member("e2", &url2).member("rust-peer", &our_url);
    let c2 = c2.member("e1", &url1).member("rust-peer", &our_url);
    let args = standin_args("rust-peer", &c1.initial_cluster(), token, &our_url);
    let mut standin = spawn_standin("rust-peer", &args, dir.path());
    let identity = standin.identity();
    let ours = hex(&identity["member_id"]);
    let id1 = hex(&identity["members"]["e1"]);
    let id2 = hex(&identity["members"]["e2"]);

    // One after the other, from this thread (an etcd dies with the thread
    // that spawned it, `PR_SET_PDEATHSIG`): `Etcd::start` returns once the
    // peer port answers, which it does before the cluster has formed.
    let e1 = Etcd::start(c1).expect("e1 starts");
    let e2 = Etcd::start(c2).expect("e2 starts");
    for (etcd, other) in [(&e1, &id2), (&e2, &id1)] {
        wait_all_four(etcd, &ours, WAIT);
        wait_all_four(etcd, other, WAIT);
    }

    // The stand-in never campaigns on its own: one of the etcds leads.
    let leader = wait_leader(&e1, |id| id == id1 || id == id2);
    let (lead, other, other_id) = if leader == id1 {
        (&e1, &e2, &id2)
    } else {
        (&e2, &e1, &id1)
    };
    for i in 0..20 {
        put_committed(lead, &format!("first-{i}"));
    }
    let counts = standin.counts(WAIT);
    let before_move = count(&counts, "in", "MsgApp");
    // With the msgappv2 streams up (etcd logged them above), etcd's
    // peer.pick sends every MsgApp by stream, not by pipeline.
    assert!(before_move >= 20, "{counts}");

    // A leadership transfer to the other etcd.
    let moved = lead.etcdctl(&["move-leader", other_id], Duration::from_secs(5));
    assert!(moved.status.success(), "move-leader: {moved:?}");
    wait_leader(other, |id| id == other_id);
    for i in 0..20 {
        put_committed(other, &format!("moved-{i}"));
    }
    let counts = standin.counts(WAIT);
    let after_move = count(&counts, "in", "MsgApp");
    let votes_after_move = count(&counts, "out", "MsgVoteResp");
    assert!(after_move >= before_move + 20, "{counts}");

    // The new leader dies with SIGKILL (the drop): a SIGTERM would make it
    // hand leadership over, maybe to the stand-in, which cannot lead. The
    // remaining etcd wins an election with our vote and commits with our
    // MsgAppResps: no other member is left to make a quorum of 2.
    let (survivor, survivor_id, dead) = if other_id == &id1 {
        (e2, &id2, e1)
    } else {
        (e1, &id1, e2)
    };
    drop(dead);
    wait_leader(&survivor, |id| id == survivor_id);
    for i in 0..20 {
        put_committed(&survivor, &format!("survived-{i}"));
    }
    let counts = standin.counts(WAIT);
    assert!(
        count(&counts, "in", "MsgApp") >= after_move + 20,
        "{counts}"
    );
    assert!(
        count(&counts, "out", "MsgVoteResp") > votes_after_move,
        "our vote in the election after the kill: {counts}"
    );
    // Both etcds reached us, each under its own X-Server-From.
    let mut senders: Vec<String> = counts["senders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(hex)
        .collect();
    senders.sort();
    let mut both = vec![id1.clone(), id2.clone()];
    both.sort();
    assert_eq!(senders, both, "{counts}");
    // No assertion on rejected appends: a new leader probes each follower
    // from its own last index, and our log may be behind it, which raft
    // answers with a rejection (and etcd then backs off), as a real
    // follower would.
    let get = survivor.etcdctl(
        &[
            "get",
            "survived-19",
            "--print-value-only",
            "--consistency=l",
        ],
        Duration::from_secs(2),
    );
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v", "{get:?}");
    standin.stop(WAIT);
}

#[test]
fn the_stand_in_restarted_on_the_same_url_gets_all_four_streams_again() {
    if !etcd_available() {
        return;
    }
    let dir = TempDir::new("rafthttp-etcd-restart").expect("temp dir");
    let our_url = loopback_url(free_port());
    let config = EtcdConfig::new("etcd-r", "tok-r")
        .member("rust-peer", &our_url)
        .fast_timers();
    let args = standin_args("rust-peer", &config.initial_cluster(), "tok-r", &our_url);
    let mut standin = spawn_standin("rust-peer", &args, dir.path());
    let ours = hex(&standin.identity()["member_id"]);
    let etcd = Etcd::start(config).expect("etcd starts");
    wait_all_four(&etcd, &ours, WAIT);
    put_committed(&etcd, "before");

    let offset = etcd.log().len();
    standin.stop(WAIT);
    let mut standin = spawn_standin("rust-peer-again", &args, dir.path());
    wait_all_four_since(&etcd, &ours, offset, WAIT);
    // The restarted stand-in has an empty log: etcd's first appends are
    // rejected and it backs off, so a put may take a few tries.
    put_committed(&etcd, "after");
    let counts = standin.counts(WAIT);
    assert!(count(&counts, "in", "MsgApp") >= 1, "{counts}");
    standin.stop(WAIT);
}

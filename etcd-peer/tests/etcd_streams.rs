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

mod support;

use std::time::{Duration, Instant};

use actix::prelude::*;
use rafthttp_pipeline::membership::InitialCluster;
use rafthttp_pipeline::transport::{AddPeer, MemberBuilder, RaftRecipients, TransportConfig};
use rafthttp_pipeline::{Inbound, LocalMember, ProcessError, ReportSnapshot, ReportUnreachable};
use tokio::sync::watch;

use support::etcd::{etcd_available, free_port, loopback_url, Etcd, EtcdConfig, TempDir};
use support::peer::Peer;
use support::streams::{all_four, established, wait_all_four};

/// How long etcd may take to establish its streams.
const WAIT: Duration = Duration::from_secs(20);

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

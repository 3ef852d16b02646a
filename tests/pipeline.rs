//! The sending pipeline against real HTTP peers on loopback, with etcd's
//! pipeline_test.go scenarios ported under their names.

mod support;

use std::time::Duration;

use actix::prelude::*;
use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::{
    Dropped, Envelope, Error, GetStats, Id, PipelineActor, PipelineConfig, ResetConnections,
    SnapshotStatus, Stop, UpdateUrls,
};
use support::logs::{capture_warnings, merged_count, warnings_with};
use support::*;

fn config(urls: Vec<String>) -> PipelineConfig {
    let (local, peer, cluster) = ids();
    PipelineConfig::new(&LocalMember::new(local, cluster), peer, urls)
}

fn start(config: PipelineConfig, rec: &Recording) -> Addr<PipelineActor> {
    PipelineActor::start(config, rec.recipients()).expect("valid config")
}

async fn send(p: &Addr<PipelineActor>, kind: MessageType, index: u64) -> Result<(), Dropped> {
    p.send(Envelope(message(kind, index)))
        .await
        .expect("pipeline alive")
}

// etcd TestPipelineSend
#[actix_rt::test]
async fn pipeline_send_records_success_in_follower_stats() {
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    wait_stats(&p, "delivery", |s| s.delivered == 1).await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.follower.success, 1);
    assert_eq!(stats.delivered, 1);
    assert_eq!(count_unreachable(&rec.events()), 0);
}

// etcd TestPipelineKeepSendingWhenPostError
#[actix_rt::test]
async fn pipeline_keep_sending_when_post_error() {
    let peer = FakePeer::start(Behaviour::Status(500, "error processing raft message\n"));
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    for i in 0..50 {
        send(&p, MessageType::MsgApp, i).await.unwrap();
    }
    peer.wait_answered(50).await;
    rec.wait_unreachable(50).await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(peer.requests().len(), 50, "every message was attempted");
    assert_eq!((stats.failed, stats.follower.fail), (50, 50));
}

#[actix_rt::test]
async fn pipeline_keep_sending_when_connection_refused() {
    let rec = Recording::start();
    let p = start(config(vec![dead_url()]), &rec);
    for i in 0..50 {
        send(&p, MessageType::MsgHeartbeat, i).await.unwrap();
    }
    let events = rec.wait_unreachable(50).await;
    assert!(events.iter().all(|e| match e {
        Event::Unreachable(r) => matches!(r.reason, Error::Transport(_) | Error::Timeout(_)),
        _ => true,
    }));
    // The I/O error beneath is kept as the source, not flattened to text.
    let refused = events.iter().find_map(|e| match e {
        Event::Unreachable(r) => std::error::Error::source(&r.reason)?
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind),
        _ => None,
    });
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(p.send(Stop).await.unwrap().failed, 50);
}

// etcd TestPipelineExceedMaximumServing
#[actix_rt::test]
async fn pipeline_exceed_maximum_serving() {
    let peer = FakePeer::start(Behaviour::Block);
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    for i in 0..68 {
        send(&p, MessageType::MsgApp, i)
            .await
            .expect("4 in flight + 64 queued");
    }
    let err = send(&p, MessageType::MsgSnap, 68).await.unwrap_err();
    assert_eq!(err.reason, Error::BufferFull);
    let events = rec
        .wait_until("drop reports", |e| {
            count_unreachable(e) == 1 && snapshot_reports(e) == [SnapshotStatus::Failure]
        })
        .await;
    assert_eq!(count_unreachable(&events), 1);

    peer.release();
    wait_stats(&p, "68 deliveries", |s| s.delivered == 68).await;
    send(&p, MessageType::MsgApp, 100)
        .await
        .expect("sending works again");
    tokio::time::timeout(
        Duration::from_secs(1),
        wait_stats(&p, "69 deliveries", |s| s.delivered == 69),
    )
    .await
    .expect("sending works again within 1 s");
    let stats = p.send(Stop).await.unwrap();
    assert_eq!((stats.offered, stats.delivered, stats.dropped), (70, 69, 1));
}

// etcd TestPipelineSendFailed
#[actix_rt::test]
async fn pipeline_send_failed_records_failure_in_follower_stats() {
    let rec = Recording::start();
    let p = start(config(vec![dead_url()]), &rec);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    rec.wait_unreachable(1).await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!((stats.follower.fail, stats.follower.success), (1, 0));
}

// etcd TestPipelinePost: exact method, path, headers and body.
#[actix_rt::test]
async fn pipeline_post_sends_etcds_request() {
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let mut cfg = config(vec![peer.url.clone()]);
    cfg.local.peer_urls = vec!["http://127.0.0.1:9".into(), "http://127.0.0.1:1".into()];
    let p = start(cfg, &rec);
    let msg = rafthttp_pipeline::raftpb::Message {
        r#type: MessageType::MsgSnap as i32,
        to: 2,
        from: 0x1a,
        term: 1,
        ..Default::default()
    };
    p.send(Envelope(msg)).await.unwrap().unwrap();
    peer.wait_answered(1).await;
    let req = &peer.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/raft");
    assert_eq!(req.header("content-type"), Some("application/protobuf"));
    assert_eq!(req.header("x-server-from"), Some("1"));
    assert_eq!(req.header("x-server-version"), Some("3.4.23"));
    assert_eq!(req.header("x-min-cluster-version"), Some("3.0.0"));
    assert_eq!(req.header("x-etcd-cluster-id"), Some("abc"));
    assert_eq!(
        req.header("x-peerurls"),
        Some("http://127.0.0.1:1,http://127.0.0.1:9")
    );
    assert_eq!(req.header("content-length"), Some("30"));
    // etcd's bytes for MsgSnap{From:0x1a, To:2, Term:1} (ETCD-RAFTHTTP.md §2).
    let want = "08071002181a20012800300040004a0a12080a0228001000180050005800";
    let got: String = req.body.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, want);
    rec.wait_until("snapshot finish", |e| {
        snapshot_reports(e) == [SnapshotStatus::Finish]
    })
    .await;
    p.send(Stop).await.unwrap();
}

// Each sender builds its request head once per URL and reuses it: every
// message still carries etcd's headers and the Host of the URL it goes to,
// and a URL change takes effect with the next message.
#[actix_rt::test]
async fn reused_request_heads_follow_url_changes() {
    let first = FakePeer::start(Behaviour::Status(204, ""));
    let second = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let p = start(config(vec![first.url.clone()]), &rec);
    for index in 1..=6 {
        send(&p, MessageType::MsgApp, index).await.unwrap();
    }
    first.wait_answered(6).await;
    p.send(UpdateUrls(vec![second.url.clone()]))
        .await
        .unwrap()
        .unwrap();
    for index in 7..=12 {
        send(&p, MessageType::MsgApp, index).await.unwrap();
    }
    second.wait_answered(6).await;
    for (peer, indexes) in [(&first, 1..=6), (&second, 7..=12)] {
        let requests = peer.requests();
        let host = peer.url.trim_start_matches("http://");
        let mut got: Vec<u64> = requests.iter().map(|r| r.message().index).collect();
        got.sort_unstable();
        assert_eq!(got, indexes.collect::<Vec<_>>());
        for req in &requests {
            assert_eq!(req.header("host"), Some(host));
            assert_eq!(req.header("x-server-from"), Some("1"));
            assert_eq!(req.header("x-etcd-cluster-id"), Some("abc"));
            assert_eq!(req.header("content-type"), Some("application/protobuf"));
        }
    }
    p.send(Stop).await.unwrap();
}

// etcd TestPipelinePostBad: only 204 is success.
#[actix_rt::test]
async fn pipeline_post_bad_statuses_fail() {
    for code in [200u16, 201, 500] {
        let peer = FakePeer::start(Behaviour::Status(code, ""));
        let rec = Recording::start();
        let p = start(config(vec![peer.url.clone()]), &rec);
        send(&p, MessageType::MsgApp, 1).await.unwrap();
        let events = rec.wait_unreachable(1).await;
        let Event::Unreachable(report) = &events[events.len() - 1] else {
            panic!("expected an unreachable report, got {events:?}");
        };
        assert!(
            matches!(report.reason, Error::UnexpectedStatus { .. }),
            "{code}: {:?}",
            report.reason
        );
        let stats = p.send(Stop).await.unwrap();
        assert_eq!((stats.delivered, stats.failed), (0, 1), "{code}");
    }
}

// etcd TestPipelinePostErrorc: 403 is a critical error.
#[actix_rt::test]
async fn pipeline_post_errorc_on_forbidden() {
    let peer = FakePeer::start(Behaviour::Status(
        403,
        "cannot process message from removed member\n",
    ));
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    let events = rec
        .wait_until("critical error", |e| {
            e.iter().any(|e| matches!(e, Event::Critical(_)))
        })
        .await;
    let critical: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Critical(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(critical.len(), 1);
    assert_eq!(critical[0].error, Error::MemberRemoved);
    assert_eq!(count_unreachable(&events), 1);
    p.send(Stop).await.unwrap();
}

#[actix_rt::test]
async fn cluster_id_mismatch_reports_unreachable_and_snapshot_failure() {
    let peer = FakePeer::start(Behaviour::Status(412, "cluster ID mismatch\n"));
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    send(&p, MessageType::MsgSnap, 1).await.unwrap();
    let events = rec
        .wait_until("snapshot failure", |e| !snapshot_reports(e).is_empty())
        .await;
    assert_eq!(snapshot_reports(&events), [SnapshotStatus::Failure]);
    let events = rec.wait_unreachable(1).await;
    assert!(
        events.contains(&Event::Unreachable(rafthttp_pipeline::ReportUnreachable {
            to: rafthttp_pipeline::Id(2),
            message_type: MessageType::MsgSnap as i32,
            reason: Error::ClusterIdMismatch,
        }))
    );
    p.send(Stop).await.unwrap();
}

// etcd TestStopBlockedPipeline
#[actix_rt::test]
async fn stop_blocked_pipeline() {
    let peer = FakePeer::start(Behaviour::Block);
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    for i in 0..40 {
        send(&p, MessageType::MsgApp, i).await.unwrap();
    }
    peer.wait_seen(4).await;
    let stopped = tokio::time::timeout(Duration::from_secs(1), p.send(Stop)).await;
    let stats = stopped.expect("stop finishes within 1 s").unwrap();
    assert_eq!((stats.cancelled, stats.delivered), (40, 0));
    assert_eq!(stats.offered, stats.delivered + stats.reported());
    rec.wait_unreachable(40).await;
}

#[actix_rt::test]
async fn picker_moves_to_the_next_url_after_a_failure() {
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let dead = dead_url();
    // The picker starts at the first sorted URL; make the dead one first.
    let (first, second) = if dead < peer.url {
        (dead.clone(), peer.url.clone())
    } else {
        (peer.url.clone(), dead.clone())
    };
    let rec = Recording::start();
    let p = start(config(vec![second.clone(), first.clone()]), &rec);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    if first == dead {
        rec.wait_unreachable(1).await;
        send(&p, MessageType::MsgSnap, 2).await.unwrap();
        rec.wait_until("snapshot finish", |e| {
            snapshot_reports(e) == [SnapshotStatus::Finish]
        })
        .await;
        assert_eq!(
            peer.requests().len(),
            1,
            "no retry: only the second message"
        );
    } else {
        peer.wait_answered(1).await;
        p.send(UpdateUrls(vec![dead.clone(), peer.url.clone()]))
            .await
            .unwrap()
            .unwrap();
    }
    p.send(Stop).await.unwrap();
}

#[actix_rt::test]
async fn update_urls_rejects_bad_urls_with_a_typed_error() {
    let rec = Recording::start();
    let p = start(config(vec![dead_url()]), &rec);
    let err = p
        .send(UpdateUrls(vec!["not a url".into()]))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl(_)));
    assert!(matches!(
        PipelineActor::start(config(vec![]), rec.recipients()),
        Err(Error::InvalidConfig(_))
    ));
    p.send(Stop).await.unwrap();
}

#[actix_rt::test]
async fn peer_status_notifies_once_per_transition() {
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    let mut answered = 0;
    for (behaviour, times) in [
        (Behaviour::Status(204, ""), 2),
        (Behaviour::Status(500, ""), 3),
        (Behaviour::Status(204, ""), 2),
    ] {
        peer.set(behaviour);
        for _ in 0..times {
            send(&p, MessageType::MsgHeartbeat, 0).await.unwrap();
            answered += 1;
            wait_stats(&p, "the outcome", |s| s.delivered + s.failed == answered).await;
        }
    }
    let stats = p.send(Stop).await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (4, 3));
    assert_eq!(status_changes(&rec.events()), [true, false, true]);
}

#[actix_rt::test]
async fn restarted_sender_reports_its_message_and_keeps_delivering() {
    let peer = FakePeer::start(Behaviour::Block);
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]).connections(1), &rec);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    peer.wait_seen(1).await;
    p.send(ResetConnections).await.unwrap();
    let events = rec.wait_unreachable(1).await;
    assert!(matches!(
        &events[..],
        [.., Event::Unreachable(r)] if r.reason == Error::SenderStopped
    ));
    peer.set(Behaviour::Status(204, ""));
    for i in 2..5 {
        send(&p, MessageType::MsgApp, i).await.unwrap();
    }
    wait_stats(&p, "3 deliveries", |s| s.delivered == 3).await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!((stats.failed, stats.delivered), (1, 3));
}

#[actix_rt::test]
async fn heartbeat_passes_stalled_snapshots() {
    let peer = FakePeer::start(Behaviour::BlockSnapshots);
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    for i in 0..5 {
        send(&p, MessageType::MsgSnap, i).await.unwrap();
    }
    peer.wait_seen(3).await;
    send(&p, MessageType::MsgHeartbeat, 9).await.unwrap();
    let stats = wait_stats(&p, "the heartbeat", |s| s.delivered == 1).await;
    assert_eq!(
        (stats.in_flight, stats.queued),
        (3, 2),
        "3 snapshots at most"
    );
    let answered: Vec<_> = peer.requests().iter().map(|r| r.message().r#type).collect();
    assert_eq!(
        answered
            .iter()
            .filter(|&&t| t == MessageType::MsgSnap as i32)
            .count(),
        3
    );
    peer.release();
    wait_stats(&p, "6 deliveries", |s| s.delivered == 6).await;
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.delivered, 6);
    let events = rec
        .wait_until("5 snapshot reports", |e| snapshot_reports(e).len() == 5)
        .await;
    assert!(snapshot_reports(&events)
        .iter()
        .all(|s| *s == SnapshotStatus::Finish));
}

// Nothing lost: every envelope ends delivered or reported, one by one.
#[actix_rt::test]
async fn nothing_lost_in_a_mixed_run() {
    let peer = FakePeer::start(Behaviour::AlternateByIndex);
    let rec = Recording::start();
    let p = start(config(vec![peer.url.clone()]), &rec);
    for i in 0..20 {
        send(&p, MessageType::MsgApp, i).await.unwrap();
    }
    wait_stats(&p, "20 outcomes", |s| s.delivered + s.failed == 20).await;
    // Now block, fill the pipeline past its capacity, and stop.
    peer.set(Behaviour::Block);
    let mut refused = 0;
    for i in 100..180 {
        if send(&p, MessageType::MsgApp, i).await.is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 80 - 68);
    peer.wait_seen(24).await;
    let stats = p.send(Stop).await.unwrap();
    let after_stop = send(&p, MessageType::MsgSnap, 999).await.unwrap_err();
    assert_eq!(after_stop.reason, Error::Stopped);

    let delivered: Vec<u64> = peer
        .requests()
        .iter()
        .map(|r| r.message().index)
        .filter(|i| *i < 100 && i % 2 == 0)
        .collect();
    assert_eq!(stats.delivered, 10);
    assert_eq!(delivered.len(), 10);
    assert_eq!((stats.failed, stats.dropped, stats.cancelled), (10, 12, 68));
    assert_eq!(stats.offered, 100);
    assert_eq!(stats.offered, stats.delivered + stats.reported());
    let events = rec.wait_unreachable(91).await;
    assert_eq!(
        count_unreachable(&events),
        91,
        "one report per undelivered message"
    );
    let final_stats = p.send(GetStats).await.unwrap();
    assert_eq!(final_stats.offered, 101);
    assert_eq!(
        final_stats.offered,
        final_stats.delivered + final_stats.reported()
    );
    assert_eq!((final_stats.queued, final_stats.in_flight), (0, 0));
}

#[actix_rt::test]
async fn silent_peer_times_out_and_is_reported() {
    let peer = SilentPeer::start().await;
    let rec = Recording::start();
    let cfg = config(vec![peer.url.clone()]).response_timeout(Duration::from_millis(200));
    let p = start(cfg, &rec);
    send(&p, MessageType::MsgHeartbeat, 1).await.unwrap();
    send(&p, MessageType::MsgSnap, 2).await.unwrap();
    peer.wait_accepted(1).await;
    let events = rec.wait_unreachable(2).await;
    assert!(events.iter().all(|e| match e {
        Event::Unreachable(r) => r.reason.is_timeout(),
        _ => true,
    }));
    assert_eq!(snapshot_reports(&events), [SnapshotStatus::Failure]);
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.failed, 2);
}

#[actix_rt::test]
async fn senders_on_the_shared_pool_work_too() {
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let cfg =
        config(vec![peer.url.clone()]).placement(rafthttp_pipeline::SenderPlacement::SharedPool);
    let p = start(cfg, &rec);
    for i in 0..10 {
        send(&p, MessageType::MsgApp, i).await.unwrap();
    }
    wait_stats(&p, "10 deliveries", |s| s.delivered == 10).await;
    let stopped = tokio::time::timeout(Duration::from_secs(1), p.send(Stop)).await;
    assert_eq!(stopped.expect("stops within 1 s").unwrap().delivered, 10);
}

/// The drops each "buffer is full" line for peer `peer` stands for, in
/// order: 1, or the count merged into it.
fn drop_lines(peer: Id) -> Vec<u64> {
    let needle = format!("to {peer} since pipeline's sending buffer is full");
    let lines = warnings_with(&[&needle]);
    lines.iter().map(|line| merged_count(line)).collect()
}

// A burst of drops shorter than the log interval is logged whole: the first
// drop at once, the rest when the interval ends, with no later drop needed
// to bring them out.
#[actix_rt::test]
async fn a_short_burst_of_drops_is_logged_whole() {
    capture_warnings();
    let peer = FakePeer::start(Behaviour::Status(204, ""));
    let rec = Recording::start();
    let (local, _, cluster) = ids();
    let peer_id = Id(0x77);
    let cfg = PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer_id,
        vec![peer.url.clone()],
    )
    .connections(1)
    .buffer(1);
    let p = start(cfg, &rec);
    send(&p, MessageType::MsgHeartbeat, 0).await.unwrap();
    wait_stats(&p, "the peer active", |s| s.delivered == 1).await;
    peer.set(Behaviour::Block);
    send(&p, MessageType::MsgApp, 1).await.unwrap();
    send(&p, MessageType::MsgApp, 2).await.unwrap();
    for i in 0..50 {
        assert!(send(&p, MessageType::MsgApp, 10 + i).await.is_err());
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while drop_lines(peer_id).iter().sum::<u64>() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the burst's log lines: {:?}",
            drop_lines(peer_id)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lines = drop_lines(peer_id);
    assert_eq!(lines.iter().sum::<u64>(), 50, "{lines:?}");
    assert_eq!(lines[0], 1, "the first drop is logged at once");
    peer.release();
    let stats = p.send(Stop).await.unwrap();
    assert_eq!(stats.dropped, 50);
}

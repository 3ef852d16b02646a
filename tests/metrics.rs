//! `GET /metrics` over real HTTP on loopback, after a known set of events:
//! the whole exposition is checked byte for byte (types, help texts,
//! labels, values, buckets), in the text format etcd's client serves.

mod support;

use std::time::Duration;

use actix_web::{App, HttpServer};
use rafthttp_pipeline::metrics::http::{configure, TEXT_CONTENT_TYPE};
use rafthttp_pipeline::metrics::prometheus::Registry;
use rafthttp_pipeline::metrics::Metrics;
use rafthttp_pipeline::Id;

/// etcd's snapshot buckets as its `/metrics` prints them.
const SNAPSHOT_LE: [&str; 10] = [
    "0.1", "0.2", "0.4", "0.8", "1.6", "3.2", "6.4", "12.8", "25.6", "51.2",
];
/// etcd's round-trip buckets as its `/metrics` prints them.
const RTT_LE: [&str; 16] = [
    "0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128", "0.0256",
    "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384", "3.2768",
];

/// The lines of one histogram series holding one observation `value`.
fn histogram(name: &str, label: &str, le: &[&str], value: f64) -> String {
    let mut out = String::new();
    for bound in le {
        let count = u8::from(bound.parse::<f64>().unwrap() >= value);
        out += &format!("{name}_bucket{{{label},le=\"{bound}\"}} {count}\n");
    }
    out += &format!("{name}_bucket{{{label},le=\"+Inf\"}} 1\n");
    out += &format!("{name}_sum{{{label}}} {value}\n");
    out += &format!("{name}_count{{{label}}} 1\n");
    out
}

async fn scrape(registry: &Registry) -> (String, String) {
    let registry = registry.clone();
    let server = HttpServer::new(move || App::new().configure(configure(registry.clone())))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let client = awc::Client::default();
    let mut response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.body().await.unwrap();
    let post = client
        .post(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405, "only GET is served");
    handle.stop(true).await;
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

#[actix_rt::test]
async fn the_exposition_after_known_events_is_exact() {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (local, two, three) = (Id(1), Id(2), Id(0xabc));

    metrics.peer_active(local, two);
    metrics.peer_active(local, three);
    metrics.peer_inactive(local, three);
    metrics.sent(two, 100);
    metrics.sent(two, 50);
    metrics.sent(three, 7);
    metrics.send_failed(three);
    metrics.received(two, 20);
    metrics.receive_failed(Some(two));
    metrics.receive_failed(None);
    metrics.round_trip(two, Duration::from_micros(1500));

    let sending = metrics.snapshot_send_started(two);
    metrics.snapshot_sent(two, 1000, Duration::from_millis(300));
    drop(sending);
    let _still_sending = metrics.snapshot_send_started(three);
    metrics.snapshot_send_failed(three);

    let receiving = metrics.snapshot_receive_started(two);
    metrics.received(two, 500);
    metrics.snapshot_received(two, Duration::from_millis(1500));
    drop(receiving);
    metrics.snapshot_receive_failed(None);

    let (content_type, body) = scrape(&registry).await;
    assert_eq!(content_type, TEXT_CONTENT_TYPE);

    let expected = [
        "# HELP etcd_network_active_peers The current number of active peer connections.\n",
        "# TYPE etcd_network_active_peers gauge\n",
        "etcd_network_active_peers{Local=\"1\",Remote=\"2\"} 1\n",
        "etcd_network_active_peers{Local=\"1\",Remote=\"abc\"} 0\n",
        "# HELP etcd_network_disconnected_peers_total The total number of disconnected peers.\n",
        "# TYPE etcd_network_disconnected_peers_total counter\n",
        "etcd_network_disconnected_peers_total{Local=\"1\",Remote=\"abc\"} 1\n",
        "# HELP etcd_network_peer_received_bytes_total The total number of bytes received from peers.\n",
        "# TYPE etcd_network_peer_received_bytes_total counter\n",
        "etcd_network_peer_received_bytes_total{From=\"2\"} 520\n",
        "# HELP etcd_network_peer_received_failures_total The total number of receive failures from peers.\n",
        "# TYPE etcd_network_peer_received_failures_total counter\n",
        "etcd_network_peer_received_failures_total{From=\"2\"} 1\n",
        "etcd_network_peer_received_failures_total{From=\"UNKNOWN_SENDER\"} 1\n",
        "# HELP etcd_network_peer_round_trip_time_seconds Round-Trip-Time histogram between peers\n",
        "# TYPE etcd_network_peer_round_trip_time_seconds histogram\n",
        &histogram(
            "etcd_network_peer_round_trip_time_seconds",
            "To=\"2\"",
            &RTT_LE,
            0.0015,
        ),
        "# HELP etcd_network_peer_sent_bytes_total The total number of bytes sent to peers.\n",
        "# TYPE etcd_network_peer_sent_bytes_total counter\n",
        "etcd_network_peer_sent_bytes_total{To=\"2\"} 1150\n",
        "etcd_network_peer_sent_bytes_total{To=\"abc\"} 7\n",
        "# HELP etcd_network_peer_sent_failures_total The total number of send failures from peers.\n",
        "# TYPE etcd_network_peer_sent_failures_total counter\n",
        "etcd_network_peer_sent_failures_total{To=\"abc\"} 2\n",
        "# HELP etcd_network_snapshot_receive_failures Total number of snapshot receive failures\n",
        "# TYPE etcd_network_snapshot_receive_failures counter\n",
        "etcd_network_snapshot_receive_failures{From=\"UNKNOWN_SNAPSHOT_SENDER\"} 1\n",
        "# HELP etcd_network_snapshot_receive_inflights_total Total number of inflight snapshot receives\n",
        "# TYPE etcd_network_snapshot_receive_inflights_total gauge\n",
        "etcd_network_snapshot_receive_inflights_total{From=\"2\"} 0\n",
        "# HELP etcd_network_snapshot_receive_success Total number of successful snapshot receives\n",
        "# TYPE etcd_network_snapshot_receive_success counter\n",
        "etcd_network_snapshot_receive_success{From=\"2\"} 1\n",
        "# HELP etcd_network_snapshot_receive_total_duration_seconds Total latency distributions of v3 snapshot receives\n",
        "# TYPE etcd_network_snapshot_receive_total_duration_seconds histogram\n",
        &histogram(
            "etcd_network_snapshot_receive_total_duration_seconds",
            "From=\"2\"",
            &SNAPSHOT_LE,
            1.5,
        ),
        "# HELP etcd_network_snapshot_send_failures Total number of snapshot send failures\n",
        "# TYPE etcd_network_snapshot_send_failures counter\n",
        "etcd_network_snapshot_send_failures{To=\"abc\"} 1\n",
        "# HELP etcd_network_snapshot_send_inflights_total Total number of inflight snapshot sends\n",
        "# TYPE etcd_network_snapshot_send_inflights_total gauge\n",
        "etcd_network_snapshot_send_inflights_total{To=\"2\"} 0\n",
        "etcd_network_snapshot_send_inflights_total{To=\"abc\"} 1\n",
        "# HELP etcd_network_snapshot_send_success Total number of successful snapshot sends\n",
        "# TYPE etcd_network_snapshot_send_success counter\n",
        "etcd_network_snapshot_send_success{To=\"2\"} 1\n",
        "# HELP etcd_network_snapshot_send_total_duration_seconds Total latency distributions of v3 snapshot sends\n",
        "# TYPE etcd_network_snapshot_send_total_duration_seconds histogram\n",
        &histogram(
            "etcd_network_snapshot_send_total_duration_seconds",
            "To=\"2\"",
            &SNAPSHOT_LE,
            0.3,
        ),
    ]
    .concat();
    assert_eq!(body, expected);
}

#[actix_rt::test]
async fn an_empty_registry_serves_an_empty_page() {
    let registry = Registry::new();
    Metrics::register(&registry).unwrap();
    let (_, body) = scrape(&registry).await;
    assert_eq!(body, "", "etcd too leaves out families with no series");
}

// ---------------------------------------------------------------------------
// A known run between real actors: what the pipeline and the receiver count.

mod run {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use actix::prelude::*;
    use actix_web::{App, HttpServer};
    use bytes::Bytes;
    use prost::Message as _;
    use rafthttp_pipeline::metrics::http::configure as metrics_route;
    use rafthttp_pipeline::metrics::prometheus::{Encoder, Registry, TextEncoder};
    use rafthttp_pipeline::raftpb::{Message, MessageType, Snapshot, SnapshotMetadata};
    use rafthttp_pipeline::receiver::{self, DirSink, ReceiverConfig, SnapshotConfig};
    use rafthttp_pipeline::{
        Envelope, GetStats, Id, LocalMember, Metrics, PipelineActor, PipelineConfig, PipelineStats,
        SendSnapshot,
    };

    use crate::support::Recording;

    const CLUSTER: Id = Id(0x100);
    const WAIT: Duration = Duration::from_secs(20);

    /// Every sample of an exposition: `name{labels}` to its value.
    fn samples(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    async fn get(url: &str) -> String {
        let mut response = awc::Client::default().get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
    }

    async fn wait_stats(
        p: &Addr<PipelineActor>,
        what: &str,
        done: impl Fn(&PipelineStats) -> bool,
    ) -> PipelineStats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = p.send(GetStats).await.unwrap();
            if done(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {stats:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn heartbeat(to: u64, commit: u64) -> Message {
        Message {
            r#type: MessageType::MsgHeartbeat as i32,
            to,
            from: 1,
            term: 3,
            commit,
            ..Default::default()
        }
    }

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[actix_rt::test]
    async fn a_scrape_after_a_known_run_counts_exactly_what_happened() {
        let dir = TempDir(std::env::temp_dir().join(format!("metrics-run-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let raft = Recording::start();

        // Member 2: the receiver and its /metrics.
        let registry_b = Registry::new();
        let metrics_b = Metrics::register(&registry_b).unwrap();
        let config_b = ReceiverConfig::new(&LocalMember::new(Id(2), CLUSTER), raft.inbound())
            .snapshots(SnapshotConfig::new().sink(DirSink::new(&dir.0)))
            .metrics(metrics_b);
        let registry = registry_b.clone();
        let server = HttpServer::new(move || {
            App::new()
                .configure(metrics_route(registry.clone()))
                .configure(receiver::configure(config_b.clone()))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr_b = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);

        // Member 1: pipelines to 2 and to 3, which is down.
        let registry_a = Registry::new();
        let metrics_a = Metrics::register(&registry_a).unwrap();
        let local = LocalMember::new(Id(1), CLUSTER);
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let to = |id: u64, url: String| {
            let config = PipelineConfig::new(&local, Id(id), vec![url]).metrics(metrics_a.clone());
            PipelineActor::start(config, raft.recipients()).unwrap()
        };
        let p2 = to(2, format!("http://{addr_b}"));
        let p3 = to(3, format!("http://{dead}"));

        let mut sent = 0;
        for commit in 0..5 {
            let m = heartbeat(2, commit);
            sent += m.encoded_len() as u64;
            p2.send(Envelope(m)).await.unwrap().unwrap();
        }
        for commit in 0..2 {
            p3.send(Envelope(heartbeat(3, commit)))
                .await
                .unwrap()
                .unwrap();
        }
        wait_stats(&p2, "five deliveries", |s| s.delivered == 5).await;
        let stats_3 = wait_stats(&p3, "two failures", |s| s.failed == 2).await;

        let head = Message {
            r#type: MessageType::MsgSnap as i32,
            to: 2,
            from: 1,
            term: 3,
            snapshot: Snapshot {
                metadata: SnapshotMetadata {
                    index: 7,
                    term: 3,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let head_len = head.encoded_len() as u64;
        let db = Bytes::from(vec![7u8; 3000]);
        let body = Box::pin(futures::stream::iter([Ok::<_, std::io::Error>(db)]));
        let snapshot = SendSnapshot {
            message: head,
            body,
            size: 3000,
        };
        p2.send(snapshot).await.unwrap().unwrap();
        let stats_2 = wait_stats(&p2, "the snapshot", |s| s.delivered == 6).await;

        // Refusals at member 2: a body that is no message, from member 1,
        // and a GET on the snapshot route.
        let client = awc::Client::default();
        let garbage = client
            .post(format!("http://{addr_b}/raft"))
            .insert_header(("Content-Type", "application/protobuf"))
            .insert_header(("X-Server-From", "1"))
            .insert_header(("X-Server-Version", "3.4.23"))
            .insert_header(("X-Min-Cluster-Version", "3.0.0"))
            .insert_header(("X-Etcd-Cluster-ID", "100"))
            .send_body(vec![0xffu8; 16])
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
        let refused = client
            .get(format!("http://{addr_b}/raft/snapshot"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 405);

        // Member 1 counted what its pipelines' stats say.
        let mut text_a = Vec::new();
        TextEncoder::new()
            .encode(&registry_a.gather(), &mut text_a)
            .unwrap();
        let a = samples(&String::from_utf8(text_a).unwrap());
        // The snapshot's bytes: etcd's TotalSize, the framed head and the
        // database.
        let snapshot_bytes = stats_2.sent_bytes - sent;
        assert_eq!(snapshot_bytes, 8 + head_len + 3000);
        let expected_a = [
            (
                "etcd_network_active_peers{Local=\"1\",Remote=\"2\"}",
                "1".to_owned(),
            ),
            (
                "etcd_network_peer_sent_bytes_total{To=\"2\"}",
                stats_2.sent_bytes.to_string(),
            ),
            (
                "etcd_network_peer_sent_failures_total{To=\"3\"}",
                (stats_3.failed + stats_3.dropped).to_string(),
            ),
            (
                "etcd_network_snapshot_send_inflights_total{To=\"2\"}",
                "0".into(),
            ),
            ("etcd_network_snapshot_send_success{To=\"2\"}", "1".into()),
            (
                "etcd_network_snapshot_send_total_duration_seconds_bucket{To=\"2\",le=\"+Inf\"}",
                "1".into(),
            ),
            (
                "etcd_network_snapshot_send_total_duration_seconds_count{To=\"2\"}",
                "1".into(),
            ),
        ];
        check(
            &a,
            &expected_a,
            "etcd_network_snapshot_send_total_duration_seconds",
        );
        assert_eq!(a["etcd_network_peer_sent_failures_total{To=\"3\"}"], "2");

        // Member 2 counted what it received, labelled by member id.
        let b = samples(&get(&format!("http://{addr_b}/metrics")).await);
        let received = sent + head_len + 3000;
        let expected_b = [
            ("etcd_network_peer_received_bytes_total{From=\"1\"}", received.to_string()),
            ("etcd_network_peer_received_failures_total{From=\"1\"}", "1".into()),
            (
                "etcd_network_snapshot_receive_failures{From=\"UNKNOWN_SNAPSHOT_SENDER\"}",
                "1".into(),
            ),
            ("etcd_network_snapshot_receive_inflights_total{From=\"1\"}", "0".into()),
            ("etcd_network_snapshot_receive_success{From=\"1\"}", "1".into()),
            (
                "etcd_network_snapshot_receive_total_duration_seconds_bucket{From=\"1\",le=\"+Inf\"}",
                "1".into(),
            ),
            ("etcd_network_snapshot_receive_total_duration_seconds_count{From=\"1\"}", "1".into()),
        ];
        check(
            &b,
            &expected_b,
            "etcd_network_snapshot_receive_total_duration_seconds",
        );

        // A stopped pipeline is no longer an active peer connection.
        p2.send(rafthttp_pipeline::Stop).await.unwrap();
        let mut text_a = Vec::new();
        TextEncoder::new()
            .encode(&registry_a.gather(), &mut text_a)
            .unwrap();
        let a = samples(&String::from_utf8(text_a).unwrap());
        assert_eq!(
            a["etcd_network_active_peers{Local=\"1\",Remote=\"2\"}"],
            "0"
        );
        assert!(!a
            .keys()
            .any(|k| k.starts_with("etcd_network_disconnected_peers_total")));
        handle.stop(true).await;
    }

    /// `samples` holds exactly `expected`, apart from `histogram`'s finite
    /// buckets and sum, which depend on how long the transfer took: each
    /// bucket holds the one observation or not, and the sum is positive.
    fn check(samples: &BTreeMap<String, String>, expected: &[(&str, String)], histogram: &str) {
        let timed = |k: &String| {
            k.starts_with(&format!("{histogram}_sum"))
                || (k.starts_with(&format!("{histogram}_bucket")) && !k.contains("+Inf"))
        };
        for (k, v) in samples.iter().filter(|(k, _)| timed(k)) {
            match k.contains("_sum") {
                true => assert!(v.parse::<f64>().unwrap() > 0.0, "{k} {v}"),
                false => assert!(v == "0" || v == "1", "{k} {v}"),
            }
        }
        let got: BTreeMap<&str, &str> = samples
            .iter()
            .filter(|(k, _)| !timed(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let want: BTreeMap<&str, &str> = expected.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, want);
    }
}

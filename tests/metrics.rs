//! `GET /metrics` over real HTTP on loopback, after a known set of events:
//! the whole exposition is checked byte for byte (types, help texts,
//! labels, values, buckets), in the text format etcd's client serves.

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

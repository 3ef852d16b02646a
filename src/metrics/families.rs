//! etcd's rafthttp metric families (`etcdserver/api/rafthttp/metrics.go` in
//! 3.4.23): the same names, types, help texts, label names and buckets, so
//! dashboards and alerts written for etcd read ours unchanged.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The namespace of every family (`Namespace: "etcd"`, metrics.go).
pub(super) const NAMESPACE: &str = "etcd";
/// The subsystem of every family (`Subsystem: "network"`, metrics.go).
pub(super) const SUBSYSTEM: &str = "network";

/// The snapshot duration buckets, `ExponentialBuckets(0.1, 2, 10)`: 0.1 s
/// to 51.2 s (metrics.go:108-110, 148-150).
pub(super) const SNAPSHOT_BUCKETS: (f64, f64, usize) = (0.1, 2.0, 10);
/// The round-trip time buckets, `ExponentialBuckets(0.0001, 2, 16)`:
/// 0.1 ms to 3.2768 s (metrics.go:161-163).
pub(super) const ROUND_TRIP_BUCKETS: (f64, f64, usize) = (0.0001, 2.0, 16);

/// The label naming the remote member a message went to.
pub(crate) const TO: &[&str] = &["To"];
/// The label naming the remote member a message came from.
pub(crate) const FROM: &[&str] = &["From"];
/// The labels of the peer-status families.
pub(crate) const LOCAL_REMOTE: &[&str] = &["Local", "Remote"];

/// All fifteen families, registered in one registry.
#[derive(Debug)]
pub(crate) struct Families {
    pub active_peers: IntGaugeVec,
    pub disconnected_peers: IntCounterVec,
    pub sent_bytes: IntCounterVec,
    pub received_bytes: IntCounterVec,
    pub sent_failures: IntCounterVec,
    pub received_failures: IntCounterVec,
    pub snapshot_send: IntCounterVec,
    pub snapshot_send_inflights: IntGaugeVec,
    pub snapshot_send_failures: IntCounterVec,
    pub snapshot_send_seconds: HistogramVec,
    pub snapshot_receive: IntCounterVec,
    pub snapshot_receive_inflights: IntGaugeVec,
    pub snapshot_receive_failures: IntCounterVec,
    pub snapshot_receive_seconds: HistogramVec,
    pub round_trip_seconds: HistogramVec,
}

impl Families {
    /// Creates the families and registers each in `registry`, in etcd's
    /// order (metrics.go `init`). Fails when one of the names is already
    /// registered there.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<Families> {
        let families = Families::new()?;
        for collector in families.collectors() {
            registry.register(collector)?;
        }
        Ok(families)
    }

    fn new() -> prometheus::Result<Families> {
        Ok(Families {
            active_peers: gauge(
                "active_peers",
                "The current number of active peer connections.",
                LOCAL_REMOTE,
            )?,
            disconnected_peers: counter(
                "disconnected_peers_total",
                "The total number of disconnected peers.",
                LOCAL_REMOTE,
            )?,
            sent_bytes: counter(
                "peer_sent_bytes_total",
                "The total number of bytes sent to peers.",
                TO,
            )?,
            received_bytes: counter(
                "peer_received_bytes_total",
                "The total number of bytes received from peers.",
                FROM,
            )?,
            sent_failures: counter(
                "peer_sent_failures_total",
                "The total number of send failures from peers.",
                TO,
            )?,
            received_failures: counter(
                "peer_received_failures_total",
                "The total number of receive failures from peers.",
                FROM,
            )?,
            snapshot_send: counter(
                "snapshot_send_success",
                "Total number of successful snapshot sends",
                TO,
            )?,
            snapshot_send_inflights: gauge(
                "snapshot_send_inflights_total",
                "Total number of inflight snapshot sends",
                TO,
            )?,
            snapshot_send_failures: counter(
                "snapshot_send_failures",
                "Total number of snapshot send failures",
                TO,
            )?,
            snapshot_send_seconds: histogram(
                "snapshot_send_total_duration_seconds",
                "Total latency distributions of v3 snapshot sends",
                SNAPSHOT_BUCKETS,
                TO,
            )?,
            snapshot_receive: counter(
                "snapshot_receive_success",
                "Total number of successful snapshot receives",
                FROM,
            )?,
            snapshot_receive_inflights: gauge(
                "snapshot_receive_inflights_total",
                "Total number of inflight snapshot receives",
                FROM,
            )?,
            snapshot_receive_failures: counter(
                "snapshot_receive_failures",
                "Total number of snapshot receive failures",
                FROM,
            )?,
            snapshot_receive_seconds: histogram(
                "snapshot_receive_total_duration_seconds",
                "Total latency distributions of v3 snapshot receives",
                SNAPSHOT_BUCKETS,
                FROM,
            )?,
            round_trip_seconds: histogram(
                "peer_round_trip_time_seconds",
                "Round-Trip-Time histogram between peers",
                ROUND_TRIP_BUCKETS,
                TO,
            )?,
        })
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.active_peers.clone()),
            Box::new(self.disconnected_peers.clone()),
            Box::new(self.sent_bytes.clone()),
            Box::new(self.received_bytes.clone()),
            Box::new(self.sent_failures.clone()),
            Box::new(self.received_failures.clone()),
            Box::new(self.snapshot_send.clone()),
            Box::new(self.snapshot_send_inflights.clone()),
            Box::new(self.snapshot_send_failures.clone()),
            Box::new(self.snapshot_send_seconds.clone()),
            Box::new(self.snapshot_receive.clone()),
            Box::new(self.snapshot_receive_inflights.clone()),
            Box::new(self.snapshot_receive_failures.clone()),
            Box::new(self.snapshot_receive_seconds.clone()),
            Box::new(self.round_trip_seconds.clone()),
        ]
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
        .namespace(NAMESPACE)
        .subsystem(SUBSYSTEM)
}

fn counter(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(opts(name, help), labels)
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(opts(name, help), labels)
}

fn histogram(
    name: &str,
    help: &str,
    (start, factor, count): (f64, f64, usize),
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let buckets = prometheus::exponential_buckets(start, factor, count)?;
    HistogramVec::new(
        HistogramOpts::from(opts(name, help)).buckets(buckets),
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_etcds() {
        let (start, factor, count) = SNAPSHOT_BUCKETS;
        let snapshot = prometheus::exponential_buckets(start, factor, count).unwrap();
        assert_eq!(snapshot.first(), Some(&0.1));
        assert_eq!(snapshot.last().map(|b| b.to_string()), Some("51.2".into()));
        let (start, factor, count) = ROUND_TRIP_BUCKETS;
        let rtt = prometheus::exponential_buckets(start, factor, count).unwrap();
        assert_eq!(rtt.len(), 16);
        assert_eq!(rtt.last().map(|b| b.to_string()), Some("3.2768".into()));
    }

    #[test]
    fn registering_twice_in_one_registry_fails() {
        let registry = Registry::new();
        Families::register(&registry).unwrap();
        assert!(Families::register(&registry).is_err());
    }
}

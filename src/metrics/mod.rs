//! Prometheus metrics with etcd's names: what an operator's etcd dashboards
//! and alerts already read.
//!
//! [`Metrics::register`] creates etcd's fifteen rafthttp families
//! (`families`) in a [`Registry`] you own (there is no hidden global
//! registry), and the handle's methods, named for the events, count them
//! as etcd does. [`http::configure`] mounts `GET /metrics`, which serves
//! the registry in Prometheus' text format.
//!
//! Every label is a member id in etcd's hex form ([`Id`]'s `Display`),
//! never an address: etcd labels `peer_received_failures_total` with the
//! remote `ip:port` (rafthttp/http.go:119), so its series grow with each
//! ephemeral port; here a request whose sender is unknown counts under
//! [`UNKNOWN_SENDER`] or, for snapshots, etcd's [`UNKNOWN_SNAPSHOT_SENDER`].
//!
//! As in etcd, a series appears with its first event: a family with no
//! events yet is left out of the exposition.

mod families;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGauge, Registry};

pub use prometheus;

use crate::id::Id;
use families::Families;

/// The `From` label of a snapshot request refused before its sender was
/// known (etcd's `unknownSnapshotSender`, rafthttp/http.go:189).
pub const UNKNOWN_SNAPSHOT_SENDER: &str = "UNKNOWN_SNAPSHOT_SENDER";

/// The `From` label of a message request that failed before its sender was
/// known; etcd uses the remote address there (see the module doc).
pub const UNKNOWN_SENDER: &str = "UNKNOWN_SENDER";

/// A handle on etcd's rafthttp metrics, registered in the user's registry.
///
/// Cheap to clone (one `Arc`), `Send` and `Sync`: give a clone to each
/// pipeline, receiver and prober.
#[derive(Debug, Clone)]
pub struct Metrics {
    families: Arc<Families>,
}

impl Metrics {
    /// Creates etcd's families and registers them in `registry`. Fails when
    /// one of their names is registered there already (for example by a
    /// second call with the same registry).
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        Ok(Metrics {
            families: Arc::new(Families::register(registry)?),
        })
    }

    /// A message of `bytes` was delivered to `to`: `peer_sent_bytes_total`
    /// (etcd counts the message's size, rafthttp/pipeline.go:127).
    pub fn sent(&self, to: Id, bytes: u64) {
        self.families
            .sent_bytes
            .with_label_values(&[label(to)])
            .inc_by(bytes);
    }

    /// A message to `to` was not delivered (failed POST, or dropped on a
    /// full queue): `peer_sent_failures_total` (pipeline.go:116, peer.go:279).
    pub fn send_failed(&self, to: Id) {
        self.families
            .sent_failures
            .with_label_values(&[label(to)])
            .inc();
    }

    /// `bytes` were received from `from`: `peer_received_bytes_total`
    /// (http.go:139, 244, 301).
    pub fn received(&self, from: Id, bytes: u64) {
        self.families
            .received_bytes
            .with_label_values(&[label(from)])
            .inc_by(bytes);
    }

    /// A message from `from` could not be read or decoded:
    /// `peer_received_failures_total` (http.go:119, 135, 237). `None`: the
    /// sender is unknown, counted under [`UNKNOWN_SENDER`].
    pub fn receive_failed(&self, from: Option<Id>) {
        let from = from.map_or_else(|| UNKNOWN_SENDER.to_owned(), label);
        self.families
            .received_failures
            .with_label_values(&[from])
            .inc();
    }

    /// `local` found `remote` active: `active_peers` + 1
    /// (peer_status.go:58). Call on the transition only.
    pub fn peer_active(&self, local: Id, remote: Id) {
        self.families
            .active_peers
            .with_label_values(&[label(local), label(remote)])
            .inc();
    }

    /// `local` lost `remote`: `active_peers` − 1 and
    /// `disconnected_peers_total` + 1 (peer_status.go:76-77). Call on the
    /// transition only.
    pub fn peer_inactive(&self, local: Id, remote: Id) {
        let labels = [label(local), label(remote)];
        self.families.active_peers.with_label_values(&labels).dec();
        self.families
            .disconnected_peers
            .with_label_values(&labels)
            .inc();
    }

    /// The pipeline from `local` to an active `remote` stopped:
    /// `active_peers` − 1, without a disconnection. etcd leaves a removed
    /// peer counted as active for the rest of the process; here the gauge
    /// stays the number of live, active pipelines.
    pub fn peer_stopped(&self, local: Id, remote: Id) {
        self.families
            .active_peers
            .with_label_values(&[label(local), label(remote)])
            .dec();
    }

    /// A snapshot send to `to` starts: `snapshot_send_inflights_total` + 1
    /// until the returned guard is dropped (snapshot_sender.go:95-98).
    pub fn snapshot_send_started(&self, to: Id) -> InFlight {
        InFlight::new(
            self.families
                .snapshot_send_inflights
                .with_label_values(&[label(to)]),
        )
    }

    /// A snapshot of `bytes` (message and database) reached `to` after
    /// `took`: `peer_sent_bytes_total`, `snapshot_send_success` and
    /// `snapshot_send_total_duration_seconds` (snapshot_sender.go:148-150).
    pub fn snapshot_sent(&self, to: Id, bytes: u64, took: Duration) {
        let to = [label(to)];
        let families = &self.families;
        families.sent_bytes.with_label_values(&to).inc_by(bytes);
        families.snapshot_send.with_label_values(&to).inc();
        families
            .snapshot_send_seconds
            .with_label_values(&to)
            .observe(took.as_secs_f64());
    }

    /// A snapshot send to `to` failed: `peer_sent_failures_total` and
    /// `snapshot_send_failures` (snapshot_sender.go:129-130).
    pub fn snapshot_send_failed(&self, to: Id) {
        let to = [label(to)];
        self.families.sent_failures.with_label_values(&to).inc();
        self.families
            .snapshot_send_failures
            .with_label_values(&to)
            .inc();
    }

    /// A snapshot from `from` is being received:
    /// `snapshot_receive_inflights_total` + 1 until the returned guard is
    /// dropped (http.go:262-265). Its bytes count through
    /// [`received`](Self::received) as they arrive.
    pub fn snapshot_receive_started(&self, from: Id) -> InFlight {
        InFlight::new(
            self.families
                .snapshot_receive_inflights
                .with_label_values(&[label(from)]),
        )
    }

    /// A snapshot from `from` was saved and accepted after `took`:
    /// `snapshot_receive_success` and
    /// `snapshot_receive_total_duration_seconds` (http.go:346-347).
    pub fn snapshot_received(&self, from: Id, took: Duration) {
        let from = [label(from)];
        self.families
            .snapshot_receive
            .with_label_values(&from)
            .inc();
        self.families
            .snapshot_receive_seconds
            .with_label_values(&from)
            .observe(took.as_secs_f64());
    }

    /// A snapshot request failed: `snapshot_receive_failures`
    /// (http.go:206-337). `None`: refused before its sender was known,
    /// counted under [`UNKNOWN_SNAPSHOT_SENDER`] as etcd does.
    pub fn snapshot_receive_failed(&self, from: Option<Id>) {
        let from = from.map_or_else(|| UNKNOWN_SNAPSHOT_SENDER.to_owned(), label);
        self.families
            .snapshot_receive_failures
            .with_label_values(&[from])
            .inc();
    }

    /// A probe to `to` came back after `rtt`:
    /// `peer_round_trip_time_seconds` (probing_status.go:98).
    pub fn round_trip(&self, to: Id, rtt: Duration) {
        self.families
            .round_trip_seconds
            .with_label_values(&[label(to)])
            .observe(rtt.as_secs_f64());
    }
}

/// An in-flight snapshot: its gauge stays one higher until this is dropped,
/// so an early return or a cancelled future cannot leave it counted.
#[derive(Debug)]
#[must_use = "the snapshot counts as in flight only while this guard lives"]
pub struct InFlight {
    gauge: IntGauge,
}

impl InFlight {
    fn new(gauge: IntGauge) -> InFlight {
        gauge.inc();
        InFlight { gauge }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// A member id as etcd labels it: `types.ID.String()`, lower-case hex.
fn label(id: Id) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::MetricFamily;

    fn family(registry: &Registry, name: &str) -> Option<MetricFamily> {
        registry.gather().into_iter().find(|f| f.name() == name)
    }

    fn value(registry: &Registry, name: &str) -> f64 {
        let f = family(registry, name).expect(name);
        let m = &f.get_metric()[0];
        m.get_counter().get_value() + m.get_gauge().get_value()
    }

    #[test]
    fn a_family_appears_with_its_first_event() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        assert!(registry.gather().is_empty());
        metrics.sent(Id(0x2a), 10);
        metrics.sent(Id(0x2a), 5);
        let sent = family(&registry, "etcd_network_peer_sent_bytes_total").unwrap();
        let labels = sent.get_metric()[0].get_label();
        assert_eq!((labels[0].name(), labels[0].value()), ("To", "2a"));
        assert_eq!(value(&registry, "etcd_network_peer_sent_bytes_total"), 15.0);
        assert_eq!(registry.gather().len(), 1);
    }

    #[test]
    fn the_in_flight_gauge_falls_when_the_guard_drops() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        let name = "etcd_network_snapshot_send_inflights_total";
        let first = metrics.snapshot_send_started(Id(2));
        let second = metrics.snapshot_send_started(Id(2));
        assert_eq!(value(&registry, name), 2.0);
        drop(first);
        assert_eq!(value(&registry, name), 1.0);
        drop(second);
        assert_eq!(value(&registry, name), 0.0);
    }

    #[test]
    fn peer_status_moves_both_families() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        metrics.peer_active(Id(1), Id(2));
        metrics.peer_inactive(Id(1), Id(2));
        metrics.peer_active(Id(1), Id(2));
        assert_eq!(value(&registry, "etcd_network_active_peers"), 1.0);
        assert_eq!(
            value(&registry, "etcd_network_disconnected_peers_total"),
            1.0
        );
    }

    #[test]
    fn unknown_senders_share_one_series() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        metrics.receive_failed(None);
        metrics.receive_failed(None);
        metrics.snapshot_receive_failed(None);
        let failures = family(&registry, "etcd_network_peer_received_failures_total").unwrap();
        assert_eq!(failures.get_metric().len(), 1);
        assert_eq!(
            failures.get_metric()[0].get_label()[0].value(),
            UNKNOWN_SENDER
        );
        let snap = family(&registry, "etcd_network_snapshot_receive_failures").unwrap();
        assert_eq!(
            snap.get_metric()[0].get_label()[0].value(),
            UNKNOWN_SNAPSHOT_SENDER
        );
    }
}

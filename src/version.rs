//! The versions this member announces, and etcd's compatibility check.

/// `X-Server-Version` we send (etcd `version.Version`,
/// `version/version.go:29`).
pub const SERVER_VERSION: &str = "3.4.23";

/// `X-Min-Cluster-Version` we send (etcd `version.MinClusterVersion`,
/// `version/version.go:28`).
pub const MIN_CLUSTER_VERSION: &str = "3.0.0";

/// The cluster version `/version` reports (etcd 3.4's `etcdcluster`).
pub const CLUSTER_VERSION: &str = "3.4.0";

//! The example's unit tests, one file per module under test. They are
//! declared here, by `main.rs` only, and not next to the code: both
//! `tests/etcd_*.rs` compile the modules under test, and only
//! `tests/etcd_snapshot.rs`, which includes `main.rs`, is to run these.

mod flags;
mod members;
mod sinks;
mod sockets;
mod standin;
mod stats;

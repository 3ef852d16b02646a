//! What the integration tests share, one concept a module:
//!
//! - [`http`]: one raw HTTP/1.1 client, for checking answers byte for byte;
//! - [`logs`]: warnings captured from the `log` facade;
//! - [`raft`]: one recording raft actor, answering the receiver as told
//!   and recording the pipeline's callbacks;
//! - [`member`]: a receiving member (our receiver and that raft actor) on
//!   loopback;
//! - [`peers`]: peers that misbehave on purpose;
//! - [`proxy`]: a loopback fault proxy between a pipeline and a real
//!   receiver;
//! - [`messages`]: raft messages and their bytes;
//! - [`raftpb_json`]: raft messages from the JSON of etcd's vectors;
//! - [`server`]: the loopback actix-web server under all of them;
//! - [`wait`]: bounded waits on events.
//!
//! The names most tests use are re-exported here.
// Each test binary uses a different part of it.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

pub mod http;
pub mod logs;
pub mod member;
pub mod messages;
pub mod peers;
pub mod proxy;
pub mod raft;
pub mod raftpb_json;
pub mod server;
pub mod wait;

pub use messages::{ids, message};
pub use peers::{dead_url, Behaviour, FakePeer, Recorded, SilentPeer};
pub use raft::{count_unreachable, snapshot_reports, status_changes, Event, Recording};
pub use wait::wait_stats;

/// How long any wait in a test may take before the test fails. A bound
/// against a hang, never a speed requirement: waits end on the event they
/// wait for, usually in milliseconds.
pub const WAIT: Duration = Duration::from_secs(30);

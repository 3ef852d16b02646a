//! raft-rs (tikv's `raft` crate, 0.7) on this transport: lossless message
//! conversions, streamed snapshots, and what to size and answer. Behind the
//! cargo feature `raft-rs`.
//!
//! The feature builds raft-rs with its `protobuf-codec` (raft's default
//! codec; its protoc comes with the crate, so no system protoc is needed)
//! and without its default logger. A project that uses raft-rs with
//! `prost-codec` instead cannot use this module.
//!
//! # The glue
//!
//! ```no_run
//! use actix::prelude::*;
//! use raft::{storage::MemStorage, RawNode, Ready};
//! use rafthttp_pipeline::{raft_rs, Inbound, ProcessError, ReportSnapshot, ReportUnreachable, Transport};
//!
//! /// Ready loop: send what raft-rs wants sent.
//! fn send(transport: &Addr<Transport>, ready: &mut Ready) {
//!     let (batch, snapshots) = raft_rs::outgoing(ready.take_messages());
//!     transport.do_send(batch);
//!     snapshots.into_iter().for_each(|s| transport.do_send(s));
//! }
//!
//! /// Inbound handler: step what arrived.
//! fn receive(raw_node: &mut RawNode<MemStorage>, inbound: Inbound) -> Result<(), ProcessError> {
//!     let message = raft_rs::inbound_message(inbound)?; // a ConvertError answers 500
//!     if let Err(e) = raw_node.step(message) {
//!         log::debug!("raft dropped a message: {e}"); // still Ok: see below
//!     }
//!     Ok(())
//! }
//!
//! /// The callbacks.
//! fn unreachable(raw_node: &mut RawNode<MemStorage>, report: ReportUnreachable) {
//!     raw_node.report_unreachable(report.to.0);
//! }
//! fn snapshot(raw_node: &mut RawNode<MemStorage>, report: ReportSnapshot) {
//!     raw_node.report_snapshot(report.to.0, raft_rs::snapshot_status(report.status));
//! }
//! ```
//!
//! `examples/raft_kv` runs a three-node raft-rs key-value cluster this way.
//!
//! # Lossless between raft-rs nodes, etcd 3.4 on the wire
//!
//! raft-rs's `eraftpb` has fields etcd 3.4's `raftpb` has not:
//!
//! | raft-rs field | used for |
//! |---|---|
//! | `Message.commit_term` (15) | a vote's commit term, for commit fast-forward |
//! | `Message.request_snapshot` (13) | a follower asking for a snapshot |
//! | `Message.deprecated_priority` (14), `Message.priority` (16) | election priority |
//! | `Entry.context` (6) | the proposal's context |
//! | `Entry.sync_log` (5) | deprecated, kept for compatibility |
//!
//! Converted naively they vanish on the wire. Here they travel in a field
//! etcd 3.4 never reads *for that message*:
//!
//! - in every message but `MsgSnap`, in `snapshot.data`: etcd 3.4 reads a
//!   message's snapshot only for `MsgSnap` (`raft.handleSnapshot`, and
//!   rafthttp's snapshot handler);
//! - in `MsgSnap`, in `context`: etcd 3.4 reads `context` only for votes
//!   (campaign transfer) and heartbeats (read index), never for `MsgSnap`.
//!
//! The field then holds a marker (`"\0raft-rs\0"`) and a small protobuf
//! message with the raft-rs fields, the field's own content inside it, so
//! [`TryFrom`] puts everything back. This happens **only when a raft-rs
//! field is set**: a message without them converts to exactly the
//! `raftpb::Message` etcd would send, so its encoding is etcd 3.4's byte
//! for byte (the `raftpb` codec vectors hold), and an etcd member, which
//! ignores the field, sees the same message either way.
//!
//! Why not send raft-rs's own tags 13 to 16 as extra protobuf fields?
//! Newer etcd raft uses 13 (`vote`) and 14 (`responses`) for other things,
//! so a newer etcd member would misread them; and `raftpb`, like etcd 3.5
//! and later, drops unknown fields when decoding, so the receiver could
//! not read them back.
//!
//! Two things are normalised, neither a field value: raft-rs (proto3)
//! cannot tell empty bytes from absent ones, so empty `data` and `context`
//! become `None`, as etcd's raft leaves unset byte fields nil; and a
//! snapshot (or its metadata, or conf state) left at its default is left
//! unset on the way back.
//!
//! # Sizing: `max_inflight_msgs` against `buffer + connections`
//!
//! A pipeline holds at most `buffer + connections` messages
//! (64 + 4 = 68 by default) while its peer is slow; the next one is dropped
//! and reported. Every [`ReportUnreachable`](crate::ReportUnreachable)
//! (`raw_node.report_unreachable`) sends that follower's progress back to
//! probe, where the leader sends one append at a time until it hears back:
//! a drop costs far more than the message.
//!
//! - raft-rs's default `max_inflight_msgs` is 256: a busy leader can have
//!   256 `MsgAppend`s to one follower at once, and the pipeline drops the
//!   surplus. Keep it below `buffer + connections`, with room for
//!   heartbeats and votes (e.g. 32 with the defaults), or raise the buffer
//!   with [`TransportConfig::pipeline_with`](crate::TransportConfig::pipeline_with).
//! - `max_inflight_msgs` counts only appends that carry entries. Each time
//!   the commit index moves, raft-rs also sends every follower an empty
//!   `MsgAppend` to tell it, which no limit counts; under load these fill
//!   the pipeline too. `Config::skip_bcast_commit = true` lets the next
//!   append or heartbeat carry the commit index instead. In
//!   `examples/raft_kv` (32 clients, loopback, release, a busy 2-core
//!   machine) that removed the drops and doubled throughput: 4.8k to 7.3k
//!   puts/s without it, 9.8k to 14.2k with it.

//! # What a `ProcessError` does to the sender
//!
//! The raft actor's answer to an [`Inbound`](crate::Inbound) becomes the
//! HTTP status the sender sees:
//!
//! - `Ok(())`: 204, delivered.
//! - [`ProcessError::RemovedMember`](crate::ProcessError): 403; the sender
//!   gets a [`CriticalError`](crate::CriticalError) (member removed) and
//!   should stop.
//! - [`ProcessError::Other`](crate::ProcessError): 500; the sender's
//!   pipeline counts a failed message: the peer becomes **inactive**
//!   ([`PeerStatusChanged`](crate::PeerStatusChanged), `ActiveSince` is
//!   `None`), its URL picker moves on, and the sender's raft gets
//!   `ReportUnreachable`, so the follower goes back to probe.
//!
//! So answer `Ok` when raft-rs's `step` refuses a message (e.g.
//! `StepPeerNotFound` for a response from a removed peer): raft drops such
//! messages itself and the link is healthy. Keep `Other` for a message
//! that cannot be taken at all, such as a [`ConvertError`] (it converts to
//! `ProcessError::Other`, so `?` works in the handler).
//!
//! # Ids in logs: hex here, decimal in raft-rs
//!
//! This crate prints member ids as etcd does, lower-case hex without
//! padding ([`Id`](crate::Id)'s `Display`, the form of `X-Server-From`);
//! raft-rs logs them in decimal. Member 10 is `a` in this crate's logs and
//! `10` in raft-rs's; `Id`'s `Debug` (`Id(10)`) is decimal.

mod convert;
mod extension;
mod snapshot;

pub use convert::ConvertError;
pub use snapshot::{inbound_message, read_received_snapshot, send_snapshot};

use crate::messages::{SendSnapshot, SnapshotStatus};
use crate::transport::SendMessages;

/// raft-rs's outgoing messages (`Ready::take_messages`) for the
/// [`Transport`](crate::Transport): every `MsgSnapshot` as a streamed
/// [`SendSnapshot`], everything else in one [`SendMessages`], in order.
pub fn outgoing(messages: Vec<raft::eraftpb::Message>) -> (SendMessages, Vec<SendSnapshot>) {
    let is_snapshot =
        |m: &raft::eraftpb::Message| m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot;
    let (snapshots, others): (Vec<_>, Vec<_>) = messages.into_iter().partition(is_snapshot);
    let batch = SendMessages(others.into_iter().map(Into::into).collect());
    (batch, snapshots.into_iter().map(send_snapshot).collect())
}

/// A [`ReportSnapshot`](crate::ReportSnapshot)'s status as raft-rs's, for
/// `raw_node.report_snapshot`.
pub fn snapshot_status(status: SnapshotStatus) -> raft::SnapshotStatus {
    match status {
        SnapshotStatus::Finish => raft::SnapshotStatus::Finish,
        SnapshotStatus::Failure => raft::SnapshotStatus::Failure,
    }
}

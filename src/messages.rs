//! Every actor message of the crate, in one place, so the whole protocol
//! between the user's raft actor, the [`PipelineActor`](crate::PipelineActor)
//! and the receiver can be read on one screen.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use crate::error::Error;
use crate::etcd_text::ERR_REMOVED_MEMBER;
use crate::id::Id;
use crate::raftpb::{Message as RaftMessage, MessageType};
use crate::snapshot::SnapshotBody;
use crate::stats::PipelineStats;

/// A raft message for the pipeline to send to its peer (one `POST /raft`).
///
/// The pipeline answers at once: `Ok(())` when the message was queued, or
/// [`Dropped`] when the queue was full or the pipeline is stopping. A dropped
/// message has already been reported to raft ([`ReportUnreachable`], plus
/// [`ReportSnapshot`] with [`SnapshotStatus::Failure`] for a `MsgSnap`), so
/// `do_send` is safe: nothing is lost silently either way.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Dropped>")]
pub struct Envelope(pub RaftMessage);

/// A snapshot whose database is streamed, not held in memory (etcd's
/// `snap.Message` and `Transport.SendSnapshot`).
///
/// The pipeline sends it as one chunked `POST /raft/snapshot`: the 8-byte
/// length and `message` (a `MsgSnap`), then exactly `size` bytes of
/// `body`. A body that ends early or runs long fails the send, as etcd's
/// `ExactReadCloser` does, and so does a transfer where no byte moves for
/// [`PipelineConfig::snapshot_stall_timeout`](crate::PipelineConfig). It
/// goes through the same queue and snapshot lane as an [`Envelope`], and
/// ends the same way: [`ReportSnapshot`] with `Finish`, or
/// [`ReportUnreachable`] plus `Failure`.
///
/// Use it for a real database; a small snapshot that fits in memory can
/// travel inline in a `MsgSnap` [`Envelope`] instead, as etcd's raftexample
/// does.
#[derive(Message)]
#[rtype(result = "Result<(), Dropped>")]
pub struct SendSnapshot {
    /// The `MsgSnap`; its `snapshot.metadata` says which index it covers.
    pub message: RaftMessage,
    /// The database, as a stream of chunks.
    pub body: SnapshotBody,
    /// The exact number of bytes `body` yields.
    pub size: u64,
}

impl std::fmt::Debug for SendSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendSnapshot")
            .field("to", &self.message.to)
            .field("index", &self.message.snapshot.metadata.index)
            .field("size", &self.size)
            .finish()
    }
}

/// Why an [`Envelope`] was not queued. Raft has already been told.
///
/// Shown as `dropped MsgApp to 2: dropped since sending buffer is full`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dropped {} to {to}: {reason}", MessageKind(*.message_type))]
pub struct Dropped {
    /// The peer the message was for.
    pub to: Id,
    /// The message's raft type, as on the wire; [`Dropped::msg_type`]
    /// reads it.
    pub message_type: i32,
    /// [`Error::BufferFull`], [`Error::Stopped`], or
    /// [`Error::WrongMessageType`] for a [`SendSnapshot`] that is not a
    /// `MsgSnap`.
    pub reason: Error,
}

impl Dropped {
    /// The message's type, or `None` for a type this crate does not know
    /// (such messages still travel).
    pub fn msg_type(&self) -> Option<MessageType> {
        MessageType::try_from(self.message_type).ok()
    }
}

/// Raft callback: a message to `to` was not delivered
/// (etcd's `Raft.ReportUnreachable`). Raft should probe the peer again.
///
/// Shown as `MsgApp to 2 not delivered: stopped`, the reason with its
/// whole chain of causes.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct ReportUnreachable {
    /// The peer that could not be reached.
    pub to: Id,
    /// The type of the message that was not delivered, as on the wire;
    /// [`ReportUnreachable::msg_type`] reads it.
    pub message_type: i32,
    /// Why it was not delivered.
    pub reason: Error,
}

impl ReportUnreachable {
    /// The undelivered message's type, or `None` for a type this crate does
    /// not know (such messages still travel).
    pub fn msg_type(&self) -> Option<MessageType> {
        MessageType::try_from(self.message_type).ok()
    }
}

impl std::fmt::Display for ReportUnreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = MessageKind(self.message_type);
        let reason = crate::error::chain_text(&self.reason);
        write!(f, "{kind} to {} not delivered: {reason}", self.to)
    }
}

/// A raft message type by name (`MsgApp`), or by number for a type this
/// crate does not know (`message type 99`).
pub(crate) struct MessageKind(pub(crate) i32);

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match MessageType::try_from(self.0) {
            Ok(kind) => write!(f, "{kind:?}"),
            Err(_) => write!(f, "message type {}", self.0),
        }
    }
}

/// The outcome of sending a snapshot (`raft.SnapshotStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotStatus {
    /// The snapshot was delivered (`SnapshotFinish = 1`).
    Finish = 1,
    /// The snapshot was not delivered (`SnapshotFailure = 2`).
    Failure = 2,
}

/// Raft callback: how a `MsgSnap` to `to` ended (etcd's
/// `Raft.ReportSnapshot`). On failure raft retries the snapshot later.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct ReportSnapshot {
    /// The peer the snapshot was for.
    pub to: Id,
    /// Whether it arrived.
    pub status: SnapshotStatus,
}

/// The peer became active or inactive (etcd's `peerStatus`). Sent on
/// transitions only, never for a repeated failure.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct PeerStatusChanged {
    /// The remote peer.
    pub peer: Id,
    /// Whether it is now active.
    pub active: bool,
    /// When it became active; `None` when inactive.
    pub since: Option<SystemTime>,
    /// Why it became inactive, in etcd's words
    /// (`failed to write 2 on pipeline (...)`); `None` when active.
    pub reason: Option<String>,
}

/// An error the transport cannot recover from, e.g. this member was
/// removed from the cluster (etcd's `Transport.ErrorC`). The member should
/// stop.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct CriticalError {
    /// The peer that reported it.
    pub peer: Id,
    /// What happened, e.g. [`Error::MemberRemoved`].
    pub error: Error,
}

/// Stop the pipeline: cancel the requests in flight, report every message
/// not delivered, and resolve once every sender has stopped.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PipelineStats")]
pub struct Stop;

/// Replace the peer's URLs (etcd's `urlPicker.update`): the picker starts
/// again at the first URL of the sorted list.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct UpdateUrls(pub Vec<String>);

/// Ask for the pipeline's counters and MsgApp latency.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PipelineStats")]
pub struct GetStats;

/// Stop every sender so that its supervisor restarts it with a fresh HTTP
/// client and no pooled connections. A message held by a sender at that
/// moment is reported as not delivered. Use it when the peer's address or
/// certificates changed under the same URL.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ResetConnections;

/// A raft message received by the receiver, for the user's raft actor
/// (etcd's `Raft.Process`).
///
/// Answer `Ok(())` once raft has taken the message (the peer then gets 204),
/// [`ProcessError::RemovedMember`] when `from` was removed from the cluster
/// (403), or [`ProcessError::Other`] for anything else (500).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ProcessError>")]
pub struct Inbound {
    /// The decoded message.
    pub message: RaftMessage,
    /// The sender, from `X-Server-From` (`None` when missing or malformed).
    pub from: Option<Id>,
    /// The sender's URLs from `X-PeerURLs`, when present and well formed.
    /// etcd adds such a sender as a remote; here the user decides.
    pub peer_urls: Vec<String>,
    /// For a `MsgSnap` that came through `POST /raft/snapshot`: where its
    /// database was stored, already durable. `None` for everything that
    /// came through `POST /raft`, including a `MsgSnap` carrying its
    /// snapshot inline.
    pub snapshot: Option<ReceivedSnapshot>,
}

/// Where a streamed snapshot's database was stored, in
/// [`Inbound::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSnapshot {
    /// What the sink's
    /// [`SnapshotWriter::commit`](crate::receiver::SnapshotWriter::commit)
    /// returned: for a [`DirSink`](crate::receiver::DirSink),
    /// `<dir>/<index as %016x>.snap.db`.
    pub path: PathBuf,
    /// The database's size: every byte after the message (etcd's `n` from
    /// `SaveDBFrom`).
    pub size: u64,
    /// From the request's arrival until the database was committed (etcd's
    /// `download-took`).
    pub took: Duration,
}

/// Why the user's raft actor refused an [`Inbound`] message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The sender was removed from the cluster: the receiver answers 403
    /// `cannot process message from removed member`, which etcd's sender
    /// maps to its member-removed error.
    #[error("{ERR_REMOVED_MEMBER}")]
    RemovedMember,
    /// Anything else: the receiver answers 500
    /// `error processing raft message` (through `/raft/snapshot`: `failed
    /// to process raft message (<reason>)`).
    #[error("{0}")]
    Other(String),
}

//! The per-peer core's decisions for the world outside: raft callbacks,
//! notifications and log lines, as plain data. The shell turns them into
//! actor messages and `log` calls.

use std::fmt;
use std::time::SystemTime;

use log::Level;

use crate::error::{chain_text, Error};
use crate::id::Id;
use crate::messages::{MessageKind, SnapshotStatus};

/// One thing the core decided to tell: in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// A message was not delivered (raft's `ReportUnreachable`).
    Unreachable {
        /// The message's `to`.
        to: Id,
        /// The message's raft type, as on the wire.
        message_type: i32,
        /// Why.
        reason: Error,
    },
    /// How a `MsgSnap` ended (raft's `ReportSnapshot`).
    Snapshot {
        /// The message's `to`.
        to: Id,
        /// Delivered or not.
        status: SnapshotStatus,
    },
    /// The peer became active at `since` (a transition).
    Active {
        /// When, by the wall clock the shell passed in.
        since: SystemTime,
    },
    /// The peer became inactive (a transition), in etcd's words.
    Inactive {
        /// `failed to write 2 on pipeline (...)`.
        reason: String,
    },
    /// A message failed while the peer was inactive already: a debug line
    /// only, no notification.
    StillInactive {
        /// As for [`Report::Inactive`].
        reason: String,
    },
    /// An error the member cannot recover from (etcd's `errorc`): this
    /// member was removed.
    Critical {
        /// The error, [`Error::MemberRemoved`].
        error: Error,
    },
    /// Drops on a full buffer while the peer is active, merged into one
    /// warning line (etcd's `MergeWarningf`).
    BufferFull {
        /// How many drops the line stands for.
        dropped: u64,
    },
    /// A drop on a full buffer while the peer is inactive: a debug line,
    /// as in etcd.
    DroppedInactive {
        /// The message's `to`.
        to: Id,
        /// The message's raft type, as on the wire.
        message_type: i32,
    },
}

impl Report {
    /// The level to log the report at, or `None` when it is not logged.
    pub(crate) fn log_level(&self) -> Option<Level> {
        match self {
            Report::Unreachable { .. } | Report::Snapshot { .. } | Report::Critical { .. } => None,
            Report::Active { .. } => Some(Level::Info),
            Report::Inactive { .. } | Report::BufferFull { .. } => Some(Level::Warn),
            Report::StillInactive { .. } | Report::DroppedInactive { .. } => Some(Level::Debug),
        }
    }

    /// The report in words, about `peer`: the log line for those that are
    /// logged. Formatted only when written.
    pub(crate) fn log_text(&self, peer: Id) -> LogText<'_> {
        LogText { report: self, peer }
    }
}

/// A report in words; log lines in etcd's (`rafthttp/peer_status.go`,
/// `rafthttp/peer.go`).
#[derive(Debug)]
pub(crate) struct LogText<'a> {
    report: &'a Report,
    peer: Id,
}

impl fmt::Display for LogText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self.peer;
        match self.report {
            Report::Active { .. } => write!(f, "peer {peer} became active"),
            Report::Inactive { reason } => write!(
                f,
                "peer {peer} became inactive (message send to peer failed): {reason}"
            ),
            Report::StillInactive { reason } => {
                write!(f, "peer {peer} deactivated again: {reason}")
            }
            Report::BufferFull { dropped } => {
                write!(f, "dropped internal raft message to {peer} since pipeline's sending buffer is full (bad/overloaded network)")?;
                match dropped {
                    1 => Ok(()),
                    n => write!(f, " [merged {n} repeated]"),
                }
            }
            Report::DroppedInactive { to, message_type } => write!(
                f,
                "dropped {} to {to} since pipeline's sending buffer is full",
                MessageKind(*message_type)
            ),
            Report::Unreachable {
                to,
                message_type,
                reason,
            } => write!(
                f,
                "{} to {to} not delivered: {}",
                MessageKind(*message_type),
                chain_text(reason)
            ),
            Report::Snapshot { to, status } => write!(f, "snapshot to {to}: {status:?}"),
            Report::Critical { error } => write!(f, "critical error from peer {peer}: {error}"),
        }
    }
}

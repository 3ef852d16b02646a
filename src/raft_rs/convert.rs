//! Conversions between raft-rs's `eraftpb` messages and [`raftpb`]'s,
//! with raft-rs's extra fields packed as the [module docs](super) say.
//!
//! - `raftpb::Message::from(eraftpb::Message)`: never fails.
//! - `eraftpb::Message::try_from(raftpb::Message)`: fails on a message or
//!   entry type raft-rs does not know, and on a malformed packed slot.

use bytes::Bytes;
use protobuf::ProtobufEnum;
use raft::eraftpb;

use super::extension::{EntryExtension, Extension};
use crate::raftpb;

/// Why a [`raftpb::Message`] cannot become a raft-rs message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// raft-rs has no message type of this number (etcd's newer raft adds
    /// types raft-rs does not have).
    #[error("unknown raft message type {0}")]
    UnknownMessageType(i32),
    /// raft-rs has no entry type of this number.
    #[error("unknown raft entry type {0}")]
    UnknownEntryType(i32),
    /// The packed raft-rs fields are malformed: the sender is broken.
    #[error("malformed raft-rs fields: {0}")]
    Extension(String),
    /// A streamed snapshot's database could not be read back.
    #[error("cannot read received snapshot {path:?}: {error}")]
    ReadSnapshot {
        /// Where the receiver stored it.
        path: std::path::PathBuf,
        /// What the read said.
        error: String,
    },
}

impl From<ConvertError> for crate::messages::ProcessError {
    /// A message raft cannot take at all answers 500.
    fn from(err: ConvertError) -> Self {
        crate::messages::ProcessError::Other(err.to_string())
    }
}

impl From<eraftpb::Message> for raftpb::Message {
    fn from(mut m: eraftpb::Message) -> Self {
        let mut extension = Extension {
            commit_term: m.commit_term,
            request_snapshot: m.request_snapshot,
            deprecated_priority: m.deprecated_priority,
            priority: m.priority,
            ..Default::default()
        };
        let entries = m.take_entries().into_iter().enumerate();
        let entries = entries
            .map(|(position, e)| entry_to_raftpb(position, e, &mut extension.entries))
            .collect();
        let (mut snapshot, data) = snapshot_to_raftpb(m.take_snapshot());
        let msg_type = m.get_msg_type();
        let (context, data) = match msg_type == eraftpb::MessageType::MsgSnapshot {
            true => (extension.pack(m.context), non_empty(data)),
            false => (non_empty(m.context), extension.pack(data)),
        };
        snapshot.data = data;
        raftpb::Message {
            r#type: msg_type.value(),
            to: m.to,
            from: m.from,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            entries,
            commit: m.commit,
            snapshot,
            reject: m.reject,
            reject_hint: m.reject_hint,
            context,
        }
    }
}

impl TryFrom<raftpb::Message> for eraftpb::Message {
    type Error = ConvertError;

    fn try_from(m: raftpb::Message) -> Result<Self, ConvertError> {
        let msg_type = eraftpb::MessageType::from_i32(m.r#type)
            .ok_or(ConvertError::UnknownMessageType(m.r#type))?;
        let is_snapshot = msg_type == eraftpb::MessageType::MsgSnapshot;
        let (slot, other) = match is_snapshot {
            true => (m.context, m.snapshot.data.clone()),
            false => (m.snapshot.data.clone(), m.context),
        };
        let (extension, displaced) =
            Extension::unpack(slot).map_err(|e| ConvertError::Extension(e.to_string()))?;
        let other = other.unwrap_or_default();
        let (context, data) = match is_snapshot {
            true => (displaced, other),
            false => (other, displaced),
        };
        let snapshot = snapshot_from_raftpb(m.snapshot.metadata, data);
        Ok(eraftpb::Message {
            msg_type,
            to: m.to,
            from: m.from,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            entries: entries_from_raftpb(m.entries, extension.entries)?.into(),
            commit: m.commit,
            commit_term: extension.commit_term,
            snapshot: unless_default(snapshot).into(),
            request_snapshot: extension.request_snapshot,
            reject: m.reject,
            reject_hint: m.reject_hint,
            context,
            deprecated_priority: extension.deprecated_priority,
            priority: extension.priority,
            ..Default::default()
        })
    }
}

/// `bytes`, or `None` (Go's nil, not written) when empty: etcd's raft
/// leaves unset byte fields nil, and proto3 cannot tell the two apart.
fn non_empty(bytes: Bytes) -> Option<Bytes> {
    Some(bytes).filter(|b| !b.is_empty())
}

/// `value`, or `None` when it is the default: a message field raft-rs
/// left unset stays unset.
fn unless_default<T: Default + PartialEq>(value: T) -> Option<T> {
    Some(value).filter(|v| *v != T::default())
}

fn entry_to_raftpb(
    position: usize,
    e: eraftpb::Entry,
    extensions: &mut Vec<EntryExtension>,
) -> raftpb::Entry {
    let entry_type = e.get_entry_type().value();
    if !e.context.is_empty() || e.sync_log {
        extensions.push(EntryExtension {
            // A message never holds 2^32 entries: it would be far larger
            // than any receiver accepts.
            position: u32::try_from(position).unwrap_or(u32::MAX),
            context: e.context,
            sync_log: e.sync_log,
        });
    }
    raftpb::Entry {
        term: e.term,
        index: e.index,
        r#type: entry_type,
        data: non_empty(e.data),
    }
}

fn entries_from_raftpb(
    entries: Vec<raftpb::Entry>,
    extensions: Vec<EntryExtension>,
) -> Result<Vec<eraftpb::Entry>, ConvertError> {
    let mut out = entries
        .into_iter()
        .map(entry_from_raftpb)
        .collect::<Result<Vec<_>, _>>()?;
    for extension in extensions {
        let position = extension.position as usize;
        let entry = out
            .get_mut(position)
            .ok_or_else(|| ConvertError::Extension(format!("no entry at position {position}")))?;
        entry.context = extension.context;
        entry.sync_log = extension.sync_log;
    }
    Ok(out)
}

fn entry_from_raftpb(e: raftpb::Entry) -> Result<eraftpb::Entry, ConvertError> {
    let entry_type =
        eraftpb::EntryType::from_i32(e.r#type).ok_or(ConvertError::UnknownEntryType(e.r#type))?;
    Ok(eraftpb::Entry {
        entry_type,
        term: e.term,
        index: e.index,
        data: e.data.unwrap_or_default(),
        ..Default::default()
    })
}

/// The snapshot without its data, and the data.
fn snapshot_to_raftpb(mut s: eraftpb::Snapshot) -> (raftpb::Snapshot, Bytes) {
    let mut meta = s.take_metadata();
    let conf = meta.take_conf_state();
    let snapshot = raftpb::Snapshot {
        data: None,
        metadata: raftpb::SnapshotMetadata {
            conf_state: raftpb::ConfState {
                voters: conf.voters,
                learners: conf.learners,
                voters_outgoing: conf.voters_outgoing,
                learners_next: conf.learners_next,
                auto_leave: conf.auto_leave,
            },
            index: meta.index,
            term: meta.term,
        },
    };
    (snapshot, s.data)
}

fn snapshot_from_raftpb(meta: raftpb::SnapshotMetadata, data: Bytes) -> eraftpb::Snapshot {
    let conf = meta.conf_state;
    let conf_state = eraftpb::ConfState {
        voters: conf.voters,
        learners: conf.learners,
        voters_outgoing: conf.voters_outgoing,
        learners_next: conf.learners_next,
        auto_leave: conf.auto_leave,
        ..Default::default()
    };
    let metadata = eraftpb::SnapshotMetadata {
        conf_state: unless_default(conf_state).into(),
        index: meta.index,
        term: meta.term,
        ..Default::default()
    };
    eraftpb::Snapshot {
        data,
        metadata: unless_default(metadata).into(),
        ..Default::default()
    }
}

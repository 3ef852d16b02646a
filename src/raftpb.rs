//! etcd's `raftpb` wire types, byte-compatible with etcd 3.4.23.
//!
//! The structs are derived by hand with prost, so no `protoc` runs at build
//! time. Every field that etcd declares `(gogoproto.nullable) = false` is a
//! prost `required` field: prost then writes it even when it is zero, exactly
//! as gogoproto does, and in ascending tag order. `Entry.Data`,
//! `Snapshot.data` and `Message.context` are `Option<Bytes>`, which keeps
//! etcd's distinction between nil (absent) and empty (`tag 00`).
//! `ConfState`'s repeated fields are unpacked, as etcd writes them; the
//! decoder still reads the packed form.
//!
//! Decoding is lenient in the way newer etcd needs: a missing field takes its
//! default, and unknown fields (such as raft 3.6's `vote = 13`) are skipped.
//! Unknown fields are dropped on re-encoding, as etcd 3.5 and later do.
//!
//! Source: `raft/raftpb/raft.proto` in etcd 3.4.23.

use bytes::Bytes;

/// The kind of a raft log entry (`raftpb.EntryType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum EntryType {
    /// A normal entry carrying application data.
    EntryNormal = 0,
    /// A `ConfChange` (v1) entry.
    EntryConfChange = 1,
    /// A `ConfChangeV2` entry.
    EntryConfChangeV2 = 2,
}

/// The type of a raft message (`raftpb.MessageType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// Local: start an election.
    MsgHup = 0,
    /// Local: the leader should send heartbeats.
    MsgBeat = 1,
    /// A proposal.
    MsgProp = 2,
    /// Append entries.
    MsgApp = 3,
    /// Response to `MsgApp`.
    MsgAppResp = 4,
    /// Request a vote.
    MsgVote = 5,
    /// Response to `MsgVote`.
    MsgVoteResp = 6,
    /// Install a snapshot.
    MsgSnap = 7,
    /// Leader heartbeat.
    MsgHeartbeat = 8,
    /// Response to `MsgHeartbeat`.
    MsgHeartbeatResp = 9,
    /// Local: a peer is unreachable.
    MsgUnreachable = 10,
    /// Local: the outcome of a snapshot send.
    MsgSnapStatus = 11,
    /// Local: check quorum.
    MsgCheckQuorum = 12,
    /// Transfer leadership.
    MsgTransferLeader = 13,
    /// Tell the target to campaign now.
    MsgTimeoutNow = 14,
    /// Linearizable read request.
    MsgReadIndex = 15,
    /// Response to `MsgReadIndex`.
    MsgReadIndexResp = 16,
    /// Request a pre-vote.
    MsgPreVote = 17,
    /// Response to `MsgPreVote`.
    MsgPreVoteResp = 18,
}

/// One raft log entry (`raftpb.Entry`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Entry {
    /// The term the entry was proposed in.
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
    /// The entry's log index.
    #[prost(uint64, required, tag = "3")]
    pub index: u64,
    /// The entry's kind, a [`EntryType`] value (unknown values are kept).
    #[prost(enumeration = "EntryType", required, tag = "1")]
    pub r#type: i32,
    /// The payload; `None` is Go's nil and is not written.
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub data: Option<Bytes>,
}

/// The membership a snapshot was taken with (`raftpb.ConfState`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ConfState {
    /// Voting members.
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    pub voters: Vec<u64>,
    /// Learners.
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration during a joint change.
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    pub voters_outgoing: Vec<u64>,
    /// Learners to add when the joint configuration is left.
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    pub learners_next: Vec<u64>,
    /// Whether the joint configuration is left automatically.
    #[prost(bool, required, tag = "5")]
    pub auto_leave: bool,
}

/// Where a snapshot stands in the log (`raftpb.SnapshotMetadata`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SnapshotMetadata {
    /// The membership at the snapshot.
    #[prost(message, required, tag = "1")]
    pub conf_state: ConfState,
    /// The last log index the snapshot covers.
    #[prost(uint64, required, tag = "2")]
    pub index: u64,
    /// The term of that index.
    #[prost(uint64, required, tag = "3")]
    pub term: u64,
}

/// A raft snapshot (`raftpb.Snapshot`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Snapshot {
    /// The application's snapshot bytes; `None` is Go's nil and is not written.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub data: Option<Bytes>,
    /// Where the snapshot stands in the log.
    #[prost(message, required, tag = "2")]
    pub metadata: SnapshotMetadata,
}

/// A raft message (`raftpb.Message`): what the pipeline carries.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Message {
    /// The message's type, a [`MessageType`] value (unknown values are kept).
    #[prost(enumeration = "MessageType", required, tag = "1")]
    pub r#type: i32,
    /// The receiving member's id.
    #[prost(uint64, required, tag = "2")]
    pub to: u64,
    /// The sending member's id.
    #[prost(uint64, required, tag = "3")]
    pub from: u64,
    /// The sender's term.
    #[prost(uint64, required, tag = "4")]
    pub term: u64,
    /// The term of the entry before `entries`.
    #[prost(uint64, required, tag = "5")]
    pub log_term: u64,
    /// The index of the entry before `entries`.
    #[prost(uint64, required, tag = "6")]
    pub index: u64,
    /// Log entries to append.
    #[prost(message, repeated, tag = "7")]
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    #[prost(uint64, required, tag = "8")]
    pub commit: u64,
    /// The snapshot (always written, as etcd 3.4 does).
    #[prost(message, required, tag = "9")]
    pub snapshot: Snapshot,
    /// Whether the request was rejected.
    #[prost(bool, required, tag = "10")]
    pub reject: bool,
    /// The follower's hint for the leader after a reject.
    #[prost(uint64, required, tag = "11")]
    pub reject_hint: u64,
    /// Opaque context; `None` is Go's nil and is not written.
    #[prost(bytes = "bytes", optional, tag = "12")]
    pub context: Option<Bytes>,
}

/// Raft's persistent state (`raftpb.HardState`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HardState {
    /// The current term.
    #[prost(uint64, required, tag = "1")]
    pub term: u64,
    /// Who this member voted for in `term`.
    #[prost(uint64, required, tag = "2")]
    pub vote: u64,
    /// The commit index.
    #[prost(uint64, required, tag = "3")]
    pub commit: u64,
}

impl Message {
    /// The message's type, or `None` for a value this crate does not know
    /// (newer raft versions add types; such messages still travel).
    pub fn msg_type(&self) -> Option<MessageType> {
        MessageType::try_from(self.r#type).ok()
    }

    /// Whether this is a `MsgSnap`, which the pipeline treats specially
    /// (snapshot lane, `ReportSnapshot`).
    pub fn is_snapshot(&self) -> bool {
        self.r#type == MessageType::MsgSnap as i32
    }

    /// Whether this is a `MsgApp`, whose latency etcd's followerStats track.
    pub fn is_append(&self) -> bool {
        self.r#type == MessageType::MsgApp as i32
    }
}

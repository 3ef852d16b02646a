//! raft messages from the JSON shape of etcd's vectors (`tests/data/raftpb`
//! and `tests/data/streams`: every field spelled out, `*_hex: null` for
//! Go's nil, `""` for present and empty).

use bytes::Bytes;
use rafthttp_pipeline::raftpb::{
    ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use serde_json::Value;

use super::messages::unhex;

const MESSAGE_TYPES: &[(&str, MessageType)] = &[
    ("MsgHup", MessageType::MsgHup),
    ("MsgBeat", MessageType::MsgBeat),
    ("MsgProp", MessageType::MsgProp),
    ("MsgApp", MessageType::MsgApp),
    ("MsgAppResp", MessageType::MsgAppResp),
    ("MsgVote", MessageType::MsgVote),
    ("MsgVoteResp", MessageType::MsgVoteResp),
    ("MsgSnap", MessageType::MsgSnap),
    ("MsgHeartbeat", MessageType::MsgHeartbeat),
    ("MsgHeartbeatResp", MessageType::MsgHeartbeatResp),
    ("MsgUnreachable", MessageType::MsgUnreachable),
    ("MsgSnapStatus", MessageType::MsgSnapStatus),
    ("MsgCheckQuorum", MessageType::MsgCheckQuorum),
    ("MsgTransferLeader", MessageType::MsgTransferLeader),
    ("MsgTimeoutNow", MessageType::MsgTimeoutNow),
    ("MsgReadIndex", MessageType::MsgReadIndex),
    ("MsgReadIndexResp", MessageType::MsgReadIndexResp),
    ("MsgPreVote", MessageType::MsgPreVote),
    ("MsgPreVoteResp", MessageType::MsgPreVoteResp),
];

const ENTRY_TYPES: &[(&str, EntryType)] = &[
    ("EntryNormal", EntryType::EntryNormal),
    ("EntryConfChange", EntryType::EntryConfChange),
    ("EntryConfChangeV2", EntryType::EntryConfChangeV2),
];

pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("missing field {key:?} in {v}"))
}

pub fn u64_of(v: &Value, key: &str) -> u64 {
    field(v, key)
        .as_u64()
        .unwrap_or_else(|| panic!("{key:?} is not a u64 in {v}"))
}

pub fn bool_of(v: &Value, key: &str) -> bool {
    field(v, key)
        .as_bool()
        .unwrap_or_else(|| panic!("{key:?} is not a bool in {v}"))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    field(v, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {v}"))
}

/// `null` is Go's nil (`None`); a string, even `""`, is present (`Some`).
fn bytes_of(v: &Value, key: &str) -> Option<Bytes> {
    match field(v, key) {
        Value::Null => None,
        Value::String(s) => Some(Bytes::from(unhex(s))),
        other => panic!("{key:?} is neither null nor a hex string: {other}"),
    }
}

fn u64s_of(v: &Value, key: &str) -> Vec<u64> {
    let items = field(v, key)
        .as_array()
        .unwrap_or_else(|| panic!("{key:?} is not an array"));
    items
        .iter()
        .map(|x| x.as_u64().expect("u64 element"))
        .collect()
}

fn enum_of<E: Copy + Into<i32>>(table: &[(&str, E)], name: &str) -> i32 {
    let found = table.iter().find(|(n, _)| *n == name);
    found
        .unwrap_or_else(|| panic!("unknown enum name {name:?}"))
        .1
        .into()
}

pub fn message_from_json(m: &Value) -> Message {
    let entries = field(m, "entries").as_array().expect("entries array");
    let snapshot = field(m, "snapshot");
    let metadata = field(snapshot, "metadata");
    let conf_state = field(metadata, "conf_state");
    Message {
        r#type: enum_of(MESSAGE_TYPES, str_of(m, "type")),
        to: u64_of(m, "to"),
        from: u64_of(m, "from"),
        term: u64_of(m, "term"),
        log_term: u64_of(m, "log_term"),
        index: u64_of(m, "index"),
        entries: entries
            .iter()
            .map(|e| Entry {
                term: u64_of(e, "term"),
                index: u64_of(e, "index"),
                r#type: enum_of(ENTRY_TYPES, str_of(e, "type")),
                data: bytes_of(e, "data_hex"),
            })
            .collect(),
        commit: u64_of(m, "commit"),
        snapshot: Snapshot {
            data: bytes_of(snapshot, "data_hex"),
            metadata: SnapshotMetadata {
                conf_state: ConfState {
                    voters: u64s_of(conf_state, "voters"),
                    learners: u64s_of(conf_state, "learners"),
                    voters_outgoing: u64s_of(conf_state, "voters_outgoing"),
                    learners_next: u64s_of(conf_state, "learners_next"),
                    auto_leave: bool_of(conf_state, "auto_leave"),
                },
                index: u64_of(metadata, "index"),
                term: u64_of(metadata, "term"),
            },
        },
        reject: bool_of(m, "reject"),
        reject_hint: u64_of(m, "reject_hint"),
        context: bytes_of(m, "context_hex"),
    }
}

//! Raft messages the tests send, and their bytes. Every message goes from
//! member 1 to member 2, as in [`ids`].

use bytes::Bytes;
use rafthttp_pipeline::raftpb::{Entry, Message as RaftMessage, MessageType};
use rafthttp_pipeline::Id;

/// The ids the tests use: local 1, peer 2, cluster 0xabc.
pub fn ids() -> (Id, Id, Id) {
    (Id(1), Id(2), Id(0xabc))
}

/// A message of `kind` from 1 to 2 in term 1 with `index` set, for telling
/// messages apart.
pub fn message(kind: MessageType, index: u64) -> RaftMessage {
    RaftMessage {
        r#type: kind as i32,
        to: 2,
        from: 1,
        term: 1,
        index,
        ..Default::default()
    }
}

/// A heartbeat at commit 3, whose bytes `tests/codec.rs` checks against
/// etcd 3.4's.
pub fn heartbeat() -> RaftMessage {
    RaftMessage {
        commit: 3,
        ..message(MessageType::MsgHeartbeat, 0)
    }
}

/// A `MsgApp` in term 3 with one entry of `len` bytes.
pub fn append_with_data(len: usize) -> RaftMessage {
    RaftMessage {
        term: 3,
        entries: vec![Entry {
            term: 3,
            index: 8,
            data: Some(Bytes::from(vec![0xab; len])),
            ..Default::default()
        }],
        ..message(MessageType::MsgApp, 0)
    }
}

/// A `MsgSnap` in term 3 for the snapshot at `index`.
pub fn snap(index: u64) -> RaftMessage {
    let mut m = RaftMessage {
        term: 3,
        ..message(MessageType::MsgSnap, 0)
    };
    m.snapshot.metadata.index = index;
    m.snapshot.metadata.term = 3;
    m
}

/// The first of `build(0)`, `build(1)`, ... whose encoding is exactly
/// `len` bytes long.
pub fn of_encoded_len(len: usize, build: impl Fn(usize) -> RaftMessage) -> RaftMessage {
    (0..=len)
        .map(build)
        .find(|m| prost::Message::encoded_len(m) == len)
        .unwrap_or_else(|| panic!("no message encodes to exactly {len} bytes"))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string; ASCII whitespace is ignored so that vectors can
/// be written spaced as in the spec.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not a hex digit: {:?} in {text:?}", b as char),
        })
        .collect();
    let pairs = digits.chunks_exact(2);
    assert!(
        pairs.remainder().is_empty(),
        "odd number of hex digits in {text:?}"
    );
    pairs.map(|p| p[0] << 4 | p[1]).collect()
}

//! The members and the messages of the workloads, exactly as the Go
//! harness (`etcd-go/cmd/pipebench`) builds them (`msgApp`, W2's `mk`,
//! W3's echo).

use bytes::Bytes;
use rafthttp_pipeline::raftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use rafthttp_pipeline::Id;

/// The sender, node A.
pub const A: Id = Id(1);
/// The receiver, node B.
pub const B: Id = Id(2);
/// The cluster both belong to.
pub const CLUSTER: Id = Id(0xc1a55);

/// The id of A's `p`-th peer under `--peers`: B, B + 1, ... All of them
/// are served by B's one receiver, which, like etcd's pipeline handler,
/// does not look at a message's `to`.
pub fn peer(p: usize) -> Id {
    Id(B.0 + p as u64)
}

/// W1/W3 entry data: `size` bytes counting up.
pub fn entry_data(size: usize) -> Bytes {
    (0..size).map(|i| i as u8).collect::<Vec<u8>>().into()
}

/// W2 snapshot data: `size` bytes of `i * 7`.
pub fn snapshot_data(size: usize) -> Bytes {
    (0..size)
        .map(|i| i.wrapping_mul(7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The `i`-th MsgApp to `to`: one entry at index `i + 1`.
pub fn msg_app(i: u64, to: Id, data: &Bytes) -> Message {
    let index = i + 1;
    Message {
        r#type: MessageType::MsgApp as i32,
        to: to.0,
        from: A.0,
        term: 1,
        log_term: 1,
        index: index - 1,
        commit: index - 1,
        entries: vec![Entry {
            term: 1,
            index,
            r#type: EntryType::EntryNormal as i32,
            data: Some(data.clone()),
        }],
        ..Default::default()
    }
}

/// The `k`-th MsgSnap of W2.
pub fn msg_snap(k: usize, data: &Bytes) -> Message {
    let mut m = Message {
        r#type: MessageType::MsgSnap as i32,
        to: B.0,
        from: A.0,
        term: 1,
        snapshot: Snapshot {
            data: Some(data.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    m.snapshot.metadata.index = k as u64 + 1;
    m.snapshot.metadata.term = 1;
    m.snapshot.metadata.conf_state = ConfState {
        voters: vec![A.0, B.0],
        ..Default::default()
    };
    m
}

/// W3: B's answer to a MsgApp. `commit` carries the wall-clock time B
/// processed the MsgApp, as the Go harness does.
pub fn app_resp(m: &Message, processed_ns: i64) -> Message {
    Message {
        r#type: MessageType::MsgAppResp as i32,
        to: m.from,
        from: B.0,
        term: m.term,
        index: m.index + m.entries.len() as u64,
        commit: processed_ns as u64,
        ..Default::default()
    }
}

/// The application bytes a message carries, as the Go harness's fake
/// raft counts them.
pub fn payload_len(m: &Message) -> usize {
    let snapshot = m.snapshot.data.as_ref().map_or(0, Bytes::len);
    let entries: usize = m
        .entries
        .iter()
        .map(|e| e.data.as_ref().map_or(0, Bytes::len))
        .sum();
    snapshot + entries
}

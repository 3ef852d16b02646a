//! raft-rs conversions: no raft-rs field is lost between two raft-rs
//! nodes, field by field, through the bytes on the wire; a raft-rs
//! message without raft-rs-only fields is etcd 3.4's bytes; and a
//! `raftpb` message survives the trip through raft-rs's types.

use bytes::Bytes;
use prost::Message as _;
use raft::eraftpb::{
    ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use rafthttp_pipeline::raft_rs::{self, ConvertError};
use rafthttp_pipeline::raftpb;

/// Every raft-rs message type.
const TYPES: [MessageType; 19] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgPropose,
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgReadIndex,
    MessageType::MsgReadIndexResp,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
];

fn entry(entry_type: EntryType, index: u64, data: &'static [u8], context: &'static [u8]) -> Entry {
    Entry {
        entry_type,
        term: 0x0102_0304_0506_0708,
        index,
        data: Bytes::from_static(data),
        context: Bytes::from_static(context),
        ..Default::default()
    }
}

fn snapshot(data: &'static [u8], conf_state: ConfState, index: u64, term: u64) -> Snapshot {
    let metadata = SnapshotMetadata {
        conf_state: Some(conf_state).into(),
        index,
        term,
        ..Default::default()
    };
    Snapshot {
        data: Bytes::from_static(data),
        metadata: Some(metadata).into(),
        ..Default::default()
    }
}

/// A raft-rs message of `msg_type` with every field set to a value that is
/// not its default.
fn every_field_set(msg_type: MessageType) -> Message {
    let conf = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        voters_outgoing: vec![1, 5],
        learners_next: vec![6],
        auto_leave: true,
        ..Default::default()
    };
    let synced = Entry {
        sync_log: true,
        ..entry(EntryType::EntryNormal, 12, b"", b"")
    };
    Message {
        msg_type,
        to: 2,
        from: u64::MAX,
        term: 7,
        log_term: 6,
        index: 10,
        entries: vec![
            entry(EntryType::EntryNormal, 11, b"put k v", b"proposal context"),
            synced,
            entry(EntryType::EntryConfChange, 13, b"conf change", b""),
            entry(EntryType::EntryConfChangeV2, 14, b"", b"ctx only"),
            entry(EntryType::EntryNormal, 15, b"plain", b""),
        ]
        .into(),
        commit: 9,
        commit_term: 6,
        snapshot: Some(snapshot(b"application state", conf, 1000, 9)).into(),
        request_snapshot: 8,
        reject: true,
        reject_hint: 5,
        context: Bytes::from_static(b"CampaignTransfer"),
        deprecated_priority: 3,
        priority: -42,
        ..Default::default()
    }
}

/// raft-rs -> raftpb -> bytes on the wire -> raftpb -> raft-rs.
fn over_the_wire(m: Message) -> Message {
    let wire = raftpb::Message::from(m).encode_to_vec();
    let decoded = raftpb::Message::decode(&wire[..]).expect("our own encoding decodes");
    Message::try_from(decoded).expect("our own encoding converts back")
}

/// Compares two raft-rs messages field by field, naming the field that
/// differs.
fn assert_same_fields(sent: &Message, got: &Message) {
    let t = sent.get_msg_type();
    assert_eq!(got.get_msg_type(), t, "msg_type");
    assert_eq!(got.to, sent.to, "{t:?}: to");
    assert_eq!(got.from, sent.from, "{t:?}: from");
    assert_eq!(got.term, sent.term, "{t:?}: term");
    assert_eq!(got.log_term, sent.log_term, "{t:?}: log_term");
    assert_eq!(got.index, sent.index, "{t:?}: index");
    assert_eq!(got.commit, sent.commit, "{t:?}: commit");
    assert_eq!(got.commit_term, sent.commit_term, "{t:?}: commit_term");
    assert_eq!(
        got.request_snapshot, sent.request_snapshot,
        "{t:?}: request_snapshot"
    );
    assert_eq!(got.reject, sent.reject, "{t:?}: reject");
    assert_eq!(got.reject_hint, sent.reject_hint, "{t:?}: reject_hint");
    assert_eq!(got.context, sent.context, "{t:?}: context");
    assert_eq!(
        got.deprecated_priority, sent.deprecated_priority,
        "{t:?}: deprecated_priority"
    );
    assert_eq!(got.priority, sent.priority, "{t:?}: priority");
    assert_eq!(got.entries.len(), sent.entries.len(), "{t:?}: entries");
    for (i, (g, s)) in got.entries.iter().zip(sent.entries.iter()).enumerate() {
        assert_eq!(
            g.get_entry_type(),
            s.get_entry_type(),
            "{t:?}: entry {i} type"
        );
        assert_eq!(g.term, s.term, "{t:?}: entry {i} term");
        assert_eq!(g.index, s.index, "{t:?}: entry {i} index");
        assert_eq!(g.data, s.data, "{t:?}: entry {i} data");
        assert_eq!(g.context, s.context, "{t:?}: entry {i} context");
        assert_eq!(g.sync_log, s.sync_log, "{t:?}: entry {i} sync_log");
    }
    let (gs, ss) = (got.get_snapshot(), sent.get_snapshot());
    assert_eq!(gs.data, ss.data, "{t:?}: snapshot.data");
    let (gm, sm) = (gs.get_metadata(), ss.get_metadata());
    assert_eq!(gm.index, sm.index, "{t:?}: snapshot.metadata.index");
    assert_eq!(gm.term, sm.term, "{t:?}: snapshot.metadata.term");
    let (gc, sc) = (gm.get_conf_state(), sm.get_conf_state());
    assert_eq!(gc.voters, sc.voters, "{t:?}: conf_state.voters");
    assert_eq!(gc.learners, sc.learners, "{t:?}: conf_state.learners");
    assert_eq!(
        gc.voters_outgoing, sc.voters_outgoing,
        "{t:?}: conf_state.voters_outgoing"
    );
    assert_eq!(
        gc.learners_next, sc.learners_next,
        "{t:?}: conf_state.learners_next"
    );
    assert_eq!(gc.auto_leave, sc.auto_leave, "{t:?}: conf_state.auto_leave");
    // And nothing the list above missed.
    assert_eq!(got, sent, "{t:?}: whole message");
}

#[test]
fn every_raft_rs_field_survives_the_wire_for_every_message_type() {
    for t in TYPES {
        let sent = every_field_set(t);
        assert_same_fields(&sent, &over_the_wire(sent.clone()));
    }
}

#[test]
fn each_raft_rs_only_field_alone_survives_the_wire() {
    let base = |msg_type| Message {
        msg_type,
        to: 2,
        from: 1,
        ..Default::default()
    };
    type Setter = fn(&mut Message);
    let setters: [(&str, Setter); 7] = [
        ("commit_term", |m| m.commit_term = 4),
        ("request_snapshot", |m| m.request_snapshot = 4),
        ("deprecated_priority", |m| m.deprecated_priority = 4),
        ("priority", |m| m.priority = i64::MIN),
        ("entry context", |m| {
            m.entries = vec![entry(EntryType::EntryNormal, 1, b"", b"c")].into()
        }),
        ("entry sync_log", |m| {
            let e = Entry {
                sync_log: true,
                ..entry(EntryType::EntryNormal, 1, b"d", b"")
            };
            m.entries = vec![e].into();
        }),
        ("context", |m| {
            m.context = Bytes::from_static(b"\0raft-rs\0looks packed")
        }),
    ];
    for t in TYPES {
        for (name, set) in setters {
            let mut sent = base(t);
            set(&mut sent);
            let got = over_the_wire(sent.clone());
            assert_eq!(got, sent, "{t:?} with only {name} set");
        }
    }
}

/// A raftpb message with every field set (byte fields non-empty: raft-rs
/// cannot tell empty from absent).
fn raftpb_every_field_set(kind: i32) -> raftpb::Message {
    let entry = |t: raftpb::EntryType, index, data: &'static [u8]| raftpb::Entry {
        term: 3,
        index,
        r#type: t as i32,
        data: Some(Bytes::from_static(data)),
    };
    raftpb::Message {
        r#type: kind,
        to: 2,
        from: 1,
        term: 3,
        log_term: 2,
        index: 10,
        entries: vec![
            entry(raftpb::EntryType::EntryNormal, 11, b"a"),
            entry(raftpb::EntryType::EntryConfChange, 12, b"b"),
            entry(raftpb::EntryType::EntryConfChangeV2, 13, b"c"),
        ],
        commit: 9,
        snapshot: raftpb::Snapshot {
            data: Some(Bytes::from_static(b"state")),
            metadata: raftpb::SnapshotMetadata {
                conf_state: raftpb::ConfState {
                    voters: vec![1, 2],
                    learners: vec![3],
                    voters_outgoing: vec![1],
                    learners_next: vec![4],
                    auto_leave: true,
                },
                index: 100,
                term: 2,
            },
        },
        reject: true,
        reject_hint: 8,
        context: Some(Bytes::from_static(b"ctx")),
    }
}

#[test]
fn every_raftpb_field_survives_raft_rs_types() {
    for kind in 0..=18 {
        let sent = raftpb_every_field_set(kind);
        let through = Message::try_from(sent.clone()).expect("a known type");
        let back = raftpb::Message::from(through);
        assert_eq!(back, sent, "type {kind}");
        assert_eq!(
            back.encode_to_vec(),
            sent.encode_to_vec(),
            "type {kind}: bytes"
        );
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// etcd 3.4.23's own encodings of five messages (from the raftpb vectors,
// made with etcd's generated gogoproto code): a raft-rs message without
// raft-rs-only fields must encode to exactly these bytes.
#[test]
fn without_raft_rs_only_fields_the_bytes_are_etcds() {
    let base = |msg_type, to, from, term| Message {
        msg_type,
        to,
        from,
        term,
        ..Default::default()
    };
    let heartbeat_resp = Message {
        context: Bytes::from_static(b"ctx"),
        ..base(MessageType::MsgHeartbeatResponse, 1, 2, 5)
    };
    let vote = Message {
        log_term: 1,
        index: 3,
        ..base(
            MessageType::MsgRequestVote,
            10276657743932975437,
            18249187646912138824,
            2,
        )
    };
    let hello = Entry {
        term: 3,
        index: 8,
        data: Bytes::from_static(b"hello"),
        ..Default::default()
    };
    let app = Message {
        log_term: 3,
        index: 7,
        commit: 7,
        entries: vec![hello].into(),
        ..base(MessageType::MsgAppend, 2, 1, 3)
    };
    let reject = Message {
        index: 7,
        reject: true,
        reject_hint: 5,
        ..base(MessageType::MsgAppendResponse, 1, 2, 3)
    };
    let conf = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    let snap = Message {
        snapshot: Some(snapshot(b"snapshot-bytes", conf, 100, 9)).into(),
        ..base(MessageType::MsgSnapshot, 2, 1, 9)
    };
    let cases = [
        (heartbeat_resp, "08091001180220052800300040004a0a12080a02280010001800500058006203637478"),
        (vote, "080510cdd2918bd2b881cf8e0118c89c94ed9fef88a1fd0120022801300340004a0a12080a0228001000180050005800"),
        (app, "0803100218012003280330073a0d080010031808220568656c6c6f40074a0a12080a0228001000180050005800"),
        (reject, "08041001180220032800300740004a0a12080a0228001000180050015805"),
        (snap, "08071002180120092800300040004a220a0e736e617073686f742d627974657312100a0a080108020803100428001064180950005800"),
    ];
    for (m, etcd) in cases {
        let t = m.get_msg_type();
        assert_eq!(
            hex(&raftpb::Message::from(m).encode_to_vec()),
            etcd,
            "{t:?}"
        );
    }
}

#[test]
fn what_raft_rs_cannot_take_is_an_error() {
    let mut unknown = raftpb_every_field_set(0);
    unknown.r#type = 19;
    assert_eq!(
        Message::try_from(unknown).unwrap_err(),
        ConvertError::UnknownMessageType(19)
    );
    let mut bad_entry = raftpb_every_field_set(3);
    bad_entry.entries[0].r#type = 7;
    assert_eq!(
        Message::try_from(bad_entry).unwrap_err(),
        ConvertError::UnknownEntryType(7)
    );
    // A packed slot naming an entry the message does not have.
    let mut sent = every_field_set(MessageType::MsgAppend);
    sent.entries = vec![entry(EntryType::EntryNormal, 1, b"", b"c")].into();
    let mut converted = raftpb::Message::from(sent);
    converted.entries.clear();
    let err = Message::try_from(converted).unwrap_err();
    assert!(matches!(err, ConvertError::Extension(_)), "{err:?}");
}

#[test]
fn outgoing_streams_snapshots_and_batches_the_rest() {
    let messages = vec![
        every_field_set(MessageType::MsgAppend),
        every_field_set(MessageType::MsgSnapshot),
        every_field_set(MessageType::MsgHeartbeat),
    ];
    let (batch, snapshots) = raft_rs::outgoing(messages);
    let kinds: Vec<i32> = batch.0.iter().map(|m| m.r#type).collect();
    assert_eq!(kinds, [3, 8]);
    assert_eq!(snapshots.len(), 1);
    let streamed = &snapshots[0];
    assert_eq!(streamed.size, b"application state".len() as u64);
    assert_eq!(streamed.message.snapshot.data, None, "the data is streamed");
    assert_eq!(streamed.message.snapshot.metadata.index, 1000);
}

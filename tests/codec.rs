//! `raftpb` wire compatibility with etcd 3.4.23.
//!
//! Ground truth is `tests/data/raftpb/` (made by etcd's own generated
//! gogoproto code; never edited) plus the hand vectors of
//! ETCD-RAFTHTTP.md §7.3 and the newer-raft encodings of §7.5.

mod support;

use std::collections::BTreeSet;
use std::fmt::Debug;

use bytes::Bytes;
use prost::Message as _;
use rafthttp_pipeline::raftpb::{
    ConfState, Entry, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};
use serde_json::Value;
use support::messages::{heartbeat, hex, unhex};
use support::raftpb_json::{bool_of, field, message_from_json, str_of};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/raftpb");

/// Decode cases that etcd 3.4.23 accepts but we reject. Each one is malformed
/// protobuf that etcd's generated decoder lets through by accident; none is a
/// well-formed encoding. Columns: case name, a fragment of prost's error, and
/// why the input is malformed.
const DELIBERATELY_REJECTED: &[(&str, &str, &str)] = &[
    (
        "mutated_39",
        "invalid key value",
        "noise that opens an unknown group (field 2040) and closes it with end-group key \
         25698583796 (field number 3212322974): the key does not fit 32 bits, the field number \
         is beyond 2^29-1 and does not match the group's; etcd 3.4's skipRaft ends a group at \
         any wire-type-4 key without looking at its field number",
    ),
    (
        "mutated_353",
        "Message.to: invalid varint",
        "Message.to is a 10-byte varint whose last byte is 0x2b, i.e. more than 64 bits; \
         etcd's decoder shifts the excess bits out and keeps 0xfffffffffffffffe",
    ),
    (
        "mutated_415",
        "Message.reject_hint: invalid varint",
        "Message.rejectHint is a 10-byte varint whose last byte is 0x75, i.e. more than 64 bits; \
         etcd's decoder shifts the excess bits out and keeps 0xfffffffffffffffd",
    ),
    (
        "mutated_463",
        "ConfState.voters_outgoing: SnapshotMetadata.conf_state: Snapshot.metadata: \
         Message.snapshot: invalid varint",
        "an unpacked ConfState.voters_outgoing element is a 10-byte varint whose last byte is \
         0x04, i.e. more than 64 bits; etcd's decoder drops the excess bits",
    ),
];

// ---------------------------------------------------------------------------
// helpers

#[test]
fn hex_helpers_round_trip() {
    assert_eq!(unhex("00 7f\n80 ff AB"), vec![0x00, 0x7f, 0x80, 0xff, 0xab]);
    assert_eq!(hex(&[0x00, 0x7f, 0x80, 0xff, 0xab]), "007f80ffab");
    assert_eq!(unhex(""), Vec::<u8>::new());
}

fn load(file: &str) -> Vec<Value> {
    let path = format!("{TESTDATA}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    match serde_json::from_str(&text) {
        Ok(Value::Array(items)) => items,
        other => panic!("{path} is not a JSON array: {other:?}"),
    }
}

fn decode(bytes: &[u8]) -> Result<Message, prost::DecodeError> {
    Message::decode(Bytes::copy_from_slice(bytes))
}

/// `msg` encodes to exactly `expected_hex`, reports that length, and decodes
/// back to itself.
fn assert_wire<M: prost::Message + Default + PartialEq + Debug>(msg: &M, expected_hex: &str) {
    let expected = unhex(expected_hex);
    assert_eq!(
        hex(&msg.encode_to_vec()),
        hex(&expected),
        "encoding of {msg:?}"
    );
    assert_eq!(msg.encoded_len(), expected.len(), "encoded_len of {msg:?}");
    let decoded = M::decode(Bytes::from(expected)).expect("decode");
    assert_eq!(&decoded, msg);
}

/// Fails listing every mismatch a vector run collected.
fn assert_no_mismatches(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The 3.4 trailer every `Message` carries: commit, the always-written
/// snapshot (12 bytes), reject and rejectHint, all zero.
const ZERO_TAIL: &str = "40 00 4a 0a 12 08 0a 02 28 00 10 00 18 00 50 00 58 00";

/// The §7.3 heartbeat as etcd 3.4 writes it.
const HEARTBEAT_3_4: &str =
    "08 08 10 02 18 01 20 01 28 00 30 00 40 03 4a 0a 12 08 0a 02 28 00 10 00 18 00 50 00 58 00";

// ---------------------------------------------------------------------------
// JSON → Message, following testdata/raftpb/README.md

// The vectors' JSON shape is read by `support::raftpb_json`, shared with
// the stream codec tests.

// ---------------------------------------------------------------------------
// 1. messages.json: 310 encodings written by etcd 3.4.23

/// The 310 vectors of messages.json.
fn message_vectors() -> Vec<Value> {
    let vectors = load("messages.json");
    assert_eq!(vectors.len(), 310);
    vectors
}

#[test]
fn all_etcd_message_vectors_encode_byte_identically() {
    let vectors = message_vectors();
    let mut failures = Vec::new();
    for v in &vectors {
        let name = str_of(v, "name");
        let msg = message_from_json(field(v, "message"));
        let want = str_of(v, "hex");
        let got = hex(&msg.encode_to_vec());
        if got != want {
            failures.push(format!("{name}: encoded {got}, etcd wrote {want}"));
        } else if msg.encoded_len() != want.len() / 2 {
            failures.push(format!("{name}: encoded_len {}", msg.encoded_len()));
        }
    }
    assert_no_mismatches(&failures);
}

#[test]
fn all_etcd_message_vectors_decode_to_their_fields_and_reencode_identically() {
    let vectors = message_vectors();
    let mut failures = Vec::new();
    for v in &vectors {
        let name = str_of(v, "name");
        let want = message_from_json(field(v, "message"));
        let wire = Bytes::from(unhex(str_of(v, "hex")));
        match Message::decode(wire.clone()) {
            Err(e) => failures.push(format!("{name}: decode failed: {e}")),
            Ok(got) if got != want => failures.push(format!("{name}: decoded {got:?}")),
            Ok(got) if got.encode_to_vec() != wire => failures.push(format!("{name}: re-encoding")),
            Ok(_) => {}
        }
    }
    assert_no_mismatches(&failures);
}

// ---------------------------------------------------------------------------
// 2. decode_cases.json: 600 mutated inputs judged by etcd 3.4.23

struct Case {
    name: String,
    wire: Vec<u8>,
    etcd_accepts: bool,
    reencoded_hex: Option<String>,
    /// etcd 3.4's re-encoding, which keeps unknown fields (reference only).
    reencoded_keeping_unknown_hex: Option<String>,
}

fn decode_cases() -> Vec<Case> {
    let cases: Vec<Case> = load("decode_cases.json")
        .iter()
        .map(|c| {
            let etcd_accepts = bool_of(c, "etcd_accepts");
            Case {
                name: str_of(c, "name").to_owned(),
                wire: unhex(str_of(c, "hex")),
                etcd_accepts,
                reencoded_hex: etcd_accepts.then(|| str_of(c, "reencoded_hex").to_owned()),
                reencoded_keeping_unknown_hex: etcd_accepts
                    .then(|| str_of(c, "reencoded_keeping_unknown_hex").to_owned()),
            }
        })
        .collect();
    assert_eq!(cases.len(), 600);
    assert_eq!(cases.iter().filter(|c| c.etcd_accepts).count(), 111);
    cases
}

#[test]
fn never_accepts_an_input_etcd_rejects() {
    let accepted: Vec<String> = decode_cases()
        .iter()
        .filter(|c| !c.etcd_accepts)
        .filter_map(|c| decode(&c.wire).ok().map(|m| format!("{}: {m:?}", c.name)))
        .collect();
    assert!(
        accepted.is_empty(),
        "accepted what etcd rejects:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn reencodes_what_etcd_accepts_exactly_as_etcd_with_unknown_fields_dropped() {
    let mut checked = 0;
    let mut unknown_dropped = 0;
    let mut failures = Vec::new();
    for c in decode_cases().iter().filter(|c| c.etcd_accepts) {
        let want = c
            .reencoded_hex
            .as_deref()
            .expect("accepted case has reencoded_hex");
        if let Ok(m) = decode(&c.wire) {
            checked += 1;
            let got = hex(&m.encode_to_vec());
            if got != want {
                failures.push(format!("{}: re-encoded {got}, etcd {want}", c.name));
            }
            if c.reencoded_keeping_unknown_hex.as_deref() != Some(want) {
                unknown_dropped += 1;
            }
        }
    }
    assert_no_mismatches(&failures);
    assert_eq!(checked, 111 - DELIBERATELY_REJECTED.len());
    // Inputs whose unknown fields etcd 3.4 would re-emit: we matched 3.5+ on
    // them, so dropping unknown fields was really exercised.
    assert_eq!(unknown_dropped, 34);
}

#[test]
fn rejects_only_the_listed_malformed_inputs_that_etcd_accepts_by_accident() {
    assert_eq!(
        DELIBERATELY_REJECTED.len(),
        4,
        "the table may not grow silently"
    );
    let mut rejected = BTreeSet::new();
    for c in decode_cases().iter().filter(|c| c.etcd_accepts) {
        if let Err(e) = decode(&c.wire) {
            let entry = DELIBERATELY_REJECTED.iter().find(|(n, _, _)| *n == c.name);
            if let Some((_, fragment, _)) = entry {
                let err = e.to_string();
                assert!(
                    err.contains(fragment),
                    "{}: rejected for {err:?}, not {fragment:?}",
                    c.name
                );
            }
            rejected.insert(c.name.clone());
        }
    }
    let listed: BTreeSet<String> = DELIBERATELY_REJECTED
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect();
    assert_eq!(rejected, listed);
}

// ---------------------------------------------------------------------------
// 3. sparse and newer-raft encodings

#[test]
fn message_with_only_type_and_to_decodes_with_defaults() {
    let m = decode(&unhex("08 08 10 02")).expect("decode");
    let want = Message {
        r#type: MessageType::MsgHeartbeat as i32,
        to: 2,
        ..Message::default()
    };
    assert_eq!(m, want);
    assert_eq!(m.snapshot, Snapshot::default());
    assert_eq!(m.context, None);
    // and is sent on in full 3.4 form
    assert_eq!(
        hex(&m.encode_to_vec()),
        hex(&unhex(&format!(
            "08 08 10 02 18 00 20 00 28 00 30 00 {ZERO_TAIL}"
        )))
    );
}

#[test]
fn empty_input_decodes_to_the_zero_message() {
    assert_eq!(decode(&[]).expect("decode"), Message::default());
}

#[test]
fn msg_snap_without_snapshot_field_decodes_with_default_snapshot() {
    let m = decode(&unhex("08 07 10 02 18 01")).expect("decode");
    assert!(m.is_snapshot());
    assert_eq!(m.snapshot, Snapshot::default());
}

#[test]
fn sparse_entries_and_snapshot_decode_with_defaults() {
    // protoc-gen-go (raft 3.7) writes only set fields: an entry with only
    // index and data, and a snapshot whose metadata has only an index.
    let m = decode(&unhex("08 03 3a 06 18 04 22 02 68 69 4a 05 12 03 10 e8 07")).expect("decode");
    let want = Message {
        r#type: MessageType::MsgApp as i32,
        entries: vec![Entry {
            index: 4,
            data: Some(Bytes::from_static(b"hi")),
            ..Entry::default()
        }],
        snapshot: Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                index: 1000,
                ..SnapshotMetadata::default()
            },
        },
        ..Message::default()
    };
    assert_eq!(m, want);
}

#[test]
fn unknown_vote_13_and_responses_14_are_skipped_and_not_reencoded() {
    // raft 3.6: vote = 13 (varint), responses = 14 (a repeated Message).
    let responses = "72 04 08 13 10 01"; // one response: {type 19 (MsgStorageAppend), to 1}
    let wire = format!("{HEARTBEAT_3_4} 68 07 {responses} 72 00");
    let m = decode(&unhex(&wire)).expect("decode");
    assert_eq!(m, heartbeat());
    assert_eq!(hex(&m.encode_to_vec()), hex(&unhex(HEARTBEAT_3_4)));
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    // field 15 varint, field 16 fixed64, field 17 length-delimited,
    // field 18 group holding a varint, field 19 fixed32
    let unknown = "78 01 81 01 0102030405060708 8a 01 02 aa bb 93 01 08 05 94 01 9d 01 01020304";
    let m = decode(&unhex(&format!("{unknown} {HEARTBEAT_3_4} {unknown}"))).expect("decode");
    assert_eq!(m, heartbeat());
}

#[test]
fn raft_3_6_heartbeat_without_snapshot_field_decodes_to_the_3_4_heartbeat() {
    let m = decode(&unhex(
        "08 08 10 02 18 01 20 01 28 00 30 00 40 03 50 00 58 00 68 00",
    ))
    .expect("decode");
    assert_eq!(m, heartbeat());
    assert_eq!(m.snapshot, Snapshot::default());
    assert_eq!(hex(&m.encode_to_vec()), hex(&unhex(HEARTBEAT_3_4)));
}

#[test]
fn unknown_message_and_entry_types_survive_a_round_trip() {
    // raft 3.6 adds MsgStorageAppend = 19 .. MsgForgetLeader = 23.
    let m = decode(&unhex("08 17 10 02 3a 02 08 05")).expect("decode");
    assert_eq!((m.r#type, m.msg_type()), (23, None));
    assert_eq!(m.entries[0].r#type, 5);
    let again = decode(&m.encode_to_vec()).expect("decode");
    assert_eq!(again, m);
}

#[test]
fn conf_state_decodes_packed_voters_and_reencodes_them_unpacked() {
    let cs =
        ConfState::decode(Bytes::from(unhex("0a 03 01 02 03 12 01 04 28 01"))).expect("decode");
    assert_eq!(cs.voters, vec![1, 2, 3]);
    assert_eq!(cs.learners, vec![4]);
    assert!(cs.auto_leave);
    assert_eq!(hex(&cs.encode_to_vec()), "08010802080310042801");
}

// ---------------------------------------------------------------------------
// 4. hand vectors of ETCD-RAFTHTTP.md §7.3

#[test]
fn empty_message_is_30_bytes_with_every_required_field_and_the_snapshot() {
    let wire = format!("08 00 10 00 18 00 20 00 28 00 30 00 {ZERO_TAIL}");
    assert_eq!(unhex(&wire).len(), 30);
    assert_wire(&Message::default(), &wire);
}

#[test]
fn heartbeat_matches_etcd() {
    assert_wire(&heartbeat(), HEARTBEAT_3_4);
}

#[test]
fn msg_app_with_one_entry_matches_etcd() {
    let m = Message {
        r#type: MessageType::MsgApp as i32,
        to: 2,
        from: 1,
        term: 1,
        log_term: 1,
        index: 3,
        commit: 3,
        entries: vec![Entry {
            term: 1,
            index: 4,
            data: Some(Bytes::from_static(b"hi")),
            ..Entry::default()
        }],
        ..Message::default()
    };
    assert_wire(
        &m,
        "08 03 10 02 18 01 20 01 28 01 30 03 3a 0a 08 00 10 01 18 04 22 02 68 69 \
         40 03 4a 0a 12 08 0a 02 28 00 10 00 18 00 50 00 58 00",
    );
}

#[test]
fn msg_snap_writes_conf_state_voters_unpacked() {
    let m = Message {
        r#type: MessageType::MsgSnap as i32,
        to: 2,
        from: 1,
        term: 1,
        snapshot: Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                conf_state: ConfState {
                    voters: vec![1, 2, 3],
                    ..ConfState::default()
                },
                index: 1000,
                term: 1,
            },
        },
        ..Message::default()
    };
    assert_wire(
        &m,
        "08 07 10 02 18 01 20 01 28 00 30 00 40 00 4a 11 12 0f 0a 08 08 01 08 02 08 03 28 00 \
         10 e8 07 18 01 50 00 58 00",
    );
}

#[test]
fn msg_app_resp_with_64_bit_ids_reject_and_empty_context_matches_etcd() {
    let m = Message {
        r#type: MessageType::MsgAppResp as i32,
        to: 0x8e9e_05c5_2164_694d,
        from: 0x91bc_3c39_8fb3_c146,
        term: 5,
        index: 300,
        reject: true,
        reject_hint: 299,
        context: Some(Bytes::new()),
        ..Message::default()
    };
    assert_wire(
        &m,
        "08 04 10 cd d2 91 8b d2 b8 81 cf 8e 01 18 c6 82 cf fd 98 87 8f de 91 01 20 05 28 00 \
         30 ac 02 40 00 4a 0a 12 08 0a 02 28 00 10 00 18 00 50 01 58 ab 02 62 00",
    );
}

#[test]
fn empty_entry_writes_type_term_and_index() {
    assert_wire(&Entry::default(), "08 00 10 00 18 00");
}

#[test]
fn hard_state_writes_term_vote_commit() {
    let hs = HardState {
        term: 1,
        vote: 2,
        commit: 3,
    };
    assert_wire(&hs, "08 01 10 02 18 03");
}

#[test]
fn empty_conf_state_writes_only_auto_leave() {
    assert_wire(&ConfState::default(), "28 00");
}

#[test]
fn msg_prop_keeps_nil_and_empty_entry_data_apart() {
    let m = Message {
        r#type: MessageType::MsgProp as i32,
        entries: vec![
            Entry::default(),
            Entry {
                data: Some(Bytes::new()),
                ..Entry::default()
            },
        ],
        ..Message::default()
    };
    assert_wire(
        &m,
        &format!(
            "08 02 10 00 18 00 20 00 28 00 30 00 \
             3a 06 08 00 10 00 18 00 3a 08 08 00 10 00 18 00 22 00 {ZERO_TAIL}"
        ),
    );
}

#[test]
fn malformed_garbage_fails_to_decode() {
    assert!(Message::decode(Bytes::from_static(b"malformed garbage")).is_err());
}

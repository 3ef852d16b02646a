//! Property tests: every raftpb type, generated with arbitrary field
//! values, encodes to exactly `encoded_len` bytes and decodes back to
//! itself; every enum value converts back to its number.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use rafthttp_pipeline::raftpb::{
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};

fn bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u64>(), any::<u64>(), any::<i32>(), bytes(64)).prop_map(|(term, index, kind, data)| {
        Entry {
            term,
            index,
            r#type: kind,
            data,
        }
    })
}

fn ids() -> impl Strategy<Value = Vec<u64>> {
    vec(any::<u64>(), 0..6)
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    (ids(), ids(), ids(), ids(), any::<bool>()).prop_map(
        |(voters, learners, voters_outgoing, learners_next, auto_leave)| ConfState {
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave,
        },
    )
}

fn metadata() -> impl Strategy<Value = SnapshotMetadata> {
    (conf_state(), any::<u64>(), any::<u64>()).prop_map(|(conf_state, index, term)| {
        SnapshotMetadata {
            conf_state,
            index,
            term,
        }
    })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (bytes(128), metadata()).prop_map(|(data, metadata)| Snapshot { data, metadata })
}

fn hard_state() -> impl Strategy<Value = HardState> {
    (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(term, vote, commit)| HardState {
        term,
        vote,
        commit,
    })
}

fn message() -> impl Strategy<Value = Message> {
    let head = (
        any::<i32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    );
    let tail = (
        vec(entry(), 0..4),
        any::<u64>(),
        snapshot(),
        any::<bool>(),
        any::<u64>(),
        bytes(32),
    );
    (head, tail).prop_map(
        |(
            (kind, to, from, term, log_term, index),
            (entries, commit, snapshot, reject, reject_hint, context),
        )| Message {
            r#type: kind,
            to,
            from,
            term,
            log_term,
            index,
            entries,
            commit,
            snapshot,
            reject,
            reject_hint,
            context,
        },
    )
}

/// `value` encodes to `encoded_len` bytes and decodes back to itself.
fn round_trips<M: prost::Message + Default + PartialEq + std::fmt::Debug>(
    value: &M,
) -> Result<(), TestCaseError> {
    let encoded = value.encode_to_vec();
    prop_assert_eq!(encoded.len(), value.encoded_len());
    let decoded = M::decode(encoded.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, value);
    Ok(())
}

proptest! {
    #[test]
    fn entry_round_trips(value in entry()) {
        round_trips(&value)?;
    }

    #[test]
    fn conf_state_round_trips(value in conf_state()) {
        round_trips(&value)?;
    }

    #[test]
    fn snapshot_metadata_round_trips(value in metadata()) {
        round_trips(&value)?;
    }

    #[test]
    fn snapshot_round_trips(value in snapshot()) {
        round_trips(&value)?;
    }

    #[test]
    fn hard_state_round_trips(value in hard_state()) {
        round_trips(&value)?;
    }

    #[test]
    fn message_round_trips(value in message()) {
        round_trips(&value)?;
    }

    #[test]
    fn message_type_numbers_round_trip(n in 0i32..=18) {
        let kind = MessageType::try_from(n).expect("etcd 3.4 has 19 message types");
        prop_assert_eq!(kind as i32, n);
    }

    #[test]
    fn entry_type_numbers_round_trip(n in 0i32..=2) {
        let kind = EntryType::try_from(n).expect("etcd 3.4 has 3 entry types");
        prop_assert_eq!(kind as i32, n);
    }

    #[test]
    fn unknown_enum_numbers_are_refused(n in any::<i32>()) {
        prop_assert_eq!(MessageType::try_from(n).is_ok(), (0..=18).contains(&n));
        prop_assert_eq!(EntryType::try_from(n).is_ok(), (0..=2).contains(&n));
    }
}

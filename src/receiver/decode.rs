//! Decoding a raft message with a bound on what decoding allocates.
//!
//! Byte fields share the received buffer, so a message's cost beyond its
//! body is its repeated fields: each `Entry` takes
//! `size_of::<Entry>()` bytes (56) however few bytes it had on the wire
//! (2 for an empty one), and each `ConfState` id 8 (1 byte packed). Before
//! decoding, one pass over the wire format counts them; the message is
//! refused when they would take more than [`DecodeBound`] allows, and
//! otherwise decoded into vectors reserved to exactly that size.
//!
//! Pure: prost and bytes only.

use std::mem::size_of;

use bytes::{Buf, Bytes};
use prost::encoding::decode_varint;
use prost::Message as _;

use crate::raftpb::{Entry, Message};

/// What decoding may allocate beyond the body, per body byte (default 8).
/// etcd always writes an entry's type, term and index, so its entries
/// take at least 8 bytes on the wire and at most 7 times that decoded:
/// etcd's traffic never reaches 8.
pub const DECODE_RATIO: usize = 8;

/// What decoding may allocate beyond the body whatever its size: 64 KiB,
/// so that small messages are never refused by the ratio.
pub const DECODE_ALLOWANCE_BYTES: usize = 64 * 1024;

/// `Message.entries` (`raft.proto`).
const MESSAGE_ENTRIES: u32 = 7;
/// `Message.snapshot`.
const MESSAGE_SNAPSHOT: u32 = 9;
/// `Snapshot.metadata`.
const SNAPSHOT_METADATA: u32 = 2;
/// `SnapshotMetadata.conf_state`.
const METADATA_CONF_STATE: u32 = 1;

/// Protobuf's wire types that this scan reads.
const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// The repeated fields of a message body, counted before decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// `Message.entries`.
    pub(crate) entries: usize,
    /// `ConfState`'s `voters`, `learners`, `voters_outgoing`,
    /// `learners_next`.
    pub(crate) conf_ids: [usize; 4],
}

impl Shape {
    /// Counts the repeated fields of the encoded `Message` in `body`. A
    /// malformed body is counted up to where it breaks: decoding stops
    /// there too.
    pub(crate) fn of(body: &[u8]) -> Shape {
        let mut shape = Shape::default();
        for_each_field(body, |field, payload| match field {
            MESSAGE_ENTRIES => shape.entries += 1,
            MESSAGE_SNAPSHOT => count_snapshot(payload, &mut shape.conf_ids),
            _ => {}
        });
        shape
    }

    /// What decoding allocates for these fields, in bytes.
    pub(crate) fn decoded_bytes(&self) -> usize {
        let ids: usize = self.conf_ids.iter().sum();
        self.entries
            .saturating_mul(size_of::<Entry>())
            .saturating_add(ids.saturating_mul(size_of::<u64>()))
    }
}

/// The bound: decoding a body of `n` bytes may allocate
/// `max(n * ratio, allowance)` bytes beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeBound {
    /// Bytes per body byte.
    pub(crate) ratio: usize,
    /// Bytes for any body.
    pub(crate) allowance: usize,
}

/// Decoding `body` would allocate more than the bound allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decoding would allocate {decoded} bytes, over the limit of {limit}")]
pub(crate) struct OverBound {
    /// What decoding would allocate.
    pub(crate) decoded: usize,
    /// What the bound allows for this body.
    pub(crate) limit: usize,
}

impl DecodeBound {
    /// Checks `shape`, counted in a body of `body_len` bytes.
    pub(crate) fn check(&self, shape: &Shape, body_len: usize) -> Result<usize, OverBound> {
        let limit = body_len.saturating_mul(self.ratio).max(self.allowance);
        let decoded = shape.decoded_bytes();
        if decoded > limit {
            return Err(OverBound { decoded, limit });
        }
        Ok(decoded)
    }
}

/// Decodes `body`, counted as `shape`, into vectors reserved to their
/// exact size (prost's `decode` is `default` then `merge`).
pub(crate) fn decode(body: Bytes, shape: &Shape) -> Result<Message, prost::DecodeError> {
    let mut message = Message::default();
    message.entries.reserve_exact(shape.entries);
    let conf = &mut message.snapshot.metadata.conf_state;
    let fields = [
        &mut conf.voters,
        &mut conf.learners,
        &mut conf.voters_outgoing,
        &mut conf.learners_next,
    ];
    for (ids, n) in fields.into_iter().zip(shape.conf_ids) {
        ids.reserve_exact(n);
    }
    message.merge(body)?;
    Ok(message)
}

/// `Snapshot` → `metadata` → `conf_state` → its four id lists.
fn count_snapshot(snapshot: &[u8], ids: &mut [usize; 4]) {
    for_each_field(snapshot, |field, metadata| {
        if field != SNAPSHOT_METADATA {
            return;
        }
        for_each_field(metadata, |field, conf| {
            if field == METADATA_CONF_STATE {
                count_conf_state(conf, ids);
            }
        });
    });
}

/// Counts `ConfState`'s ids, written one a field or packed.
fn count_conf_state(conf: &[u8], ids: &mut [usize; 4]) {
    let mut buf = conf;
    while let Some((field, wire)) = key(&mut buf) {
        let Some(slot) = (1..=4)
            .contains(&field)
            .then(|| &mut ids[field as usize - 1])
        else {
            if skip(&mut buf, wire).is_none() {
                return;
            }
            continue;
        };
        match wire {
            WIRE_VARINT => *slot += 1,
            WIRE_LEN => {
                let Some(packed) = len_delimited(&mut buf) else {
                    return;
                };
                // One varint ends at each byte without the high bit.
                *slot += packed.iter().filter(|b| **b < 0x80).count();
                continue;
            }
            _ => {}
        }
        if skip(&mut buf, wire).is_none() {
            return;
        }
    }
}

/// Calls `on` with each length-delimited field of `body` and its payload;
/// stops at the first malformed field.
fn for_each_field(body: &[u8], mut on: impl FnMut(u32, &[u8])) {
    let mut buf = body;
    while let Some((field, wire)) = key(&mut buf) {
        if wire == WIRE_LEN {
            let Some(payload) = len_delimited(&mut buf) else {
                return;
            };
            on(field, payload);
        } else if skip(&mut buf, wire).is_none() {
            return;
        }
    }
}

/// The next field number and wire type.
fn key(buf: &mut &[u8]) -> Option<(u32, u64)> {
    if buf.is_empty() {
        return None;
    }
    let key = decode_varint(buf).ok()?;
    let field = u32::try_from(key >> 3).ok()?;
    Some((field, key & 7))
}

/// A length-delimited payload.
fn len_delimited<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
    let payload = buf.get(..len)?;
    *buf = &buf[len..];
    Some(payload)
}

/// Skips a value of wire type `wire`; `None` for a malformed one or a
/// group (which raft messages never hold and prost refuses).
fn skip(buf: &mut &[u8], wire: u64) -> Option<()> {
    let len = match wire {
        WIRE_VARINT => return decode_varint(buf).ok().map(drop),
        WIRE_LEN => return len_delimited(buf).map(drop),
        WIRE_FIXED64 => 8,
        WIRE_FIXED32 => 4,
        _ => return None,
    };
    (buf.remaining() >= len).then(|| buf.advance(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::{ConfState, Snapshot, SnapshotMetadata};

    const BOUND: DecodeBound = DecodeBound {
        ratio: DECODE_RATIO,
        allowance: DECODE_ALLOWANCE_BYTES,
    };

    fn message(entries: usize, voters: usize) -> Message {
        Message {
            r#type: 3,
            entries: vec![
                Entry {
                    term: 1,
                    index: 1,
                    r#type: 0,
                    data: Some(Bytes::from_static(b"x")),
                };
                entries
            ],
            snapshot: Snapshot {
                data: None,
                metadata: SnapshotMetadata {
                    conf_state: ConfState {
                        voters: (0..voters as u64).collect(),
                        learners: vec![9],
                        ..Default::default()
                    },
                    index: 0,
                    term: 0,
                },
            },
            ..Default::default()
        }
    }

    #[test]
    fn counts_entries_and_conf_ids_and_decodes_the_same_message() {
        let m = message(5, 3);
        let body = Bytes::from(m.encode_to_vec());
        let shape = Shape::of(&body);
        assert_eq!(shape.entries, 5);
        assert_eq!(shape.conf_ids, [3, 1, 0, 0]);
        let decoded = decode(body, &shape).unwrap();
        assert_eq!(decoded, m);
        assert_eq!(decoded.entries.capacity(), 5);
    }

    #[test]
    fn packed_conf_ids_are_counted() {
        // conf_state { voters: packed [1, 300, 2] }
        let conf = [0x0a, 0x04, 0x01, 0xac, 0x02, 0x02];
        let mut ids = [0; 4];
        count_conf_state(&conf, &mut ids);
        assert_eq!(ids, [3, 0, 0, 0]);
    }

    #[test]
    fn empty_entries_over_the_ratio_are_refused_before_decoding() {
        // 16 Mi empty entries in 32 MiB would decode to 896 MiB; here a
        // smaller run of the same shape: `3a 00` is one empty entry.
        let body = [0x3a, 0x00].repeat(1 << 16);
        let shape = Shape::of(&body);
        assert_eq!(shape.entries, 1 << 16);
        let err = BOUND.check(&shape, body.len()).unwrap_err();
        assert_eq!(err.decoded, (1 << 16) * size_of::<Entry>());
        assert_eq!(err.limit, body.len() * DECODE_RATIO);
    }

    #[test]
    fn etcds_smallest_entries_pass_the_ratio() {
        // type, term and index always written: 8 bytes an entry.
        let entry = Entry {
            term: 1,
            index: 1,
            r#type: 0,
            data: None,
        };
        let m = Message {
            entries: vec![entry; 100_000],
            ..Default::default()
        };
        let body = m.encode_to_vec();
        assert!(BOUND.check(&Shape::of(&body), body.len()).is_ok());
    }

    #[test]
    fn small_bodies_pass_by_the_allowance_and_garbage_is_counted_safely() {
        let one_empty_entry = [0x3a, 0x00];
        assert!(BOUND.check(&Shape::of(&one_empty_entry), 2).is_ok());
        // A key too long, an entry's length cut off, a snapshot longer
        // than the body: counted up to the break, nothing past it.
        for garbage in [&[0xff; 12][..], &[0x3a, 0xff, 0xff], &[0x4a, 0x05, 0x12]] {
            assert_eq!(Shape::of(garbage), Shape::default(), "{garbage:?}");
        }
        assert_eq!(Shape::of(&[0x3a, 0x00, 0x3a, 0x05]).entries, 1);
    }
}

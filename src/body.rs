//! A pipeline request body: a message encoded once, without copying a
//! large `snapshot.data`, and sent in slices, so neither the encoder nor the
//! HTTP client copies a snapshot's bytes.

use bytes::{Bytes, BytesMut};
use prost::encoding::{self, encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message as _;

use crate::raftpb::Message;

/// A `snapshot.data` at least this large is shared with the body rather
/// than copied into it.
pub const SHARE_DATA_FROM: usize = 64 * 1024;

/// The largest slice handed to the HTTP client at once: it copies each
/// slice into its write buffer, which then stays small.
pub const SEND_SLICE: usize = 256 * 1024;

/// An encoded message, in wire order.
#[derive(Debug, Clone)]
pub enum Body {
    /// The whole encoding in one buffer.
    Whole(Bytes),
    /// A message whose large `snapshot.data` is shared, not copied: the
    /// fields before its bytes, the bytes, the fields after them.
    Shared {
        /// Every field before the snapshot's bytes.
        head: Bytes,
        /// `snapshot.data`, shared with the message.
        data: Bytes,
        /// Every field after the snapshot's bytes.
        tail: Bytes,
    },
}

impl Body {
    /// Encodes `message` byte for byte as `encode_to_vec` does, sharing a
    /// large `snapshot.data` instead of copying it.
    pub fn encode(message: &Message) -> Self {
        match &message.snapshot.data {
            Some(data) if data.len() >= SHARE_DATA_FROM => around_data(message, data),
            _ => Body::Whole(Bytes::from(message.encode_to_vec())),
        }
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            Body::Whole(bytes) => bytes.len(),
            Body::Shared { head, data, tail } => head.len() + data.len() + tail.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body when it is one small buffer, to send as it is;
    /// otherwise the body back, to send in [`slices`](Self::slices).
    pub fn into_single(self) -> Result<Bytes, Self> {
        match self {
            Body::Whole(bytes) if bytes.len() <= SEND_SLICE => Ok(bytes),
            body => Err(body),
        }
    }

    /// The body in slices of at most [`SEND_SLICE`], none of them copied.
    pub fn slices(&self) -> Vec<Bytes> {
        self.parts()
            .into_iter()
            .flat_map(|part| {
                (0..part.len())
                    .step_by(SEND_SLICE)
                    .map(move |at| part.slice(at..part.len().min(at + SEND_SLICE)))
            })
            .collect()
    }

    fn parts(&self) -> Vec<&Bytes> {
        match self {
            Body::Whole(bytes) => vec![bytes],
            Body::Shared { head, data, tail } => vec![head, data, tail],
        }
    }
}

/// Three parts: every field before `snapshot.data`'s bytes, the shared
/// bytes, every field after them. Fields go in tag order, as prost and
/// gogoproto write them.
fn around_data(m: &Message, data: &Bytes) -> Body {
    let metadata_len = encoding::message::encoded_len(2, &m.snapshot.metadata);
    let data_field_len = key_len(1) + encoded_len_varint(data.len() as u64) + data.len();
    let mut head = BytesMut::with_capacity(256);
    encode_before_snapshot(m, &mut head);
    encode_key(9, WireType::LengthDelimited, &mut head);
    encode_varint((data_field_len + metadata_len) as u64, &mut head);
    encode_key(1, WireType::LengthDelimited, &mut head);
    encode_varint(data.len() as u64, &mut head);
    let mut tail = BytesMut::with_capacity(metadata_len + 64);
    encoding::message::encode(2, &m.snapshot.metadata, &mut tail);
    encode_after_snapshot(m, &mut tail);
    Body::Shared {
        head: head.freeze(),
        data: data.clone(),
        tail: tail.freeze(),
    }
}

/// Fields 1 to 8 (`type` to `commit`).
fn encode_before_snapshot(m: &Message, buf: &mut BytesMut) {
    encoding::int32::encode(1, &m.r#type, buf);
    encoding::uint64::encode(2, &m.to, buf);
    encoding::uint64::encode(3, &m.from, buf);
    encoding::uint64::encode(4, &m.term, buf);
    encoding::uint64::encode(5, &m.log_term, buf);
    encoding::uint64::encode(6, &m.index, buf);
    encoding::message::encode_repeated(7, &m.entries, buf);
    encoding::uint64::encode(8, &m.commit, buf);
}

/// Fields 10 to 12 (`reject` to `context`).
fn encode_after_snapshot(m: &Message, buf: &mut BytesMut) {
    encoding::bool::encode(10, &m.reject, buf);
    encoding::uint64::encode(11, &m.reject_hint, buf);
    if let Some(context) = &m.context {
        encoding::bytes::encode(12, context, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::{ConfState, Entry, MessageType};

    fn joined(body: &Body) -> Vec<u8> {
        body.slices().iter().flat_map(|s| s.to_vec()).collect()
    }

    fn snap(len: usize) -> Message {
        let mut m = Message {
            r#type: MessageType::MsgSnap as i32,
            to: 2,
            from: 0x1a,
            term: 7,
            log_term: 6,
            index: 300,
            commit: 299,
            reject: true,
            reject_hint: 1 << 40,
            context: Some(Bytes::from_static(b"ctx")),
            entries: vec![Entry {
                term: 3,
                index: 9,
                data: Some(Bytes::from_static(b"entry")),
                ..Default::default()
            }],
            ..Default::default()
        };
        m.snapshot.data = Some((0..len).map(|i| (i * 31) as u8).collect::<Vec<u8>>().into());
        m.snapshot.metadata.index = 1 << 33;
        m.snapshot.metadata.term = 5;
        m.snapshot.metadata.conf_state = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            auto_leave: true,
            ..Default::default()
        };
        m
    }

    #[test]
    fn a_shared_snapshot_encodes_as_prost_does() {
        for len in [
            SHARE_DATA_FROM,
            SHARE_DATA_FROM + 1,
            3 * SEND_SLICE + 17,
            1 << 21,
        ] {
            let mut m = snap(len);
            let body = Body::encode(&m);
            assert_eq!(joined(&body), m.encode_to_vec(), "len {len}");
            assert_eq!(body.len(), m.encoded_len());
            m.context = None;
            m.reject = false;
            m.entries.clear();
            assert_eq!(
                joined(&Body::encode(&m)),
                m.encode_to_vec(),
                "len {len}, bare"
            );
        }
    }

    #[test]
    fn small_messages_are_one_buffer() {
        let m = snap(10);
        let body = Body::encode(&m);
        assert_eq!(
            body.into_single().map(|b| b.to_vec()).ok(),
            Some(m.encode_to_vec())
        );
    }

    #[test]
    fn slices_share_the_data_and_are_bounded() {
        let m = snap(3 * SEND_SLICE + 17);
        let body = Body::encode(&m);
        let body = body.into_single().expect_err("a large body is sliced");
        let slices = body.slices();
        assert!(slices.iter().all(|s| s.len() <= SEND_SLICE));
        let data = m.snapshot.data.as_ref().unwrap();
        assert!(slices.iter().any(|s| s.as_ptr() == data.as_ptr()));
    }
}

//! A pipeline request body: a message encoded once, byte for byte as prost
//! (and etcd) encode it, with its large byte fields (an entry's `data`,
//! `snapshot.data`) shared with the message rather than copied. The other
//! fields sit in buffers of their own between the shared data, and the body
//! goes to the HTTP client in slices, which it copies one at a time into its
//! write buffer: neither the encoding nor the queue that holds it keeps a
//! copy of large data.

use std::fmt;

use bytes::{Bytes, BytesMut};
use prost::encoding::{self, encode_key, encode_varint, WireType};
use prost::Message as _;

use crate::raftpb::{Entry, Message, Snapshot};

/// An entry's `data` or a `snapshot.data` at least this large is shared
/// with the body rather than copied into it. Smaller data is copied:
/// copying a few KiB costs less than a slice of its own, and the HTTP
/// client writes to the socket whenever a slice takes its buffer past
/// 8 KiB, so shared slices this large keep every write large.
pub(crate) const SHARE_DATA_FROM: usize = 64 * 1024;

/// The largest slice handed to the HTTP client at once: it copies each
/// slice into its write buffer, which then stays small.
pub(crate) const SEND_SLICE: usize = 256 * 1024;

/// An encoded message, in wire order.
#[derive(Clone)]
pub(crate) enum Body {
    /// The whole encoding in one buffer: a message without large data.
    Whole(Bytes),
    /// A message with large data, shared, not copied: the encoded fields
    /// around each large data in buffers of their own, interleaved with the
    /// shared data.
    Sliced {
        /// The encoding's parts in wire order, none empty.
        parts: Vec<Bytes>,
        /// Their total length.
        len: usize,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("len", &self.len())
            .field("parts", &self.parts().len())
            .finish()
    }
}

impl Body {
    /// Encodes `message` byte for byte as `encode_to_vec` does, sharing
    /// each data of at least [`SHARE_DATA_FROM`] bytes instead of copying
    /// it.
    pub(crate) fn encode(message: &Message) -> Self {
        match shared_len(message) {
            0 => Body::Whole(Bytes::from(message.encode_to_vec())),
            shared => sliced(message, shared),
        }
    }

    /// Bytes on the wire.
    pub(crate) fn len(&self) -> usize {
        match self {
            Body::Whole(bytes) => bytes.len(),
            Body::Sliced { len, .. } => *len,
        }
    }

    /// The whole body when it is one small buffer, to send as it is;
    /// otherwise the body back, to send in [`slices`](Self::slices).
    pub(crate) fn into_single(self) -> Result<Bytes, Self> {
        match self {
            Body::Whole(bytes) if bytes.len() <= SEND_SLICE => Ok(bytes),
            body => Err(body),
        }
    }

    /// The body in slices of at most [`SEND_SLICE`], none of them copied.
    pub(crate) fn slices(&self) -> Vec<Bytes> {
        self.parts()
            .iter()
            .flat_map(|part| {
                (0..part.len())
                    .step_by(SEND_SLICE)
                    .map(move |at| part.slice(at..part.len().min(at + SEND_SLICE)))
            })
            .collect()
    }

    fn parts(&self) -> &[Bytes] {
        match self {
            Body::Whole(bytes) => std::slice::from_ref(bytes),
            Body::Sliced { parts, .. } => parts,
        }
    }
}

/// Whether `data` is large enough to share.
fn shares(data: &Bytes) -> bool {
    data.len() >= SHARE_DATA_FROM
}

/// The bytes of `m` that [`Body::encode`] shares rather than copies.
fn shared_len(m: &Message) -> usize {
    m.entries
        .iter()
        .filter_map(|entry| entry.data.as_ref())
        .chain(m.snapshot.data.as_ref())
        .filter(|data| shares(data))
        .map(Bytes::len)
        .sum()
}

/// Every field of `m` in tag order, as prost and gogoproto write them:
/// the encoded fields in one buffer, cut wherever shared data goes.
fn sliced(m: &Message, shared: usize) -> Body {
    let len = m.encoded_len();
    let mut out = Parts {
        buf: BytesMut::with_capacity(len - shared),
        parts: Vec::new(),
    };
    encode_before_entries(m, &mut out.buf);
    for entry in &m.entries {
        out.entry(entry);
    }
    encoding::uint64::encode(8, &m.commit, &mut out.buf);
    out.snapshot(&m.snapshot);
    encode_after_snapshot(m, &mut out.buf);
    out.finish(len)
}

/// Fields 1 to 6 (`type` to `index`).
fn encode_before_entries(m: &Message, buf: &mut BytesMut) {
    encoding::int32::encode(1, &m.r#type, buf);
    encoding::uint64::encode(2, &m.to, buf);
    encoding::uint64::encode(3, &m.from, buf);
    encoding::uint64::encode(4, &m.term, buf);
    encoding::uint64::encode(5, &m.log_term, buf);
    encoding::uint64::encode(6, &m.index, buf);
}

/// Fields 10 to 12 (`reject` to `context`).
fn encode_after_snapshot(m: &Message, buf: &mut BytesMut) {
    encoding::bool::encode(10, &m.reject, buf);
    encoding::uint64::encode(11, &m.reject_hint, buf);
    if let Some(context) = &m.context {
        encoding::bytes::encode(12, context, buf);
    }
}

/// A body being written: the fields since the last shared data in `buf`,
/// every earlier part in `parts`.
struct Parts {
    buf: BytesMut,
    parts: Vec<Bytes>,
}

impl Parts {
    /// One entry of field 7: `type`, `term`, `index`, `data`.
    fn entry(&mut self, entry: &Entry) {
        encode_key(7, WireType::LengthDelimited, &mut self.buf);
        encode_varint(entry.encoded_len() as u64, &mut self.buf);
        encoding::int32::encode(1, &entry.r#type, &mut self.buf);
        encoding::uint64::encode(2, &entry.term, &mut self.buf);
        encoding::uint64::encode(3, &entry.index, &mut self.buf);
        self.data(4, &entry.data);
    }

    /// Field 9: `data`, `metadata`.
    fn snapshot(&mut self, snapshot: &Snapshot) {
        encode_key(9, WireType::LengthDelimited, &mut self.buf);
        encode_varint(snapshot.encoded_len() as u64, &mut self.buf);
        self.data(1, &snapshot.data);
        encoding::message::encode(2, &snapshot.metadata, &mut self.buf);
    }

    /// An optional bytes field: absent when `None` (Go's nil), copied when
    /// small, its key and length written and its bytes shared when large.
    fn data(&mut self, tag: u32, data: &Option<Bytes>) {
        match data {
            Some(data) if shares(data) => {
                encode_key(tag, WireType::LengthDelimited, &mut self.buf);
                encode_varint(data.len() as u64, &mut self.buf);
                self.parts.push(self.buf.split().freeze());
                self.parts.push(data.clone());
            }
            Some(data) => encoding::bytes::encode(tag, data, &mut self.buf),
            None => {}
        }
    }

    fn finish(mut self, len: usize) -> Body {
        if !self.buf.is_empty() {
            self.parts.push(self.buf.freeze());
        }
        Body::Sliced {
            parts: self.parts,
            len,
        }
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

    fn filled(len: usize, seed: u8) -> Option<Bytes> {
        Some(
            (0..len)
                .map(|i| (i as u8).wrapping_mul(seed))
                .collect::<Vec<u8>>()
                .into(),
        )
    }

    /// A `MsgApp` whose entries mix nil, empty, small, just-too-small and
    /// large data.
    fn append(sizes: &[Option<usize>]) -> Message {
        let entries = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| Entry {
                r#type: (i % 3) as i32,
                term: 9,
                index: 1000 + i as u64,
                data: size.and_then(|len| filled(len, i as u8 + 1)),
            })
            .collect();
        Message {
            r#type: MessageType::MsgApp as i32,
            to: 2,
            from: 1,
            term: 9,
            log_term: 8,
            index: 999,
            commit: 998,
            entries,
            ..Default::default()
        }
    }

    const MIXED: [Option<usize>; 9] = [
        None,
        Some(0),
        Some(SHARE_DATA_FROM),
        Some(10),
        Some(SHARE_DATA_FROM - 1),
        Some(3 * SEND_SLICE + 5),
        None,
        Some(1 << 20),
        Some(7),
    ];

    /// The body's bytes that do not lie in `shared`'s buffers.
    fn copied_len(body: &Body, shared: &[&Bytes]) -> usize {
        let inside = |slice: &Bytes| {
            let at = slice.as_ptr() as usize;
            shared.iter().any(|data| {
                let start = data.as_ptr() as usize;
                (start..start + data.len()).contains(&at)
            })
        };
        body.slices()
            .iter()
            .filter(|s| !inside(s))
            .map(Bytes::len)
            .sum()
    }

    #[test]
    fn large_and_small_entries_encode_as_prost_does() {
        let mut m = append(&MIXED);
        for round in 0..4 {
            let body = Body::encode(&m);
            assert!(matches!(body, Body::Sliced { .. }), "round {round}");
            assert_eq!(joined(&body), m.encode_to_vec(), "round {round}");
            assert_eq!(body.len(), m.encoded_len(), "round {round}");
            assert_eq!(Message::decode(&joined(&body)[..]).unwrap(), m);
            match round {
                0 => m.context = Some(Bytes::new()),
                1 => m.snapshot = snap(SHARE_DATA_FROM + 3).snapshot,
                _ => m.snapshot.data = Some(Bytes::new()),
            }
        }
    }

    #[test]
    fn nil_and_empty_data_stay_distinct_beside_shared_data() {
        let m = append(&[None, Some(0), Some(SHARE_DATA_FROM), None, Some(0)]);
        let decoded = Message::decode(&joined(&Body::encode(&m))[..]).unwrap();
        let data: Vec<_> = decoded
            .entries
            .iter()
            .map(|e| e.data.as_ref().map(Bytes::len))
            .collect();
        assert_eq!(data, [None, Some(0), Some(SHARE_DATA_FROM), None, Some(0)]);
    }

    #[test]
    fn large_entries_are_shared_with_the_caller_not_copied() {
        let m = append(&MIXED);
        let body = Body::encode(&m);
        let large: Vec<&Bytes> = m
            .entries
            .iter()
            .filter_map(|e| e.data.as_ref())
            .filter(|data| data.len() >= SHARE_DATA_FROM)
            .collect();
        assert_eq!(large.len(), 3);
        let slices = body.slices();
        for data in &large {
            assert!(
                slices.iter().any(|s| s.as_ptr() == data.as_ptr()),
                "an entry of {} bytes was copied",
                data.len()
            );
        }
        let shared: usize = large.iter().map(|data| data.len()).sum();
        assert_eq!(copied_len(&body, &large), body.len() - shared);
    }

    #[test]
    fn small_entries_stay_in_one_buffer() {
        let m = append(&[None, Some(0), Some(10), Some(SHARE_DATA_FROM - 1)]);
        let body = Body::encode(&m);
        assert!(matches!(body, Body::Whole(_)));
        assert_eq!(
            body.into_single().map(|b| b.to_vec()).ok(),
            Some(m.encode_to_vec())
        );
    }
}

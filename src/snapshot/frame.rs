//! The snapshot frame: an 8-byte big-endian length, then the marshaled
//! `MsgSnap` (etcd's `messageEncoder` and `messageDecoder.decodeLimit`,
//! `rafthttp/msg_codec.go`). The database follows the frame until the body
//! ends.
//!
//! The encoder and the decoder live together so that the one format is
//! read and written in one place. Pure: no I/O; the decoder is fed chunks.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message as _;

use crate::etcd_text::{ERR_EXCEED_SIZE_LIMIT, GO_EOF, GO_UNEXPECTED_EOF};
use crate::raftpb::Message;

/// The length field's size: a big-endian `u64`.
const LEN_BYTES: usize = 8;

/// The most the decoder allocates up front for the message; the buffer
/// grows as bytes arrive, so a length field alone never costs the full
/// limit.
const INITIAL_MESSAGE_CAPACITY: usize = 64 * 1024;

/// The framing that goes before the database: the message's length as 8
/// big-endian bytes, then the message (etcd's `messageEncoder.encode`).
pub fn frame_head(message: &Message) -> Bytes {
    let len = message.encoded_len();
    let mut head = BytesMut::with_capacity(LEN_BYTES + len);
    head.put_u64(len as u64);
    message
        .encode(&mut head)
        .expect("BytesMut grows to fit the message");
    head.freeze()
}

/// Reads the 8-byte length at the start of a frame and checks it against
/// `limit` before anything is allocated for the message.
fn frame_len(prefix: [u8; LEN_BYTES], limit: u64) -> Result<usize, FrameError> {
    let len = u64::from_be_bytes(prefix);
    let exceeded = FrameError::LimitExceeded { len, limit };
    if len > limit {
        return Err(exceeded);
    }
    usize::try_from(len).map_err(|_| exceeded)
}

/// Why a frame could not be read. The texts are etcd's and Go's: they go
/// into the receiver's 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The length field is over the limit (etcd's `ErrExceedSizeLimit`).
    #[error("{ERR_EXCEED_SIZE_LIMIT}")]
    LimitExceeded {
        /// The length the frame announced.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The body ended before the frame's first byte, or right after the
    /// length field (Go's `io.ReadFull` on an empty read).
    #[error("{GO_EOF}")]
    Eof,
    /// The body ended inside the length field or the message.
    #[error("{GO_UNEXPECTED_EOF}")]
    UnexpectedEof,
    /// The body failed for another reason (the connection broke, or
    /// stalled); the text says which.
    #[error("{0}")]
    Read(String),
    /// The bytes are not a raft message.
    #[error("{0}")]
    Unmarshal(prost::DecodeError),
}

/// etcd's `messageDecoder.decodeLimit` as a push decoder: feed it chunks
/// until it yields the encoded message and the bytes after it.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    limit: u64,
    length: [u8; LEN_BYTES],
    have: usize,
    message: Option<(usize, BytesMut)>,
}

impl FrameDecoder {
    /// A decoder that refuses a message longer than `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        FrameDecoder {
            limit,
            length: [0; LEN_BYTES],
            have: 0,
            message: None,
        }
    }

    /// Takes the next chunk. `Some` holds the encoded message and the
    /// rest of the chunk, the start of the database; feed nothing after
    /// it. The caller decodes the message, within its own bounds.
    pub(crate) fn feed(&mut self, mut chunk: Bytes) -> Result<Option<(Bytes, Bytes)>, FrameError> {
        if self.message.is_none() {
            let take = (LEN_BYTES - self.have).min(chunk.len());
            self.length[self.have..self.have + take].copy_from_slice(&chunk[..take]);
            self.have += take;
            chunk.advance(take);
            if self.have < LEN_BYTES {
                return Ok(None);
            }
            let len = frame_len(self.length, self.limit)?;
            let buf = BytesMut::with_capacity(len.min(INITIAL_MESSAGE_CAPACITY));
            self.message = Some((len, buf));
        }
        let Some((len, buf)) = &mut self.message else {
            return Ok(None);
        };
        let take = (*len - buf.len()).min(chunk.len());
        buf.extend_from_slice(&chunk.split_to(take));
        if buf.len() < *len {
            return Ok(None);
        }
        Ok(Some((std::mem::take(buf).freeze(), chunk)))
    }

    /// The error for a body that ended before the message was complete:
    /// Go's `io.ReadFull` says `EOF` when a read got no byte at all.
    pub(crate) fn ended(&self) -> FrameError {
        let started = match &self.message {
            None => self.have > 0,
            Some((_, buf)) => !buf.is_empty(),
        };
        if started {
            FrameError::UnexpectedEof
        } else {
            FrameError::Eof
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::MessageType;
    use crate::snapshot::SNAPSHOT_LIMIT_BYTES;

    fn snap(index: u64) -> Message {
        let mut m = Message {
            r#type: MessageType::MsgSnap as i32,
            to: 2,
            from: 0x1a,
            term: 1,
            ..Default::default()
        };
        m.snapshot.metadata.index = index;
        m
    }

    /// Feeds `bytes` in chunks of `size`; the outcome and the bytes after
    /// the message.
    fn decode(bytes: &[u8], size: usize, limit: u64) -> Result<(Message, Vec<u8>), FrameError> {
        let mut decoder = FrameDecoder::new(limit);
        let mut chunks = bytes.chunks(size);
        for chunk in chunks.by_ref() {
            if let Some((m, rest)) = decoder.feed(Bytes::copy_from_slice(chunk))? {
                let m = Message::decode(m).map_err(FrameError::Unmarshal)?;
                let mut after = rest.to_vec();
                after.extend(chunks.flatten());
                return Ok((m, after));
            }
        }
        Err(decoder.ended())
    }

    // etcd's verified framing for MsgSnap{From:0x1a, To:2, Term:1} + "hello".
    #[test]
    fn frame_head_is_etcds() {
        let hex: String = frame_head(&snap(0))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "000000000000001e08071002181a20012800300040004a0a12080a0228001000180050005800"
        );
    }

    #[test]
    fn frame_len_is_capped_before_allocation() {
        assert_eq!(frame_len(30u64.to_be_bytes(), 64).unwrap(), 30);
        let err = frame_len(u64::MAX.to_be_bytes(), SNAPSHOT_LIMIT_BYTES).unwrap_err();
        assert!(matches!(err, FrameError::LimitExceeded { .. }));
    }

    #[test]
    fn frames_decode_whatever_the_chunking() {
        let mut body = frame_head(&snap(7)).to_vec();
        body.extend_from_slice(b"hello");
        for size in [1, 3, 8, 9, 30, 38, 39, 1000] {
            let (m, rest) = decode(&body, size, 1024).unwrap();
            assert_eq!(m, snap(7), "chunks of {size}");
            assert_eq!(rest, b"hello", "chunks of {size}");
        }
    }

    #[test]
    fn a_length_over_the_limit_fails_before_the_message() {
        let err = decode(&u64::MAX.to_be_bytes(), 8, SNAPSHOT_LIMIT_BYTES).unwrap_err();
        assert_eq!(err.to_string(), "rafthttp: error limit exceeded");
        let err = decode(&65u64.to_be_bytes(), 3, 64).unwrap_err();
        assert_eq!(err, FrameError::LimitExceeded { len: 65, limit: 64 });
    }

    #[test]
    fn short_bodies_fail_as_gos_read_full() {
        let head = frame_head(&snap(1));
        assert_eq!(decode(b"", 8, 64).unwrap_err().to_string(), "EOF");
        assert_eq!(
            decode(&head[..3], 8, 64).unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert_eq!(decode(&head[..8], 8, 64).unwrap_err().to_string(), "EOF");
        assert_eq!(
            decode(&head[..12], 8, 64).unwrap_err().to_string(),
            "unexpected EOF"
        );
    }

    #[test]
    fn an_empty_message_is_the_zero_message() {
        let (m, rest) = decode(&[0; 8], 8, 64).unwrap();
        assert!(!m.is_snapshot());
        assert!(rest.is_empty());
    }

    #[test]
    fn garbage_is_an_unmarshal_error() {
        let mut body = 3u64.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&body, 8, 64),
            Err(FrameError::Unmarshal(_))
        ));
    }
}

//! The message stream's codec (etcd's `messageEncoder` and
//! `messageDecoder`, `rafthttp/msg_codec.go`): every frame is the message's
//! size as 8 big-endian bytes, then the marshaled `Message`. No state
//! between frames. Pure: the encoder appends to a buffer, the decoder is
//! fed chunks.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use super::decode_error::DecodeError;
use super::input::Input;
use crate::raftpb::Message;

/// The largest message the decoder accepts: 512 MiB (etcd `readBytesLimit`,
/// `rafthttp/msg_codec.go:46`).
pub const READ_BYTES_LIMIT: u64 = 512 * 1024 * 1024;

/// The length field's size.
const LEN_BYTES: usize = 8;

/// Appends `message`'s frame to `out` (etcd's `messageEncoder.encode`).
pub(crate) fn encode_message(message: &Message, out: &mut BytesMut) {
    let len = message.encoded_len();
    out.reserve(LEN_BYTES + len);
    out.put_u64(len as u64);
    message
        .encode(out)
        .expect("the buffer was reserved for the message");
}

/// etcd's `messageDecoder.decodeLimit` as a push decoder: [`push`] chunks,
/// then take messages with [`next_message`] until it yields `None`.
///
/// [`push`]: MessageDecoder::push
/// [`next_message`]: MessageDecoder::next_message
#[derive(Debug)]
pub(crate) struct MessageDecoder {
    input: Input,
    limit: u64,
    /// The length of the frame under way, once its field was read.
    len: Option<usize>,
}

impl MessageDecoder {
    /// A decoder that refuses messages over `limit` bytes (etcd uses
    /// [`READ_BYTES_LIMIT`]).
    pub(crate) fn new(limit: u64) -> Self {
        MessageDecoder {
            input: Input::default(),
            limit,
            len: None,
        }
    }

    /// Takes the next chunk of the body.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.input.push(chunk);
    }

    /// The next complete message, `None` until more bytes arrive. A length
    /// over the limit fails as soon as its 8 bytes are here.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let len = match self.len {
            Some(len) => len,
            None => match self.input.take_u64() {
                None => return Ok(None),
                Some(len) => *self.len.insert(checked_len(len, self.limit)?),
            },
        };
        let Some(body) = self.input.take(len) else {
            return Ok(None);
        };
        self.len = None;
        Message::decode(body)
            .map(Some)
            .map_err(DecodeError::Message)
    }

    /// The error for a body that ends now (`EOF` on a field boundary,
    /// `unexpected EOF` inside one).
    pub(crate) fn ended(&self) -> DecodeError {
        self.input.ended()
    }
}

/// A length field checked against `limit` before anything is allocated.
pub(crate) fn checked_len(len: u64, limit: u64) -> Result<usize, DecodeError> {
    let exceeded = DecodeError::LimitExceeded { len, limit };
    if len > limit {
        return Err(exceeded);
    }
    usize::try_from(len).map_err(|_| exceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::MessageType;

    fn prop(data: usize) -> Message {
        Message {
            r#type: MessageType::MsgProp as i32,
            from: 1,
            to: 2,
            entries: vec![crate::raftpb::Entry {
                data: Some(Bytes::from(vec![7; data])),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn decode_all(bytes: &[u8], chunk: usize, limit: u64) -> (Vec<Message>, DecodeError) {
        let mut decoder = MessageDecoder::new(limit);
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            decoder.push(Bytes::copy_from_slice(piece));
            loop {
                match decoder.next_message() {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => break,
                    Err(e) => return (out, e),
                }
            }
        }
        (out, decoder.ended())
    }

    #[test]
    fn frames_round_trip_whatever_the_chunking() {
        let mut body = BytesMut::new();
        encode_message(&prop(3), &mut body);
        encode_message(&prop(300), &mut body);
        for chunk in [1, 2, 7, 8, 9, 40, 4096] {
            let (messages, end) = decode_all(&body, chunk, READ_BYTES_LIMIT);
            assert_eq!(messages, vec![prop(3), prop(300)], "chunks of {chunk}");
            assert_eq!(end, DecodeError::Eof);
        }
    }

    // etcd's TestMessage: with the limit at 1000 a 1010-byte MsgProp fails.
    #[test]
    fn a_message_over_the_limit_fails_on_its_length() {
        let mut body = BytesMut::new();
        encode_message(&prop(1010), &mut body);
        let (messages, end) = decode_all(&body[..8], 8, 1000);
        assert!(messages.is_empty());
        assert!(matches!(
            end,
            DecodeError::LimitExceeded { limit: 1000, .. }
        ));
        assert_eq!(end.to_string(), "rafthttp: error limit exceeded");
    }

    #[test]
    fn the_largest_length_is_refused_without_allocating() {
        let (_, end) = decode_all(&u64::MAX.to_be_bytes(), 8, READ_BYTES_LIMIT);
        assert_eq!(
            end,
            DecodeError::LimitExceeded {
                len: u64::MAX,
                limit: READ_BYTES_LIMIT
            }
        );
    }
}

//! One encoder and one decoder over both stream types, so the writer and
//! the reader hold "the codec of this connection" without caring which.

use bytes::{Bytes, BytesMut};

use super::decode_error::DecodeError;
use super::message_codec::{encode_message, MessageDecoder};
use super::msgappv2_codec::{MsgAppV2Decoder, MsgAppV2Encoder};
use super::stream_type::StreamType;
use crate::raftpb::Message;

/// A connection's encoder: a fresh one per attached connection, since the
/// msgappv2 state starts at 0/0 on both ends.
#[derive(Debug)]
pub struct StreamEncoder(Encoder);

#[derive(Debug)]
enum Encoder {
    /// The message stream's (stateless) encoder.
    Message,
    /// The msgappv2 encoder and its `{term, index}`.
    MsgAppV2(MsgAppV2Encoder),
}

impl StreamEncoder {
    /// A fresh encoder for `kind`.
    pub fn new(kind: StreamType) -> Self {
        StreamEncoder(match kind {
            StreamType::Message => Encoder::Message,
            StreamType::MsgAppV2 => Encoder::MsgAppV2(MsgAppV2Encoder::default()),
        })
    }

    /// Appends `message`'s frame to `out`.
    pub fn encode(&mut self, message: &Message, out: &mut BytesMut) {
        match &mut self.0 {
            Encoder::Message => encode_message(message, out),
            Encoder::MsgAppV2(encoder) => encoder.encode(message, out),
        }
    }

    /// The msgappv2 `{term, index}` as `(term, index)`; `None` on the
    /// message stream, which has no state.
    pub fn app_state(&self) -> Option<(u64, u64)> {
        match &self.0 {
            Encoder::Message => None,
            Encoder::MsgAppV2(encoder) => Some((encoder.state().term, encoder.state().index)),
        }
    }
}

/// A connection's decoder: feed it the body's chunks with [`push`], take
/// messages with [`next_message`]; when the body ends, [`ended`] says whether that
/// was clean.
///
/// [`push`]: StreamDecoder::push
/// [`next_message`]: StreamDecoder::next_message
/// [`ended`]: StreamDecoder::ended
#[derive(Debug)]
pub struct StreamDecoder(Decoder);

#[derive(Debug)]
enum Decoder {
    /// The message stream's decoder.
    Message(MessageDecoder),
    /// The msgappv2 decoder and its `{term, index}`.
    MsgAppV2(Box<MsgAppV2Decoder>),
}

impl StreamDecoder {
    /// A fresh decoder for the stream of `kind` from `remote` to `local`,
    /// refusing anything over `limit` bytes.
    pub fn new(kind: StreamType, local: u64, remote: u64, limit: u64) -> Self {
        StreamDecoder(match kind {
            StreamType::Message => Decoder::Message(MessageDecoder::new(limit)),
            StreamType::MsgAppV2 => {
                Decoder::MsgAppV2(Box::new(MsgAppV2Decoder::new(local, remote, limit)))
            }
        })
    }

    /// Takes the next chunk of the body (a slice of it becomes each field
    /// that lies inside it: no copy).
    pub fn push(&mut self, chunk: Bytes) {
        match &mut self.0 {
            Decoder::Message(d) => d.push(chunk),
            Decoder::MsgAppV2(d) => d.push(chunk),
        }
    }

    /// The next complete message, `None` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        match &mut self.0 {
            Decoder::Message(d) => d.next_message(),
            Decoder::MsgAppV2(d) => d.next_message(),
        }
    }

    /// The error for a body that ends now: `EOF` on a frame or field
    /// boundary, `unexpected EOF` inside one.
    pub fn ended(&self) -> DecodeError {
        match &self.0 {
            Decoder::Message(d) => d.ended(),
            Decoder::MsgAppV2(d) => d.ended(),
        }
    }

    /// The msgappv2 `{term, index}` as `(term, index)`; `None` on the
    /// message stream.
    pub fn app_state(&self) -> Option<(u64, u64)> {
        match &self.0 {
            Decoder::Message(_) => None,
            Decoder::MsgAppV2(d) => Some((d.state().term, d.state().index)),
        }
    }
}

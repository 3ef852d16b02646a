//! The msgappv2 stream's codec (etcd's `msgAppV2Encoder` and
//! `msgAppV2Decoder`, `rafthttp/msgappv2_codec.go`). Every frame starts
//! with a type byte: a link heartbeat (`00`), a full message (`02`, 8-byte
//! size, marshaled `Message`), or the compact AppEntries (`01`, 8-byte
//! entry count, each entry as 8-byte size and marshaled `Entry`, then the
//! 8-byte commit). Both ends keep `{term, index}`, 0/0 on each new
//! connection, so an AppEntries frame needs no header.
//!
//! Unlike etcd, every length is capped by the decoder's limit and nothing
//! is allocated beyond the bytes that arrived; garbage is an error, never a
//! panic.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use super::decode_error::DecodeError;
use super::input::Input;
use super::link_heartbeat::is_link_heartbeat;
use super::link_heartbeat::link_heartbeat;
use super::message_codec::checked_len;
use crate::raftpb::{Entry, Message, MessageType};

/// Frame type of a link heartbeat (etcd `msgTypeLinkHeartbeat`,
/// `rafthttp/msgappv2_codec.go:30`).
pub(crate) const MSG_TYPE_LINK_HEARTBEAT: u8 = 0;
/// Frame type of the compact AppEntries (etcd `msgTypeAppEntries`,
/// `rafthttp/msgappv2_codec.go:31`).
pub(crate) const MSG_TYPE_APP_ENTRIES: u8 = 1;
/// Frame type of a full message (etcd `msgTypeApp`,
/// `rafthttp/msgappv2_codec.go:32`).
pub(crate) const MSG_TYPE_APP: u8 = 2;

/// The `{term, index}` both ends of a msgappv2 stream track: the term and
/// last index of the appends written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AppState {
    /// The term of the last full message.
    pub(crate) term: u64,
    /// The index of the last entry written.
    pub(crate) index: u64,
}

impl AppState {
    /// What a full message sets: its term, and its last entry's index (or
    /// its `Index` when it has none).
    fn after_app(message: &Message) -> Self {
        let index = message.entries.last().map_or(message.index, |e| e.index);
        AppState {
            term: message.term,
            index,
        }
    }
}

/// etcd's `msgAppV2Encoder`: one per connection, state 0/0.
#[derive(Debug, Default)]
pub(crate) struct MsgAppV2Encoder {
    state: AppState,
}

impl MsgAppV2Encoder {
    /// The encoder's `{term, index}`.
    pub(crate) fn state(&self) -> AppState {
        self.state
    }

    /// Appends `message`'s frame to `out`, by etcd's rule: a link heartbeat
    /// is one byte; a message that follows on (`Index` is the state's index
    /// and `LogTerm` equals both the state's term and `Term`) is an
    /// AppEntries frame; anything else is sent whole and resets the state.
    pub(crate) fn encode(&mut self, message: &Message, out: &mut BytesMut) {
        if is_link_heartbeat(message) {
            out.put_u8(MSG_TYPE_LINK_HEARTBEAT);
        } else if self.follows_on(message) {
            self.encode_entries(message, out);
        } else {
            encode_app(message, out);
            self.state = AppState::after_app(message);
        }
    }

    fn follows_on(&self, m: &Message) -> bool {
        self.state.index == m.index && self.state.term == m.log_term && m.log_term == m.term
    }

    fn encode_entries(&mut self, message: &Message, out: &mut BytesMut) {
        let sizes: usize = message.entries.iter().map(|e| 8 + e.encoded_len()).sum();
        out.reserve(1 + 8 + sizes + 8);
        out.put_u8(MSG_TYPE_APP_ENTRIES);
        out.put_u64(message.entries.len() as u64);
        for entry in &message.entries {
            out.put_u64(entry.encoded_len() as u64);
            entry.encode(out).expect("the buffer was reserved");
        }
        self.state.index += message.entries.len() as u64;
        out.put_u64(message.commit);
    }
}

fn encode_app(message: &Message, out: &mut BytesMut) {
    let len = message.encoded_len();
    out.reserve(1 + 8 + len);
    out.put_u8(MSG_TYPE_APP);
    out.put_u64(len as u64);
    message.encode(out).expect("the buffer was reserved");
}

/// Where the decoder is inside a frame.
#[derive(Debug, Default)]
enum Step {
    /// Between frames: the type byte comes next.
    #[default]
    Type,
    /// A full message: its size comes next.
    AppSize,
    /// A full message of this size comes next.
    AppBody(usize),
    /// An AppEntries frame: its entry count comes next.
    EntryCount(Message),
    /// An AppEntries frame with `left` entries still to come.
    Entries(Entries),
    /// An AppEntries frame whose entries are all here: the commit comes next.
    Commit(Message),
}

/// An AppEntries frame under way.
#[derive(Debug)]
struct Entries {
    message: Message,
    left: u64,
    /// The size of the next entry, once its field was read.
    size: Option<usize>,
    /// The bytes the frame has taken so far, held to the limit.
    frame_bytes: u64,
}

/// etcd's `msgAppV2Decoder` as a push decoder, for the stream from `remote`
/// to `local`: AppEntries frames carry no ids, so they get these.
#[derive(Debug)]
pub(crate) struct MsgAppV2Decoder {
    input: Input,
    local: u64,
    remote: u64,
    limit: u64,
    state: AppState,
    step: Step,
}

impl MsgAppV2Decoder {
    /// A fresh decoder (state 0/0) that refuses any frame, message or entry
    /// over `limit` bytes.
    pub(crate) fn new(local: u64, remote: u64, limit: u64) -> Self {
        MsgAppV2Decoder {
            input: Input::default(),
            local,
            remote,
            limit,
            state: AppState::default(),
            step: Step::Type,
        }
    }

    /// The decoder's `{term, index}`.
    pub(crate) fn state(&self) -> AppState {
        self.state
    }

    /// Takes the next chunk of the body.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.input.push(chunk);
    }

    /// The error for a body that ends now.
    pub(crate) fn ended(&self) -> DecodeError {
        self.input.ended()
    }

    /// The next complete message, `None` until more bytes arrive.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        loop {
            let step = std::mem::take(&mut self.step);
            match self.advance(step)? {
                Advance::Done(message) => return Ok(Some(message)),
                Advance::Wait(step) => {
                    self.step = step;
                    return Ok(None);
                }
                Advance::Next(step) => self.step = step,
            }
        }
    }

    fn advance(&mut self, step: Step) -> Result<Advance, DecodeError> {
        match step {
            Step::Type => self.read_type(),
            Step::AppSize => Ok(match self.input.take_u64() {
                None => Advance::Wait(Step::AppSize),
                Some(len) => Advance::Next(Step::AppBody(checked_len(len, self.limit)?)),
            }),
            Step::AppBody(len) => self.read_app(len),
            Step::EntryCount(message) => self.read_count(message),
            Step::Entries(entries) => self.read_entry(entries),
            Step::Commit(mut message) => Ok(match self.input.take_u64() {
                None => Advance::Wait(Step::Commit(message)),
                Some(commit) => {
                    message.commit = commit;
                    Advance::Done(message)
                }
            }),
        }
    }

    fn read_type(&mut self) -> Result<Advance, DecodeError> {
        let Some(kind) = self.input.take_u8() else {
            return Ok(Advance::Wait(Step::Type));
        };
        match kind {
            MSG_TYPE_LINK_HEARTBEAT => Ok(Advance::Done(link_heartbeat())),
            MSG_TYPE_APP_ENTRIES => Ok(Advance::Next(Step::EntryCount(self.compact_app()))),
            MSG_TYPE_APP => Ok(Advance::Next(Step::AppSize)),
            other => Err(DecodeError::UnknownType(other)),
        }
    }

    /// The message an AppEntries frame stands for, before its entries.
    fn compact_app(&self) -> Message {
        Message {
            r#type: MessageType::MsgApp as i32,
            from: self.remote,
            to: self.local,
            term: self.state.term,
            log_term: self.state.term,
            index: self.state.index,
            ..Default::default()
        }
    }

    fn read_app(&mut self, len: usize) -> Result<Advance, DecodeError> {
        let Some(body) = self.input.take(len) else {
            return Ok(Advance::Wait(Step::AppBody(len)));
        };
        let message = Message::decode(body).map_err(DecodeError::Message)?;
        self.state = AppState::after_app(&message);
        Ok(Advance::Done(message))
    }

    fn read_count(&mut self, message: Message) -> Result<Advance, DecodeError> {
        let Some(count) = self.input.take_u64() else {
            return Ok(Advance::Wait(Step::EntryCount(message)));
        };
        // The type, the count, a size field per entry and the commit: the
        // least the frame can take, held to the limit before it is read.
        let least = count.saturating_mul(8).saturating_add(17);
        if least > self.limit {
            return Err(DecodeError::LimitExceeded {
                len: least,
                limit: self.limit,
            });
        }
        Ok(Advance::Next(Step::Entries(Entries {
            message,
            left: count,
            size: None,
            frame_bytes: 9,
        })))
    }

    fn read_entry(&mut self, mut entries: Entries) -> Result<Advance, DecodeError> {
        if entries.left == 0 {
            return Ok(Advance::Next(Step::Commit(entries.message)));
        }
        let size = match entries.size {
            Some(size) => size,
            None => match self.input.take_u64() {
                None => return Ok(Advance::Wait(Step::Entries(entries))),
                Some(size) => {
                    let total = entries.frame_bytes.saturating_add(8).saturating_add(size);
                    checked_len(total, self.limit)?;
                    entries.frame_bytes = total;
                    *entries.size.insert(size as usize)
                }
            },
        };
        let Some(bytes) = self.input.take(size) else {
            return Ok(Advance::Wait(Step::Entries(entries)));
        };
        let entry = Entry::decode(bytes).map_err(DecodeError::Entry)?;
        entries.message.entries.push(entry);
        entries.left -= 1;
        entries.size = None;
        self.state.index += 1;
        Ok(Advance::Next(Step::Entries(entries)))
    }
}

/// What one step of the decoder came to.
enum Advance {
    /// A message is complete.
    Done(Message),
    /// More bytes are needed to go on from this step.
    Wait(Step),
    /// Go on with this step.
    Next(Step),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::message_codec::READ_BYTES_LIMIT;

    fn app(term: u64, log_term: u64, index: u64, entries: &[(u64, u64)]) -> Message {
        Message {
            r#type: MessageType::MsgApp as i32,
            from: 1,
            to: 2,
            term,
            log_term,
            index,
            commit: index,
            entries: entries
                .iter()
                .map(|&(term, index)| Entry {
                    term,
                    index,
                    data: Some(Bytes::from_static(b"x")),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn decode_all(decoder: &mut MsgAppV2Decoder, bytes: &[u8], chunk: usize) -> Vec<Message> {
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            decoder.push(Bytes::copy_from_slice(piece));
            while let Some(m) = decoder.next_message().expect("decodes") {
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn consecutive_appends_are_compact_and_round_trip() {
        let sent = [
            app(2, 2, 5, &[(2, 6)]),
            app(2, 2, 6, &[(2, 7), (2, 8)]),
            link_heartbeat(),
            app(2, 2, 8, &[]),
            app(3, 2, 8, &[(3, 9)]),
        ];
        let mut encoder = MsgAppV2Encoder::default();
        let mut body = BytesMut::new();
        let mut kinds = Vec::new();
        for m in &sent {
            let start = body.len();
            encoder.encode(m, &mut body);
            kinds.push(body[start]);
        }
        assert_eq!(kinds, [2, 1, 0, 1, 2]);
        assert_eq!(encoder.state(), AppState { term: 3, index: 9 });
        for chunk in [1, 3, 9, 17, 1000] {
            let mut decoder = MsgAppV2Decoder::new(2, 1, READ_BYTES_LIMIT);
            let got = decode_all(&mut decoder, &body, chunk);
            assert_eq!(got, sent, "chunks of {chunk}");
            assert_eq!(decoder.state(), encoder.state());
            assert_eq!(decoder.ended(), DecodeError::Eof);
        }
    }

    #[test]
    fn an_entry_count_beyond_the_limit_fails_before_any_entry() {
        let mut decoder = MsgAppV2Decoder::new(2, 1, 1000);
        let mut frame = vec![MSG_TYPE_APP_ENTRIES];
        frame.extend_from_slice(&200u64.to_be_bytes());
        decoder.push(Bytes::from(frame));
        assert!(matches!(
            decoder.next_message(),
            Err(DecodeError::LimitExceeded { limit: 1000, .. })
        ));
    }

    #[test]
    fn entries_adding_up_beyond_the_limit_fail() {
        let mut decoder = MsgAppV2Decoder::new(2, 1, 70);
        let mut frame = vec![MSG_TYPE_APP_ENTRIES];
        frame.extend_from_slice(&2u64.to_be_bytes());
        frame.extend_from_slice(&60u64.to_be_bytes());
        decoder.push(Bytes::from(frame));
        assert!(matches!(
            decoder.next_message(),
            Err(DecodeError::LimitExceeded { len: 77, .. })
        ));
    }
}

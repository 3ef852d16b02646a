//! The bytes a stream decoder has received but not yet used, read field by
//! field the way Go's `io.ReadFull` reads them.
//!
//! Chunks are kept as they arrived (`Bytes`), so a field that lies inside
//! one chunk is a slice of it, never a copy; only a field that spans chunks
//! is gathered, into a buffer sized by the bytes already here. Nothing is
//! ever reserved from a length prefix alone.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::decode_error::DecodeError;

/// Received, unread stream bytes.
#[derive(Debug, Default)]
pub(crate) struct Input {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Input {
    /// Appends a chunk of the response body.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The next `n` bytes, once that many have arrived.
    pub(crate) fn take(&mut self, n: usize) -> Option<Bytes> {
        if self.len < n {
            return None;
        }
        if n == 0 {
            return Some(Bytes::new());
        }
        self.len -= n;
        let front = self.chunks.front_mut()?;
        if front.len() >= n {
            let field = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return Some(field);
        }
        Some(self.gather(n))
    }

    /// Copies a field that spans chunks; `n` bytes are known to be here.
    fn gather(&mut self, n: usize) -> Bytes {
        let mut field = BytesMut::with_capacity(n);
        while field.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let take = (n - field.len()).min(front.len());
            field.extend_from_slice(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        field.freeze()
    }

    /// The next byte, once it has arrived.
    pub(crate) fn take_u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next big-endian `u64`, once its 8 bytes have arrived.
    pub(crate) fn take_u64(&mut self) -> Option<u64> {
        self.take(8).map(|mut b| b.get_u64())
    }

    /// Why the stream cannot go on if the body ends now: Go's `io.ReadFull`
    /// says `EOF` when a read gets no byte at all (the body ended on a field
    /// boundary) and `unexpected EOF` when it ended inside a field.
    pub(crate) fn ended(&self) -> DecodeError {
        if self.len == 0 {
            DecodeError::Eof
        } else {
            DecodeError::UnexpectedEof
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(chunks: &[&'static [u8]]) -> Input {
        let mut input = Input::default();
        for chunk in chunks {
            input.push(Bytes::from_static(chunk));
        }
        input
    }

    #[test]
    fn a_field_inside_one_chunk_is_a_slice_of_it() {
        let chunk = Bytes::from_static(b"abcdef");
        let mut input = Input::default();
        input.push(chunk.clone());
        let field = input.take(4).unwrap();
        assert_eq!(field.as_ptr(), chunk.as_ptr());
        assert_eq!(&input.take(2).unwrap()[..], b"ef");
    }

    #[test]
    fn a_field_across_chunks_is_gathered_in_order() {
        let mut input = input(&[b"ab", b"", b"cd", b"efg"]);
        assert_eq!(&input.take(5).unwrap()[..], b"abcde");
        assert_eq!(&input.take(2).unwrap()[..], b"fg");
        assert_eq!(input.take(1), None);
    }

    #[test]
    fn an_empty_field_is_there_without_any_byte() {
        assert_eq!(Input::default().take(0), Some(Bytes::new()));
    }

    #[test]
    fn a_field_waits_for_all_its_bytes() {
        let mut input = input(&[&[0, 0, 0]]);
        assert_eq!(input.take_u64(), None);
        assert_eq!(input.ended(), DecodeError::UnexpectedEof);
        input.push(Bytes::from_static(&[0, 0, 0, 0, 7]));
        assert_eq!(input.take_u64(), Some(7));
        assert_eq!(input.ended(), DecodeError::Eof);
    }
}

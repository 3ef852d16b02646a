//! A body gathered as it arrives, without growing a buffer: the chunks the
//! HTTP layer hands over are kept as they are (small ones are packed
//! together first), each charged to the request's lease, and joined once
//! at the end. Pure: bytes only.
//!
//! A buffer that doubles as bytes arrive copies a body about twice and
//! touches about three times its size in fresh pages; for a 1 MiB body the
//! receiver spent most of its time in page faults. Gathered, a body costs
//! one copy into a buffer of exactly its size (none when it came in one
//! chunk), and never more memory than it has received, plus the join.

use bytes::{Bytes, BytesMut};

use super::budget::{Exhausted, Lease};

/// A chunk smaller than this is packed with its neighbours instead of
/// being kept on its own, so a body sent in tiny chunks (a byte each, say)
/// costs a few parts per 4 KiB, not one per chunk.
const SMALL_CHUNK: usize = 4 * 1024;

/// The chunks of one body so far.
#[derive(Debug, Default)]
pub(crate) struct Gather {
    parts: Vec<Bytes>,
    small: BytesMut,
    len: usize,
}

impl Gather {
    /// The bytes gathered so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Keeps `chunk`, charged to `lease` first.
    pub(crate) fn push(&mut self, chunk: Bytes, lease: &mut Lease) -> Result<(), Exhausted> {
        lease.grow(chunk.len())?;
        self.len += chunk.len();
        if chunk.len() >= SMALL_CHUNK {
            self.pack_small();
            self.parts.push(chunk);
            return Ok(());
        }
        self.small.extend_from_slice(&chunk);
        if self.small.len() >= SMALL_CHUNK {
            self.pack_small();
        }
        Ok(())
    }

    /// The whole body as one buffer: its only part as it is, or every part
    /// copied once into a buffer of exactly the body's size, charged to
    /// `lease` while both are held.
    pub(crate) fn finish(mut self, lease: &mut Lease) -> Result<Bytes, Exhausted> {
        self.pack_small();
        if self.parts.len() <= 1 {
            return Ok(self.parts.pop().unwrap_or_default());
        }
        lease.grow(self.len)?;
        let mut whole = BytesMut::with_capacity(self.len);
        for part in self.parts.drain(..) {
            whole.extend_from_slice(&part);
        }
        lease.shrink(self.len);
        Ok(whole.freeze())
    }

    /// Moves the packed small chunks into a part of their own.
    fn pack_small(&mut self) {
        if !self.small.is_empty() {
            self.parts.push(self.small.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::budget::MemoryBudget;
    use super::*;

    fn gathered(chunks: &[&[u8]]) -> (Bytes, usize) {
        let budget = MemoryBudget::new(Default::default(), 1 << 20);
        let mut lease = budget.lease();
        let mut body = Gather::default();
        for chunk in chunks {
            body.push(Bytes::copy_from_slice(chunk), &mut lease)
                .unwrap();
        }
        let parts = body.parts.len() + usize::from(!body.small.is_empty());
        (body.finish(&mut lease).unwrap(), parts)
    }

    #[test]
    fn chunks_come_out_joined_in_order() {
        let big = vec![7u8; SMALL_CHUNK];
        let (whole, _) = gathered(&[b"ab", &big, b"c", b"", &big, b"de"]);
        let mut want = b"ab".to_vec();
        want.extend_from_slice(&big);
        want.push(b'c');
        want.extend_from_slice(&big);
        want.extend_from_slice(b"de");
        assert_eq!(whole, want);
    }

    #[test]
    fn a_body_in_one_chunk_is_not_copied() {
        let budget = MemoryBudget::new(Default::default(), 1 << 20);
        let mut lease = budget.lease();
        let chunk = Bytes::from(vec![1u8; 64 * 1024]);
        let mut body = Gather::default();
        body.push(chunk.clone(), &mut lease).unwrap();
        let whole = body.finish(&mut lease).unwrap();
        assert_eq!(whole.as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn tiny_chunks_are_packed_into_few_parts() {
        let bytes: Vec<&[u8]> = std::iter::repeat_n(&b"x"[..], 3 * SMALL_CHUNK).collect();
        let (whole, parts) = gathered(&bytes);
        assert_eq!(whole.len(), 3 * SMALL_CHUNK);
        assert!(parts <= 3, "{parts} parts");
    }

    #[test]
    fn every_byte_is_charged_before_it_is_kept() {
        let budget = MemoryBudget::new(Default::default(), 10);
        let mut lease = budget.lease();
        let mut body = Gather::default();
        body.push(Bytes::from_static(b"12345678"), &mut lease)
            .unwrap();
        assert!(body.push(Bytes::from_static(b"abc"), &mut lease).is_err());
        assert_eq!(body.len(), 8);
    }
}

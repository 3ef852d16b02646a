//! The raft-rs fields etcd 3.4's `raftpb` has no field for, packed into a
//! field etcd 3.4 never reads for that message (the design is in the
//! [module docs](super)).
//!
//! A packed slot is [`MAGIC`] followed by an [`Extension`] in protobuf.
//! The slot's own content, if any, travels inside as `displaced` and is
//! put back on unpacking, so packing loses nothing.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

/// What a packed slot starts with. Its NUL bytes keep it apart from any
/// text a slot may hold; a slot that happens to start with it is packed
/// too (with nothing but `displaced`), so unpacking is never ambiguous.
pub(crate) const MAGIC: &[u8] = b"\0raft-rs\0";

/// raft-rs's fields of one message that `raftpb` cannot hold.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct Extension {
    /// `Message.commit_term` (raft-rs tag 15).
    #[prost(uint64, tag = "1")]
    pub(crate) commit_term: u64,
    /// `Message.request_snapshot` (raft-rs tag 13).
    #[prost(uint64, tag = "2")]
    pub(crate) request_snapshot: u64,
    /// `Message.deprecated_priority` (raft-rs tag 14).
    #[prost(uint64, tag = "3")]
    pub(crate) deprecated_priority: u64,
    /// `Message.priority` (raft-rs tag 16).
    #[prost(int64, tag = "4")]
    pub(crate) priority: i64,
    /// The entries whose raft-rs-only fields are set.
    #[prost(message, repeated, tag = "5")]
    pub(crate) entries: Vec<EntryExtension>,
    /// What the slot held before it was packed.
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub(crate) displaced: Option<Bytes>,
}

/// raft-rs's fields of one entry that `raftpb.Entry` cannot hold.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct EntryExtension {
    /// The entry's position in `Message.entries`.
    #[prost(uint32, tag = "1")]
    pub(crate) position: u32,
    /// `Entry.context` (raft-rs tag 6).
    #[prost(bytes = "bytes", tag = "2")]
    pub(crate) context: Bytes,
    /// `Entry.sync_log` (raft-rs tag 5, deprecated).
    #[prost(bool, tag = "3")]
    pub(crate) sync_log: bool,
}

impl Extension {
    /// Whether any raft-rs-only field is set.
    fn has_fields(&self) -> bool {
        self.commit_term != 0
            || self.request_snapshot != 0
            || self.deprecated_priority != 0
            || self.priority != 0
            || !self.entries.is_empty()
    }

    /// The slot's content: `slot` alone (`None` when empty) while no
    /// raft-rs-only field is set, so the message stays byte-identical to
    /// etcd's; otherwise [`MAGIC`] and the extension, `slot` inside.
    pub(crate) fn pack(mut self, slot: Bytes) -> Option<Bytes> {
        if !self.has_fields() && !slot.starts_with(MAGIC) {
            return Some(slot).filter(|s| !s.is_empty());
        }
        self.displaced = Some(slot).filter(|s| !s.is_empty());
        let mut packed = BytesMut::with_capacity(MAGIC.len() + self.encoded_len());
        packed.put_slice(MAGIC);
        self.encode(&mut packed)
            .expect("BytesMut grows to fit the extension");
        Some(packed.freeze())
    }

    /// The extension packed in `slot` and the slot's own content; a slot
    /// without [`MAGIC`] is all content and carries no extension.
    pub(crate) fn unpack(slot: Option<Bytes>) -> Result<(Extension, Bytes), prost::DecodeError> {
        let slot = slot.unwrap_or_default();
        if !slot.starts_with(MAGIC) {
            return Ok((Extension::default(), slot));
        }
        let mut extension = Extension::decode(slot.slice(MAGIC.len()..))?;
        let displaced = extension.displaced.take().unwrap_or_default();
        Ok((extension, displaced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Extension {
        Extension {
            commit_term: 7,
            priority: -3,
            ..Default::default()
        }
    }

    #[test]
    fn nothing_to_carry_leaves_the_slot_as_it_was() {
        assert_eq!(Extension::default().pack(Bytes::new()), None);
        let text = Bytes::from_static(b"CampaignTransfer");
        assert_eq!(Extension::default().pack(text.clone()), Some(text));
    }

    #[test]
    fn fields_and_the_slot_come_back() {
        for slot in [Bytes::new(), Bytes::from_static(b"ctx")] {
            let packed = fields().pack(slot.clone());
            assert!(packed.as_ref().unwrap().starts_with(MAGIC));
            let (extension, back) = Extension::unpack(packed).unwrap();
            assert_eq!((extension, back), (fields(), slot));
        }
    }

    #[test]
    fn a_slot_that_looks_packed_is_packed_so_it_comes_back() {
        let tricky = Bytes::from([MAGIC, b"\xff\xff"].concat());
        let packed = Extension::default().pack(tricky.clone());
        assert_ne!(packed.as_ref(), Some(&tricky));
        let (extension, back) = Extension::unpack(packed).unwrap();
        assert_eq!((extension, back), (Extension::default(), tricky));
    }

    #[test]
    fn a_plain_slot_is_content() {
        let (extension, back) = Extension::unpack(Some(Bytes::from_static(b"x"))).unwrap();
        assert_eq!((extension, &back[..]), (Extension::default(), &b"x"[..]));
        let (_, none) = Extension::unpack(None).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_malformed_extension_is_an_error_not_a_panic() {
        let bad = Bytes::from([MAGIC, b"\x0a\xff\xff\xff\xff\x0f"].concat());
        assert!(Extension::unpack(Some(bad)).is_err());
    }
}

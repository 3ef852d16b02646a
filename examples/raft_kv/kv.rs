//! The key-value state machine and the raft-rs storage that snapshots it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::prelude::*;
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, StorageError};

/// A put as a log entry: who proposed it (to answer the client), and the
/// key and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    pub origin: u64,
    pub request: u64,
    pub key: String,
    pub value: String,
}

impl Put {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u64(self.origin);
        out.put_u64(self.request);
        put_str(&mut out, &self.key);
        put_str(&mut out, &self.value);
        out.to_vec()
    }

    pub fn decode(mut data: &[u8]) -> Option<Put> {
        if data.remaining() < 16 {
            return None;
        }
        let (origin, request) = (data.get_u64(), data.get_u64());
        let key = get_str(&mut data)?;
        let value = get_str(&mut data)?;
        Some(Put {
            origin,
            request,
            key,
            value,
        })
    }
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_u32(s.len() as u32);
    out.put_slice(s.as_bytes());
}

fn get_str(data: &mut &[u8]) -> Option<String> {
    if data.remaining() < 4 {
        return None;
    }
    let len = data.get_u32() as usize;
    if data.remaining() < len {
        return None;
    }
    let s = String::from_utf8(data[..len].to_vec()).ok()?;
    data.advance(len);
    Some(s)
}

/// The map and the last raft index applied to it.
#[derive(Debug, Default)]
pub struct Kv {
    pub map: BTreeMap<String, String>,
    pub applied: u64,
}

impl Kv {
    /// The whole map as snapshot data.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        for (k, v) in &self.map {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        out.freeze()
    }

    /// Replaces the map with a snapshot's.
    pub fn restore(&mut self, mut data: &[u8], index: u64) {
        self.map.clear();
        while data.has_remaining() {
            let (Some(k), Some(v)) = (get_str(&mut data), get_str(&mut data)) else {
                panic!("corrupt snapshot data at index {index}");
            };
            self.map.insert(k, v);
        }
        self.applied = index;
    }
}

/// raft-rs's in-memory log, whose snapshots carry the map at the applied
/// index (raft-rs's `MemStorage` alone snapshots no data).
pub struct KvStorage {
    pub mem: MemStorage,
    pub kv: Rc<RefCell<Kv>>,
}

impl Storage for KvStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let kv = self.kv.borrow();
        if kv.applied < request_index {
            let unavailable = StorageError::SnapshotTemporarilyUnavailable;
            return Err(raft::Error::Store(unavailable));
        }
        let mut meta = SnapshotMetadata {
            index: kv.applied,
            term: self.mem.term(kv.applied)?,
            ..Default::default()
        };
        meta.set_conf_state(self.mem.initial_state()?.conf_state);
        let mut snapshot = Snapshot {
            data: kv.encode(),
            ..Default::default()
        };
        snapshot.set_metadata(meta);
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_and_maps_round_trip() {
        let put = Put {
            origin: 1,
            request: 2,
            key: "k".into(),
            value: "v".into(),
        };
        assert_eq!(Put::decode(&put.encode()), Some(put));
        assert_eq!(Put::decode(b"short"), None);
        let mut kv = Kv::default();
        kv.map.insert("a".into(), "1".into());
        let mut back = Kv::default();
        back.restore(&kv.encode(), 7);
        assert_eq!((back.map, back.applied), (kv.map, 7));
    }
}

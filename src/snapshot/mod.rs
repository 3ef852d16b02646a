//! Streamed snapshots on the wire: etcd's `POST /raft/snapshot` body
//! (`rafthttp/snapshot_sender.go:193-209`), an 8-byte big-endian length,
//! the marshaled `MsgSnap`, then the raw database bytes until the stream
//! ends.
//!
//! The frame's encoder and decoder are in one place (etcd's
//! `msg_codec.go`); the sending side wraps the database so that it yields
//! exactly its declared size, as etcd's `ExactReadCloser` does. The
//! receiving side is [`receiver`](crate::receiver).

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

mod exact;
mod frame;

pub(crate) use exact::ExactBody;
pub use frame::frame_head;
pub(crate) use frame::{FrameDecoder, FrameError};

/// A snapshot's database, as a stream of chunks. It must be `Send` to travel
/// in an actor message.
pub type SnapshotBody = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The largest framed message a receiver accepts before the database
/// (etcd 3.6.14's `snapshotLimitByte`, `rafthttp/http.go`): 64 MiB.
pub const SNAPSHOT_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

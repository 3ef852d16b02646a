//! Where a streamed snapshot's database comes from: bytes in memory, or a
//! reader such as a file. Both give a [`SnapshotBody`] of
//! [`SNAPSHOT_CHUNK_BYTES`] chunks, and a [`SendSnapshot`] ready to send.
//!
//! The chunks are small on purpose: the pipeline's stall timeout
//! ([`PipelineConfig::snapshot_stall_timeout`](crate::PipelineConfig))
//! counts progress per chunk, so one huge chunk on a slow link could look
//! like a stall.

use std::io::{self, Read};

use bytes::{Bytes, BytesMut};

use crate::messages::SendSnapshot;
use crate::raftpb::Message as RaftMessage;
use crate::snapshot::SnapshotBody;

/// The size of the chunks a body is cut into: 64 KiB.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;

/// A body that yields `data` in chunks; no byte is copied (each chunk is a
/// slice of `data`).
pub fn body_from_bytes(data: Bytes) -> SnapshotBody {
    let chunks = (0..data.len())
        .step_by(SNAPSHOT_CHUNK_BYTES)
        .map(move |start| {
            let end = (start + SNAPSHOT_CHUNK_BYTES).min(data.len());
            Ok(data.slice(start..end))
        });
    Box::pin(futures::stream::iter(chunks.collect::<Vec<_>>()))
}

/// A body that reads `reader` to its end, one chunk at a time on the
/// blocking thread pool, so a file read never stalls the sender's thread.
/// A read error ends the body with that error, which fails the send.
pub fn body_from_reader<R: Read + Send + 'static>(reader: R) -> SnapshotBody {
    Box::pin(futures::stream::unfold(Some(reader), |reader| async move {
        let reader = reader?;
        let read = actix_web::rt::task::spawn_blocking(move || read_chunk(reader)).await;
        match read.unwrap_or_else(|join| Err(io::Error::other(join))) {
            Ok((_, chunk)) if chunk.is_empty() => None,
            Ok((reader, chunk)) => Some((Ok(chunk), Some(reader))),
            Err(err) => Some((Err(err), None)),
        }
    }))
}

/// Reads up to [`SNAPSHOT_CHUNK_BYTES`]; an empty chunk means the end.
fn read_chunk<R: Read>(mut reader: R) -> io::Result<(R, Bytes)> {
    let mut chunk = BytesMut::zeroed(SNAPSHOT_CHUNK_BYTES);
    let mut filled = 0;
    while filled < chunk.len() {
        match reader.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    chunk.truncate(filled);
    Ok((reader, chunk.freeze()))
}

impl SendSnapshot {
    /// A snapshot whose database is `data`, held in memory: `message` (a
    /// `MsgSnap`) and `data` streamed in chunks.
    pub fn from_bytes(message: RaftMessage, data: Bytes) -> Self {
        let size = data.len() as u64;
        SendSnapshot {
            message,
            body: body_from_bytes(data),
            size,
        }
    }

    /// A snapshot whose database is read from `reader`, which must yield
    /// exactly `size` bytes (e.g. a file and its length); a body that ends
    /// early or runs long fails the send, as etcd's does.
    pub fn from_reader<R: Read + Send + 'static>(
        message: RaftMessage,
        reader: R,
        size: u64,
    ) -> Self {
        SendSnapshot {
            message,
            body: body_from_reader(reader),
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn collect(body: SnapshotBody) -> Vec<Bytes> {
        futures::executor::block_on(body.map(|c| c.expect("no error")).collect())
    }

    #[test]
    fn bytes_are_cut_into_chunks_without_copying() {
        let data = Bytes::from(vec![7u8; 2 * SNAPSHOT_CHUNK_BYTES + 10]);
        let chunks = collect(body_from_bytes(data.clone()));
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [SNAPSHOT_CHUNK_BYTES, SNAPSHOT_CHUNK_BYTES, 10]);
        assert_eq!(chunks[0].as_ptr(), data.as_ptr(), "a slice, not a copy");
        assert!(collect(body_from_bytes(Bytes::new())).is_empty());
    }

    #[test]
    fn a_chunk_is_read_to_its_end_across_short_reads() {
        /// Yields one byte per read, as a slow pipe may.
        struct Trickle(usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                self.0 -= 1;
                buf[0] = 1;
                Ok(1)
            }
        }
        let (_, chunk) = read_chunk(Trickle(SNAPSHOT_CHUNK_BYTES + 3)).unwrap();
        assert_eq!(chunk.len(), SNAPSHOT_CHUNK_BYTES);
        let (_, last) = read_chunk(Trickle(3)).unwrap();
        assert_eq!(last.len(), 3);
    }
}

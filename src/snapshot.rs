//! Streamed snapshots: etcd's `POST /raft/snapshot` framing
//! (`rafthttp/snapshot_sender.go:193-209`, `rafthttp/msg_codec.go`) and the
//! exact-size body etcd's `ExactReadCloser` enforces
//! (`pkg/ioutil/readcloser.go:36-66`).
//!
//! The body is an 8-byte big-endian length, the marshaled `MsgSnap`, then
//! the raw database bytes until the stream ends.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use prost::Message as _;

use crate::error::Error;
use crate::raftpb::Message;

/// A snapshot's database, as a stream of chunks. It must be `Send` to travel
/// in an actor message.
pub type SnapshotBody = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The largest framed message a receiver accepts before the database
/// (etcd 3.6.14's `snapshotLimitByte`, `rafthttp/http.go`): 64 MiB.
pub const SNAPSHOT_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The framing that goes before the database: the message's length as 8
/// big-endian bytes, then the message (etcd's `messageEncoder.encode`).
pub fn frame_head(message: &Message) -> Bytes {
    let len = message.encoded_len();
    let mut head = BytesMut::with_capacity(8 + len);
    head.put_u64(len as u64);
    message
        .encode(&mut head)
        .expect("BytesMut grows to fit the message");
    head.freeze()
}

/// Reads the 8-byte length at the start of a snapshot body and checks it
/// against `limit` before anything is allocated for the message.
pub fn frame_len(prefix: [u8; 8], limit: u64) -> Result<usize, Error> {
    let len = u64::from_be_bytes(prefix);
    if len > limit {
        return Err(Error::SnapshotTooLarge { len, limit });
    }
    usize::try_from(len).map_err(|_| Error::SnapshotTooLarge { len, limit })
}

/// Wraps a database stream: yields exactly `size` bytes or fails, and
/// records when bytes last moved, for the stall timeout.
pub struct ExactBody {
    inner: SnapshotBody,
    remaining: u64,
    progress: Rc<Cell<Instant>>,
    failure: Rc<Cell<Option<Error>>>,
    finished: bool,
}

impl std::fmt::Debug for ExactBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactBody")
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl ExactBody {
    /// Wraps `inner`, which must yield exactly `size` bytes. `progress`
    /// is set to now whenever a chunk passes; `failure` receives the
    /// reason when the size is wrong or the stream fails.
    pub fn new(
        inner: SnapshotBody,
        size: u64,
        progress: Rc<Cell<Instant>>,
        failure: Rc<Cell<Option<Error>>>,
    ) -> Self {
        ExactBody {
            inner,
            remaining: size,
            progress,
            failure,
            finished: false,
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Bytes, Error>>> {
        self.finished = true;
        self.failure.set(Some(err.clone()));
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for ExactBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) if self.remaining > 0 => self.fail(Error::ShortRead),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                self.fail(Error::transport("failed to read the snapshot database", e))
            }
            Poll::Ready(Some(Ok(chunk))) if chunk.len() as u64 > self.remaining => {
                self.fail(Error::ExpectEof)
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining -= chunk.len() as u64;
                self.progress.set(Instant::now());
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::MessageType;
    use futures::StreamExt;

    fn body(chunks: &[&'static [u8]]) -> SnapshotBody {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures::stream::iter(chunks))
    }

    fn exact(chunks: &[&'static [u8]], size: u64) -> (Vec<Result<Bytes, Error>>, Option<Error>) {
        let failure = Rc::new(Cell::new(None));
        let stream = ExactBody::new(
            body(chunks),
            size,
            Rc::new(Cell::new(Instant::now())),
            failure.clone(),
        );
        let items = futures::executor::block_on(stream.collect::<Vec<_>>());
        (items, failure.take())
    }

    // etcd's verified framing for MsgSnap{From:0x1a, To:2, Term:1} + "hello".
    #[test]
    fn frame_head_is_etcds() {
        let m = Message {
            r#type: MessageType::MsgSnap as i32,
            to: 2,
            from: 0x1a,
            term: 1,
            ..Default::default()
        };
        let hex: String = frame_head(&m).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "000000000000001e08071002181a20012800300040004a0a12080a0228001000180050005800"
        );
    }

    #[test]
    fn frame_len_is_capped_before_allocation() {
        assert_eq!(frame_len(30u64.to_be_bytes(), 64).unwrap(), 30);
        let err = frame_len(u64::MAX.to_be_bytes(), SNAPSHOT_LIMIT_BYTES).unwrap_err();
        assert!(matches!(err, Error::SnapshotTooLarge { .. }));
    }

    // etcd TestSnapshotSend cases (a), (c) and (d).
    #[test]
    fn exact_body_passes_the_declared_size() {
        let (items, failure) = exact(&[b"hel", b"lo"], 5);
        assert_eq!(items.len(), 2);
        assert!(failure.is_none());
    }

    #[test]
    fn exact_body_fails_a_short_stream() {
        let (items, failure) = exact(&[b"hello"], 10_000);
        assert!(matches!(items.last(), Some(Err(Error::ShortRead))));
        assert_eq!(failure, Some(Error::ShortRead));
    }

    #[test]
    fn exact_body_fails_a_long_stream() {
        let (_, failure) = exact(&[b"hello"], 1);
        assert_eq!(failure, Some(Error::ExpectEof));
        assert_eq!(Error::ExpectEof.to_string(), "ioutil: expect EOF");
        assert_eq!(Error::ShortRead.to_string(), "ioutil: short read");
    }
}

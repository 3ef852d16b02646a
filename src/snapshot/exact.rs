//! The exact-size database body etcd's `ExactReadCloser` enforces
//! (`pkg/ioutil/readcloser.go:36-66`), for the sending side.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::Stream;

use super::SnapshotBody;
use crate::error::Error;

/// Wraps a database stream: yields exactly `size` bytes or fails, and
/// records when bytes last moved, for the stall timeout.
pub(crate) struct ExactBody {
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
    pub(crate) fn new(
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

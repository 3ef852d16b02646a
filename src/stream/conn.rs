//! One attached stream connection as the writer sees it: the sending end of
//! a bounded channel whose receiving end is the HTTP response body.
//!
//! When actix-web drops the body (the reader went away, or the writer let
//! the connection go), the body hands every chunk it had not yet written
//! back to its writer, so the messages in them are reported, not lost.
//! When the connection broke (the body was dropped before its end), the
//! messages of the chunks it handed to the socket most recently, up to
//! [`HANDED_BYTES`], are reported too: they may sit unread in a socket
//! buffer of either side. A message can then be reported and delivered
//! both (at least once, as a pipeline's at stop), never lost unreported
//! unless more than [`HANDED_BYTES`] were in the sockets.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix::prelude::*;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::Stream;

/// How many encoded chunks may wait between the writer and the socket.
/// Small: the writer's own queue is where messages wait, bounded and
/// accounted for.
pub(crate) const CONN_CHUNKS: usize = 4;

/// How many of the bytes handed to the socket last a broken connection
/// reports the messages of: Linux's largest default TCP send buffer
/// (`tcp_wmem`, 4 MiB) and receive buffer (`tcp_rmem`, 6 MiB) together.
/// Only the messages' types are kept, 4 bytes a message.
pub(crate) const HANDED_BYTES: usize = 10 * 1024 * 1024;

/// Encoded frames and the raft types of the messages in them (empty for a
/// link heartbeat), so that a chunk that never left can be reported.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// The frames.
    pub(crate) bytes: Bytes,
    /// The types of the messages the frames carry, in order.
    pub(crate) message_types: Vec<i32>,
}

/// A connection ended: its body was dropped. `unsent` are the chunks it
/// held that never reached the socket.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ConnClosed {
    /// Which connection.
    pub(crate) conn: u64,
    /// Chunks still queued for it.
    pub(crate) unsent: Vec<Chunk>,
    /// When the connection broke: the types of the messages handed to the
    /// socket last (up to [`HANDED_BYTES`]), which may not have reached
    /// the peer's raft. Empty after a clean end.
    pub(crate) maybe_lost: Vec<i32>,
}

/// The message types of the chunks a body handed to the socket last.
#[derive(Debug, Default)]
struct Handed {
    chunks: VecDeque<(usize, Vec<i32>)>,
    bytes: usize,
}

impl Handed {
    /// Remembers a chunk of `len` bytes, forgetting the oldest beyond
    /// [`HANDED_BYTES`].
    fn push(&mut self, len: usize, message_types: Vec<i32>) {
        if message_types.is_empty() {
            return;
        }
        self.bytes += len;
        self.chunks.push_back((len, message_types));
        while self.bytes > HANDED_BYTES && self.chunks.len() > 1 {
            if let Some((oldest, _)) = self.chunks.pop_front() {
                self.bytes -= oldest;
            }
        }
    }

    fn take(&mut self) -> Vec<i32> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks)
            .into_iter()
            .flat_map(|(_, types)| types)
            .collect()
    }
}

/// The response body of an attached stream: the chunks the writer sends,
/// one HTTP chunk each, until the writer lets the connection go.
pub(crate) struct ConnBody {
    conn: u64,
    chunks: mpsc::Receiver<Chunk>,
    writer: Recipient<ConnClosed>,
    handed: Handed,
    /// The writer ended the body (it let the connection go).
    ended: bool,
}

impl std::fmt::Debug for ConnBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnBody")
            .field("conn", &self.conn)
            .finish()
    }
}

/// A new connection `conn` to `writer`: the sender for the writer, the body
/// for the response.
pub(crate) fn conn_channel(
    conn: u64,
    writer: Recipient<ConnClosed>,
) -> (mpsc::Sender<Chunk>, ConnBody) {
    let (tx, chunks) = mpsc::channel(CONN_CHUNKS);
    (
        tx,
        ConnBody {
            conn,
            chunks,
            writer,
            handed: Handed::default(),
            ended: false,
        },
    )
}

impl Stream for ConnBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.chunks).poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                this.handed.push(chunk.bytes.len(), chunk.message_types);
                Poll::Ready(Some(Ok(chunk.bytes)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ConnBody {
    fn drop(&mut self) {
        self.chunks.close();
        let mut unsent = Vec::new();
        while let Ok(chunk) = self.chunks.try_recv() {
            unsent.push(chunk);
        }
        let maybe_lost = match self.ended {
            true => Vec::new(),
            false => self.handed.take(),
        };
        self.writer.do_send(ConnClosed {
            conn: self.conn,
            unsent,
            maybe_lost,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_keeps_the_last_bytes_and_skips_heartbeats() {
        let mut handed = Handed::default();
        handed.push(10, Vec::new());
        assert!(
            handed.take().is_empty(),
            "a link heartbeat carries no message"
        );
        let third = HANDED_BYTES / 3 + 1;
        for t in 1..=4 {
            handed.push(third, vec![t, t]);
        }
        // Three chunks exceed the bound; the newest that fit stay, and at
        // least one always does.
        assert_eq!(handed.take(), vec![3, 3, 4, 4]);
        handed.push(HANDED_BYTES * 2, vec![7]);
        assert_eq!(handed.take(), vec![7]);
    }
}

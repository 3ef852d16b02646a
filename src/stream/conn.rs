//! One attached stream connection as the writer sees it: the sending end of
//! a bounded channel whose receiving end is the HTTP response body.
//!
//! When actix-web drops the body (the reader went away, or the writer let
//! the connection go), the body hands every chunk it had not yet written
//! back to its writer, so the messages in them are reported, not lost.

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
}

/// The response body of an attached stream: the chunks the writer sends,
/// one HTTP chunk each, until the writer lets the connection go.
pub(crate) struct ConnBody {
    conn: u64,
    chunks: mpsc::Receiver<Chunk>,
    writer: Recipient<ConnClosed>,
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
        },
    )
}

impl Stream for ConnBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.chunks)
            .poll_next(cx)
            .map(|chunk| chunk.map(|c| Ok(c.bytes)))
    }
}

impl Drop for ConnBody {
    fn drop(&mut self) {
        self.chunks.close();
        let mut unsent = Vec::new();
        while let Ok(chunk) = self.chunks.try_recv() {
            unsent.push(chunk);
        }
        self.writer.do_send(ConnClosed {
            conn: self.conn,
            unsent,
        });
    }
}

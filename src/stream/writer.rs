//! `StreamWriterActor`: etcd's `streamWriter` (`rafthttp/stream.go:110-362`)
//! for one peer and one stream type. The stream handler attaches each
//! accepted GET's response body to it; it encodes queued messages into
//! that body, sends a link heartbeat every [`HEARTBEAT_INTERVAL`], and lets
//! an older connection go when a newer one attaches.
//!
//! Better than etcd: every message it accepts ends delivered to the body or
//! reported ([`ReportUnreachable`], one per message), including those
//! queued when a connection breaks or the writer stops, and those handed to
//! a socket that broke before the peer read them (at least once: see
//! [`conn`](super::conn)); and it learns of a reader that went away as soon
//! as actix-web drops the body.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use futures::channel::mpsc;
use futures::future::poll_fn;

use super::codec::StreamEncoder;
use super::conn::{Chunk, ConnClosed};
use super::link_heartbeat::link_heartbeat;
use super::stream_type::StreamType;
use super::{HEARTBEAT_INTERVAL, STREAM_BUF_SIZE};
use crate::error::{Error, TransportError};
use crate::id::Id;
use crate::messages::{Dropped, ReportUnreachable};
use crate::raftpb::Message;

/// The most messages in one chunk: etcd flushes once more than
/// `streamBufSize/2` were encoded since the last flush (`stream.go:209`).
const FLUSH_BATCH: usize = STREAM_BUF_SIZE / 2 + 1;

/// The most bytes one chunk gathers before it goes: with at most
/// [`CONN_CHUNKS`](super::conn::CONN_CHUNKS) waiting, this bounds the
/// memory between the queue and the socket (etcd bounds only by count).
const CHUNK_BYTES: usize = 16 * 1024;

/// A raft message for the stream writer to send.
///
/// Answered at once: `Ok(())` when it was queued for an attached
/// connection, [`Dropped`] (already reported) when the queue is full or no
/// connection is attached.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Dropped>")]
pub struct StreamSend(pub Message);

/// The stream handler attaches a connection: `chunks` feeds its response
/// body.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct AttachConn {
    /// The connection's number, unique in the process.
    pub(crate) conn: u64,
    /// The body's feed.
    pub(crate) chunks: mpsc::Sender<Chunk>,
}

/// The attached connection.
#[derive(Debug)]
struct Attached {
    conn: u64,
    /// The body's feed; taken while a chunk is on its way. One sender,
    /// never cloned: each clone of a futures sender gets a slot of its
    /// own, which would make the channel unbounded.
    chunks: Option<mpsc::Sender<Chunk>>,
    encoder: StreamEncoder,
}

/// etcd's `streamWriter` as an actor; see the module docs.
#[derive(Debug)]
pub struct StreamWriterActor {
    peer: Id,
    kind: StreamType,
    queue: VecDeque<Message>,
    attached: Option<Attached>,
    /// A chunk is on its way into the body; the next waits for it.
    writing: bool,
    working: Arc<AtomicBool>,
    unreachable: Recipient<ReportUnreachable>,
    /// How long the thread polls after messages went out.
    busy_poll: Option<Duration>,
}

impl StreamWriterActor {
    /// A writer of `kind` to `peer`, reporting undelivered messages to
    /// `unreachable`. Not working until a connection attaches.
    pub fn new(peer: Id, kind: StreamType, unreachable: Recipient<ReportUnreachable>) -> Self {
        StreamWriterActor {
            peer,
            kind,
            queue: VecDeque::new(),
            attached: None,
            writing: false,
            working: Arc::new(AtomicBool::new(false)),
            unreachable,
            busy_poll: None,
        }
    }

    /// After each chunk of messages it sends, keeps its thread polling
    /// for `window` instead of sleeping (see
    /// [`TransportConfig::busy_poll`](crate::transport::TransportConfig::busy_poll)).
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = Some(window);
        self
    }

    /// A flag that is `true` while a connection is attached (etcd's
    /// `writec()`'s `working`), for routing without a round trip.
    pub fn working(&self) -> Arc<AtomicBool> {
        self.working.clone()
    }

    fn report(&self, message_type: i32, reason: &Error) {
        self.unreachable.do_send(ReportUnreachable {
            to: self.peer,
            message_type,
            reason: reason.clone(),
        });
    }

    fn lost(&self) -> Error {
        Error::Transport(TransportError::new(format!(
            "lost TCP streaming connection with remote peer {} ({})",
            self.peer, self.kind
        )))
    }

    /// Reports and forgets every queued message.
    fn report_queue(&mut self, reason: &Error) {
        for message in std::mem::take(&mut self.queue) {
            self.report(message.r#type, reason);
        }
    }

    fn detach(&mut self) {
        self.attached = None;
        self.writing = false;
        self.working.store(false, Ordering::Release);
    }

    /// Sends the next chunk if none is on its way: up to [`FLUSH_BATCH`]
    /// queued messages or [`CHUNK_BYTES`], in one HTTP chunk.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.queue.is_empty() {
            return;
        }
        let Some(attached) = &mut self.attached else {
            return;
        };
        let mut bytes = BytesMut::new();
        let mut message_types = Vec::new();
        while message_types.len() < FLUSH_BATCH && bytes.len() < CHUNK_BYTES {
            let Some(message) = self.queue.pop_front() else {
                break;
            };
            attached.encoder.encode(&message, &mut bytes);
            message_types.push(message.r#type);
        }
        let chunk = Chunk {
            bytes: bytes.freeze(),
            message_types,
        };
        self.write(chunk, ctx);
    }

    fn write(&mut self, chunk: Chunk, ctx: &mut Context<Self>) {
        let Some(attached) = &mut self.attached else {
            return;
        };
        let Some(mut chunks) = attached.chunks.take() else {
            return;
        };
        let conn = attached.conn;
        self.writing = true;
        let carried = !chunk.message_types.is_empty();
        let send = async move {
            let sent = match poll_fn(|cx| chunks.poll_ready(cx)).await {
                Ok(()) => chunks.try_send(chunk).map_err(|e| e.into_inner()),
                Err(_) => Err(chunk),
            };
            (chunks, sent.map(|()| carried))
        };
        ctx.spawn(
            send.into_actor(self)
                .map(move |(chunks, sent), act, ctx| act.written(conn, chunks, sent, ctx)),
        );
    }

    /// A chunk went into the body (or could not): the feed comes back to
    /// its connection, unless a newer one replaced it meanwhile.
    fn written(
        &mut self,
        conn: u64,
        chunks: mpsc::Sender<Chunk>,
        sent: Result<bool, Chunk>,
        ctx: &mut Context<Self>,
    ) {
        match sent {
            Err(chunk) => {
                let reason = self.lost();
                for message_type in chunk.message_types {
                    self.report(message_type, &reason);
                }
            }
            Ok(carried) => self.after_send(carried),
        }
        if let Some(attached) = self.attached.as_mut().filter(|a| a.conn == conn) {
            attached.chunks = Some(chunks);
            self.writing = false;
        }
        self.pump(ctx);
    }

    /// A chunk went out: with busy polling on and messages in it, the
    /// thread stays awake for the answer.
    fn after_send(&self, carried_messages: bool) {
        if let Some(window) = self.busy_poll.filter(|_| carried_messages) {
            crate::busy_poll::poll_for(window);
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.writing {
            return;
        }
        let Some(attached) = &mut self.attached else {
            return;
        };
        let mut bytes = BytesMut::new();
        attached.encoder.encode(&link_heartbeat(), &mut bytes);
        let chunk = Chunk {
            bytes: bytes.freeze(),
            message_types: Vec::new(),
        };
        self.write(chunk, ctx);
    }
}

impl Actor for StreamWriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!(
            "started stream writer with remote peer {} ({})",
            self.peer,
            self.kind
        );
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| act.heartbeat(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.detach();
        self.report_queue(&Error::Stopped);
        log::warn!(
            "stopped TCP streaming connection with remote peer {} ({})",
            self.peer,
            self.kind
        );
    }
}

impl Handler<StreamSend> for StreamWriterActor {
    type Result = Result<(), Dropped>;

    fn handle(&mut self, StreamSend(message): StreamSend, ctx: &mut Self::Context) -> Self::Result {
        let refuse = |reason: Error| {
            self.report(message.r#type, &reason);
            Err(Dropped {
                to: self.peer,
                message_type: message.r#type,
                reason,
            })
        };
        if self.attached.is_none() {
            return refuse(self.lost());
        }
        if self.queue.len() >= STREAM_BUF_SIZE {
            return refuse(Error::BufferFull);
        }
        self.queue.push_back(message);
        self.pump(ctx);
        Ok(())
    }
}

impl Handler<AttachConn> for StreamWriterActor {
    type Result = ();

    fn handle(&mut self, msg: AttachConn, ctx: &mut Self::Context) {
        if let Some(old) = self.attached.take() {
            log::warn!(
                "closed TCP streaming connection with remote peer {} ({}, replaced)",
                self.peer,
                self.kind
            );
            drop(old);
        }
        self.attached = Some(Attached {
            conn: msg.conn,
            chunks: Some(msg.chunks),
            encoder: StreamEncoder::new(self.kind),
        });
        self.writing = false;
        self.working.store(true, Ordering::Release);
        log::warn!(
            "established TCP streaming connection with remote peer {} ({} writer)",
            self.peer,
            self.kind
        );
        // etcd's ticker keeps one pending tick: the first heartbeat goes
        // out at once, and tells the reader the stream is up.
        self.heartbeat(ctx);
        self.pump(ctx);
    }
}

impl Handler<ConnClosed> for StreamWriterActor {
    type Result = ();

    fn handle(&mut self, msg: ConnClosed, _: &mut Self::Context) {
        let reason = self.lost();
        let unsent = msg.unsent.into_iter().flat_map(|c| c.message_types);
        for message_type in msg.maybe_lost.into_iter().chain(unsent) {
            self.report(message_type, &reason);
        }
        if self.attached.as_ref().is_some_and(|a| a.conn == msg.conn) {
            log::warn!(
                "lost TCP streaming connection with remote peer {} ({} writer)",
                self.peer,
                self.kind
            );
            self.detach();
            self.report_queue(&reason);
        }
    }
}

/// Stop a stream writer: its connection ends, and every message still
/// queued is reported as stopped.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopStream;

impl Handler<StopStream> for StreamWriterActor {
    type Result = ();

    fn handle(&mut self, _: StopStream, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

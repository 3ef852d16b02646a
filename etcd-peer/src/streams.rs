//! With `--streams`: etcd's streams to and from each peer, from the
//! library's public stream actors, and etcd's `peer.pick` choosing the
//! road of each reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use rafthttp_pipeline::membership::Member;
use rafthttp_pipeline::raftpb::Message;
use rafthttp_pipeline::{
    Inbound, LocalMember, PeerUrl, ReportUnreachable, StopStream, StreamReaderActor,
    StreamReaderConfig, StreamSend, StreamType, StreamWriterActor, StreamWriters,
};

/// A stream writer and whether it has a connection.
struct Writer {
    addr: Addr<StreamWriterActor>,
    working: Arc<AtomicBool>,
}

impl Writer {
    fn working(&self) -> bool {
        self.working.load(Ordering::Acquire)
    }
}

/// One peer's two stream writers (in the table the stream route reads)
/// and two stream readers.
pub struct PeerStreams {
    msgapp: Writer,
    message: Writer,
    readers: Vec<Addr<StreamReaderActor>>,
}

impl PeerStreams {
    /// Starts `peer`'s writers, entered in `table`, and readers dialling
    /// its first URL; both report to and deliver to `raft`.
    pub fn start<A>(
        local: &LocalMember,
        peer: &Member,
        table: &StreamWriters,
        raft: &Addr<A>,
    ) -> Self
    where
        A: Actor<Context = Context<A>> + Handler<Inbound> + Handler<ReportUnreachable>,
    {
        let writer = |kind| {
            let unreachable: Recipient<ReportUnreachable> = raft.clone().recipient();
            let actor = StreamWriterActor::new(peer.id, kind, unreachable);
            let working = actor.working();
            let addr = actor.start();
            table.insert(peer.id, kind, addr.clone());
            Writer { addr, working }
        };
        let url = peer.peer_urls.iter().find_map(|u| PeerUrl::parse(u).ok());
        let readers = url.map_or_else(Vec::new, |url| {
            StreamType::ALL
                .into_iter()
                .map(|kind| {
                    let inbound: Recipient<Inbound> = raft.clone().recipient();
                    let config =
                        StreamReaderConfig::new(local, peer.id, url.clone(), kind, inbound);
                    StreamReaderActor::new(config).start()
                })
                .collect()
        });
        PeerStreams {
            msgapp: writer(StreamType::MsgAppV2),
            message: writer(StreamType::Message),
            readers,
        }
    }

    /// etcd's `peer.pick`: the stream writer for `m`, or `None` for the
    /// pipeline (every `MsgSnap`, and anything while no stream works).
    pub fn pick(&self, m: &Message) -> Option<&Addr<StreamWriterActor>> {
        if m.is_snapshot() {
            None
        } else if m.is_append() && self.msgapp.working() {
            Some(&self.msgapp.addr)
        } else if self.message.working() {
            Some(&self.message.addr)
        } else {
            None
        }
    }

    /// Sends `m` on its stream, or gives it back for the pipeline.
    pub fn send(&self, m: Message) -> Option<Message> {
        match self.pick(&m) {
            Some(writer) => {
                writer.do_send(StreamSend(m));
                None
            }
            None => Some(m),
        }
    }

    /// Stops the readers and the writers (their queued messages are
    /// reported).
    pub fn stop(&self) {
        for reader in &self.readers {
            reader.do_send(StopStream);
        }
        self.msgapp.addr.do_send(StopStream);
        self.message.addr.do_send(StopStream);
    }
}

//! One peer's four stream actors as the transport holds them: a writer and
//! a reader of each type, the writers entered in the member's
//! [`StreamWriters`] so that the peer's GETs find them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::pick::{pick, Road};
use super::reader::{StreamReaderActor, StreamReaderConfig};
use super::server::StreamWriters;
use super::stream_type::StreamType;
use super::writer::{StopStream, StreamSend, StreamWriterActor};
use crate::config::ClientTls;
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::messages::{CriticalError, Inbound, PeerStatusChanged, ReportUnreachable};
use crate::peer_url::PeerUrl;
use crate::raftpb::Message;

/// A writer and the flag that says it has a connection.
#[derive(Debug)]
struct Writer {
    addr: Addr<StreamWriterActor>,
    working: Arc<AtomicBool>,
}

/// What the streams to and from one peer need from the transport.
#[derive(Debug)]
pub(crate) struct StreamPeer<'a> {
    /// This member.
    pub(crate) local: &'a LocalMember,
    /// The peer.
    pub(crate) peer: Id,
    /// The peer's URLs; the readers dial the first valid one.
    pub(crate) urls: &'a [String],
    /// Where the peer's GETs look for their writer.
    pub(crate) table: &'a StreamWriters,
    /// The raft actor the readers deliver to.
    pub(crate) inbound: Recipient<Inbound>,
    /// Where the writers report what they could not deliver.
    pub(crate) unreachable: Recipient<ReportUnreachable>,
    /// Where the readers tell the peer's status.
    pub(crate) status: Recipient<PeerStatusChanged>,
    /// Where a reader reports that this member was removed.
    pub(crate) critical_errors: Option<Recipient<CriticalError>>,
    /// The pipelines' TLS, which the readers dial `https://` URLs with.
    pub(crate) tls: Option<ClientTls>,
    /// How long a writer's thread polls after a send (see
    /// [`TransportConfig::busy_poll`](crate::transport::TransportConfig::busy_poll)).
    pub(crate) busy_poll: Option<Duration>,
}

/// What every reader of a peer is started with, kept to start them again
/// on new URLs.
#[derive(Debug)]
struct Readers {
    local: LocalMember,
    inbound: Recipient<Inbound>,
    status: Recipient<PeerStatusChanged>,
    critical_errors: Option<Recipient<CriticalError>>,
    tls: Option<ClientTls>,
}

impl Readers {
    /// A reader of each type dialling the first valid URL of `urls`; none
    /// when no URL is valid.
    fn start(&self, peer: Id, urls: &[String]) -> Vec<Addr<StreamReaderActor>> {
        let Some(url) = urls.iter().find_map(|u| PeerUrl::parse(u).ok()) else {
            return Vec::new();
        };
        let reader = |kind| {
            let inbound = self.inbound.clone();
            let config = StreamReaderConfig::new(&self.local, peer, url.clone(), kind, inbound);
            let mut config = config.with_client_tls(self.tls.as_ref());
            config.status = Some(self.status.clone());
            config.critical_errors = self.critical_errors.clone();
            StreamReaderActor::new(config).start()
        };
        StreamType::ALL.into_iter().map(reader).collect()
    }
}

/// One peer's stream writers and readers.
#[derive(Debug)]
pub(crate) struct PeerStreams {
    peer: Id,
    table: StreamWriters,
    msgapp: Writer,
    message: Writer,
    with: Readers,
    readers: Vec<Addr<StreamReaderActor>>,
}

impl PeerStreams {
    /// Starts both writers (entered in the table) and, when the peer has a
    /// valid URL, both readers.
    pub(crate) fn start(p: StreamPeer<'_>) -> PeerStreams {
        let writer = |kind| {
            let actor = StreamWriterActor::new(p.peer, kind, p.unreachable.clone());
            let actor = match p.busy_poll {
                Some(window) => actor.busy_poll(window),
                None => actor,
            };
            let working = actor.working();
            let addr = actor.start();
            p.table.insert(p.peer, kind, addr.clone());
            Writer { addr, working }
        };
        let with = Readers {
            local: p.local.clone(),
            inbound: p.inbound,
            status: p.status,
            critical_errors: p.critical_errors,
            tls: p.tls,
        };
        let readers = with.start(p.peer, p.urls);
        PeerStreams {
            peer: p.peer,
            table: p.table.clone(),
            msgapp: writer(StreamType::MsgAppV2),
            message: writer(StreamType::Message),
            with,
            readers,
        }
    }

    /// The peer moved (etcd's `UpdatePeer`): its readers dial the first
    /// valid URL of `urls` from now on.
    pub(crate) fn update_urls(&mut self, urls: &[String]) {
        for reader in self.readers.drain(..) {
            reader.do_send(StopStream);
        }
        self.readers = self.with.start(self.peer, urls);
    }

    /// Sends `message` on a stream when etcd's `peer.pick` says so; gives
    /// it back when it goes by pipeline. A writer that lost its connection
    /// meanwhile reports the message, never drops it silently.
    pub(crate) fn send(&self, message: Message) -> Option<Message> {
        let working = |w: &Writer| w.working.load(Ordering::Acquire);
        let writer = match pick(&message, working(&self.msgapp), working(&self.message)) {
            Road::Pipeline => return Some(message),
            Road::MsgAppStream => &self.msgapp,
            Road::MessageStream => &self.message,
        };
        writer.addr.do_send(StreamSend(message));
        None
    }

    /// Stops the readers and writers (queued messages are reported as
    /// stopped) and takes the writers out of the table.
    pub(crate) fn stop(self) {
        self.table.remove(self.peer);
        for reader in &self.readers {
            reader.do_send(StopStream);
        }
        self.msgapp.addr.do_send(StopStream);
        self.message.addr.do_send(StopStream);
    }
}

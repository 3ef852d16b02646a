//! `StreamReaderActor`: etcd's `streamReader` (`rafthttp/stream.go:364-747`)
//! for one peer and one stream type. It dials the peer's stream endpoint
//! with etcd's headers, at most once per [`DIAL_RETRY_FREQUENCY`], decodes
//! the frames of the answer and hands every message but link heartbeats to
//! the user's raft actor as an [`Inbound`], in order.
//!
//! Better than etcd: a full raft mailbox is never a reason to drop. The
//! reader waits for the raft actor to take each chunk's messages before it
//! reads the next chunk, so TCP pushes back on the writer; a silent
//! connection ends after [`CONN_READ_TIMEOUT`]; a garbage frame, a
//! malformed version or a 200 without a version end the dial with an
//! error, never a crash or a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::clock::{sleep, timeout, Instant};
use actix::prelude::*;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::codec::StreamDecoder;
use super::dial_answer::{classify, precondition_failed, DialAnswer};
use super::link_heartbeat::is_link_heartbeat;
use super::server::HEADER_RAFT_TO;
use super::stream_type::StreamType;
use super::{CONN_READ_TIMEOUT, READ_BYTES_LIMIT};
use crate::config::{ClientTls, DIAL_TIMEOUT};
use crate::error::{Error, TransportError};
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::messages::{CriticalError, Inbound, PeerStatusChanged};
use crate::peer_url::PeerUrl;
use crate::raftpb::Message;
use crate::sender::build_client;
use crate::version::{MIN_CLUSTER_VERSION, SERVER_VERSION};
use crate::wire::{name, request_uri};

/// The least time between two dials of one reader (etcd's default
/// `DialRetryFrequency`, `rate.Every(100ms)` with burst 1,
/// `rafthttp/transport.go:155-157`).
pub const DIAL_RETRY_FREQUENCY: Duration = Duration::from_millis(100);

/// What a stream reader needs.
#[derive(Debug, Clone)]
pub struct StreamReaderConfig {
    /// This member: its id goes in the path and `X-Server-From`, its
    /// cluster id and URLs in their headers.
    pub local: LocalMember,
    /// The peer to dial.
    pub peer: Id,
    /// The peer's URL to dial.
    pub peer_url: PeerUrl,
    /// Which stream.
    pub kind: StreamType,
    /// The largest frame accepted (default [`READ_BYTES_LIMIT`]).
    pub limit: u64,
    /// How long the connection may stay silent (default
    /// [`CONN_READ_TIMEOUT`]); the writer's heartbeats come three times as
    /// often.
    pub read_timeout: Duration,
    /// The user's raft actor, which gets every message.
    pub raft: Recipient<Inbound>,
    /// Where the peer's status goes (default none): active when a stream
    /// is established, inactive when one fails (etcd's `status.activate`
    /// and `deactivate`, `stream.go:420-440`). A clean end or a stop
    /// changes nothing, as in etcd.
    pub status: Option<Recipient<PeerStatusChanged>>,
    /// Where a `410 Gone` answer goes as a [`CriticalError`] with
    /// [`Error::MemberRemoved`] (default none: only logged), as etcd's
    /// reader reports it on `errorc` and the member stops
    /// (`stream.go:656-661`).
    pub critical_errors: Option<Recipient<CriticalError>>,
    /// TLS for an `https://` peer URL (default none), as the pipeline's
    /// [`PipelineConfig::tls`](crate::PipelineConfig::tls); a
    /// [`Transport`](crate::transport::Transport) gives its readers its
    /// pipelines' configuration.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl StreamReaderConfig {
    /// A reader of `kind` from `peer` at `peer_url`, with etcd's limits.
    pub fn new(
        local: &LocalMember,
        peer: Id,
        peer_url: PeerUrl,
        kind: StreamType,
        raft: Recipient<Inbound>,
    ) -> Self {
        StreamReaderConfig {
            local: local.clone(),
            peer,
            peer_url,
            kind,
            limit: READ_BYTES_LIMIT,
            read_timeout: CONN_READ_TIMEOUT,
            raft,
            status: None,
            critical_errors: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Sets [`tls`](Self::tls) where the crate holds a [`ClientTls`]
    /// (which, without the `tls` feature, is never there).
    #[cfg(feature = "tls")]
    pub(crate) fn with_client_tls(self, tls: Option<&ClientTls>) -> Self {
        let tls = tls.cloned();
        StreamReaderConfig { tls, ..self }
    }

    /// Without the `tls` feature there is no TLS to set.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn with_client_tls(self, _: Option<&ClientTls>) -> Self {
        self
    }

    fn client_tls(&self) -> Option<ClientTls> {
        #[cfg(feature = "tls")]
        return self.tls.clone();
        #[cfg(not(feature = "tls"))]
        None
    }
}

/// What a reader shows without a round trip: whether its stream is up,
/// and whether the peer serves this stream type at all.
#[derive(Debug)]
pub struct StreamReaderStatus {
    active: AtomicBool,
    unsupported: AtomicBool,
}

impl StreamReaderStatus {
    /// Whether a stream is established right now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the peer's last answer said it has no streams.
    pub fn is_unsupported(&self) -> bool {
        self.unsupported.load(Ordering::Acquire)
    }
}

/// etcd's `streamReader` as an actor; see the module docs.
/// [`StopStream`](super::StopStream) ends its dial and its stream.
#[derive(Debug)]
pub struct StreamReaderActor {
    config: Arc<StreamReaderConfig>,
    status: Arc<StreamReaderStatus>,
}

impl StreamReaderActor {
    /// A reader with `config`; it dials as soon as it starts.
    pub fn new(config: StreamReaderConfig) -> Self {
        StreamReaderActor {
            config: Arc::new(config),
            status: Arc::new(StreamReaderStatus {
                active: AtomicBool::new(false),
                unsupported: AtomicBool::new(false),
            }),
        }
    }

    /// The reader's status flags.
    pub fn status(&self) -> Arc<StreamReaderStatus> {
        self.status.clone()
    }
}

impl Actor for StreamReaderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (config, status) = (self.config.clone(), self.status.clone());
        log::info!(
            "started stream reader with remote peer {} ({})",
            config.peer,
            config.kind
        );
        ctx.spawn(run(config, status).into_actor(self));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.status.active.store(false, Ordering::Release);
        log::info!(
            "stopped stream reader with remote peer {} ({})",
            self.config.peer,
            self.config.kind
        );
    }
}

impl Handler<super::writer::StopStream> for StreamReaderActor {
    type Result = ();

    fn handle(&mut self, _: super::writer::StopStream, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Dials, reads, and dials again, forever (until the actor stops).
async fn run(config: Arc<StreamReaderConfig>, status: Arc<StreamReaderStatus>) {
    let client = build_client(DIAL_TIMEOUT, config.client_tls().as_ref());
    let mut last_dial: Option<Instant> = None;
    loop {
        if let Some(last) = last_dial {
            sleep((last + DIAL_RETRY_FREQUENCY).saturating_duration_since(Instant::now())).await;
        }
        last_dial = Some(Instant::now());
        let (peer, kind) = (config.peer, config.kind);
        match dial(&client, &config).await {
            Ok(Dialled::Stream(body)) => {
                status.unsupported.store(false, Ordering::Release);
                status.active.store(true, Ordering::Release);
                log::info!(
                    "established TCP streaming connection with remote peer {peer} ({kind} reader)"
                );
                tell(&config, None);
                let end = read(&config, body).await;
                status.active.store(false, Ordering::Release);
                log::warn!(
                    "lost TCP streaming connection with remote peer {peer} ({kind} reader): {end}"
                );
                if !matches!(end, StreamEnd::Decode(super::StreamDecodeError::Eof)) {
                    tell(
                        &config,
                        Some(format!("failed to read {peer} on {kind} ({end})")),
                    );
                }
            }
            Ok(Dialled::Unsupported) => status.unsupported.store(true, Ordering::Release),
            Err(Error::MemberRemoved) => removed(&config),
            Err(e) => log::debug!("failed to dial {peer} on {kind} ({e})"),
        }
    }
}

/// The peer answered `410 Gone`: this member was removed from the cluster.
/// Tells the critical-error recipient, if any, every time (etcd's
/// non-blocking send to `errorc` on each such dial).
fn removed(config: &StreamReaderConfig) {
    log::error!(
        "failed to dial {} on {}: {}",
        config.peer,
        config.kind,
        Error::MemberRemoved
    );
    if let Some(critical) = &config.critical_errors {
        critical.do_send(CriticalError {
            peer: config.peer,
            error: Error::MemberRemoved,
        });
    }
}

/// Tells the status recipient, if any, that the peer is active (`None`)
/// or inactive for `reason`.
fn tell(config: &StreamReaderConfig, reason: Option<String>) {
    if let Some(status) = &config.status {
        status.do_send(PeerStatusChanged {
            peer: config.peer,
            active: reason.is_none(),
            since: reason.is_none().then(SystemTime::now),
            reason,
        });
    }
}

/// A body of chunks, as awc gives it.
type Body = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// What a successful dial gave.
enum Dialled {
    /// The stream is up: read this body.
    Stream(Body),
    /// The peer has no streams of this type.
    Unsupported,
}

/// One GET to the peer's stream endpoint, with etcd's headers
/// (`stream.go:591-628`), and its answer read as etcd does.
async fn dial(client: &awc::Client, config: &StreamReaderConfig) -> Result<Dialled, Error> {
    let local = &config.local;
    let path = format!("{}/{}", config.kind.endpoint(), local.id);
    let uri = request_uri(&config.peer_url, &path)?;
    let mut request = client
        .get(uri)
        .insert_header((name::SERVER_FROM, local.id.to_string()))
        .insert_header((name::SERVER_VERSION, SERVER_VERSION))
        .insert_header((name::MIN_CLUSTER_VERSION, MIN_CLUSTER_VERSION))
        .insert_header((name::CLUSTER_ID, local.cluster_id.to_string()))
        .insert_header((HEADER_RAFT_TO, config.peer.to_string()));
    if !local.peer_urls.is_empty() {
        request = request.insert_header((name::PEER_URLS, local.peer_urls.join(",")));
    }
    let mut response = timeout(config.read_timeout, request.send())
        .await
        .map_err(|_| Error::Timeout(config.read_timeout))?
        .map_err(|e| Error::Transport(TransportError::new(e.to_string())))?;
    let version = response
        .headers()
        .get(&name::SERVER_VERSION)
        .map(|v| v.as_bytes());
    match classify(response.status().as_u16(), version, local.id, config.peer) {
        DialAnswer::Established => Ok(Dialled::Stream(Box::pin(response))),
        DialAnswer::Unsupported => Ok(Dialled::Unsupported),
        DialAnswer::Failed(e) => Err(e),
        DialAnswer::PreconditionFailed => {
            let body = timeout(config.read_timeout, response.body().limit(64 * 1024)).await;
            match body {
                Ok(Ok(body)) => Err(precondition_failed(&body)),
                Ok(Err(e)) => Err(Error::Transport(TransportError::new(e.to_string()))),
                Err(_) => Err(Error::Timeout(config.read_timeout)),
            }
        }
    }
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
enum StreamEnd {
    #[error("{0}")]
    Decode(#[from] super::StreamDecodeError),
    #[error("read: {0}")]
    Read(String),
    #[error("i/o timeout: nothing for {0:?}")]
    Silent(Duration),
    #[error("raft actor is gone")]
    RaftGone,
}

/// Decodes `body` until it ends, handing messages to raft in order.
async fn read(config: &StreamReaderConfig, mut body: Body) -> StreamEnd {
    let local = config.local.id.0;
    let mut decoder = StreamDecoder::new(config.kind, local, config.peer.0, config.limit);
    let mut batch = Vec::new();
    loop {
        let chunk = match timeout(config.read_timeout, body.next()).await {
            Err(_) => return StreamEnd::Silent(config.read_timeout),
            Ok(None) => return decoder.ended().into(),
            Ok(Some(Err(e))) => return StreamEnd::Read(e.to_string()),
            Ok(Some(Ok(chunk))) => chunk,
        };
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) if is_link_heartbeat(&m) => {}
                Ok(Some(m)) => batch.push(m),
                Ok(None) => break,
                Err(e) => return e.into(),
            }
        }
        if deliver(config, &mut batch).await.is_err() {
            return StreamEnd::RaftGone;
        }
    }
}

/// Hands `batch` to raft in order, and waits until raft took the last one
/// before the next chunk is read.
async fn deliver(
    config: &StreamReaderConfig,
    batch: &mut Vec<Message>,
) -> Result<(), MailboxError> {
    let Some(last) = batch.pop() else {
        return Ok(());
    };
    let inbound = |message| Inbound {
        message,
        from: Some(config.peer),
        peer_urls: Vec::new(),
        snapshot: None,
    };
    for message in batch.drain(..) {
        config.raft.do_send(inbound(message));
    }
    config.raft.send(inbound(last)).await.map(|_| ())
}

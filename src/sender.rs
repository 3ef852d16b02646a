//! `SenderActor`: posts one encoded message at a time to the peer.
//!
//! A sender holds no raft state. It takes a `Post`, sends it with its own
//! `awc::Client` (HTTP/1.1, keep-alive, no redirects) and a request head
//! built once per peer URL, reads the answer to the end and replies with
//! etcd's reading of it. The
//! [`PipelineActor`](crate::PipelineActor) starts each sender under an
//! `actix::Supervisor`; a sender that stops is restarted in place with a
//! fresh client, and the request it was carrying is dropped, which the
//! pipeline reports.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::error::{ConnectError, FreezeRequestError, SendRequestError};
use awc::http::header::{HeaderValue, HOST};
use awc::http::{StatusCode, Uri, Version};
use awc::{FrozenClientRequest, SendClientRequest};
use bytes::Bytes;
use futures::channel::oneshot;
use futures::{future, StreamExt};

use crate::body::Body;
use crate::config::ClientTls;
use crate::error::{Error, TransportError};
use crate::snapshot::{ExactBody, SnapshotBody};
use crate::wire::{check_post_response, RequestHeaders};

/// How much of an error answer's body is read (etcd's answers are one
/// short line; a larger body is cut here and the connection dropped).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Post one message body to `uri` and report how it went.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub(crate) struct Post {
    /// The peer URL with etcd's path (`/raft`).
    pub(crate) uri: Uri,
    /// The encoded message, shared, not copied.
    pub(crate) body: Body,
    /// How long the whole exchange may take.
    pub(crate) timeout: Duration,
}

/// Stream one snapshot to `uri` (etcd's `snapshotSender.send`): the framed
/// message `head`, then exactly `size` bytes of `body`, chunked.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub(crate) struct PostSnapshot {
    /// The peer URL with etcd's snapshot path (`/raft/snapshot`).
    pub(crate) uri: Uri,
    /// The 8-byte length and the encoded `MsgSnap`.
    pub(crate) head: Bytes,
    /// The database.
    pub(crate) body: SnapshotBody,
    /// The exact size of the database.
    pub(crate) size: u64,
    /// How long no byte may move before the send fails.
    pub(crate) stall_timeout: Duration,
}

impl std::fmt::Debug for PostSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostSnapshot")
            .field("uri", &self.uri)
            .field("size", &self.size)
            .finish()
    }
}

/// Stop the sender now, cancelling its request. While the pipeline still
/// holds the sender's address, the supervisor restarts it with a fresh
/// client; once the pipeline has let go, it stays stopped.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct StopSender;

/// What a sender needs to know; shared by the pipeline's senders.
#[derive(Debug, Clone)]
pub(crate) struct SenderSettings {
    /// The remote peer, for logs.
    pub(crate) peer: crate::Id,
    /// The request headers, built once per pipeline.
    pub(crate) headers: Arc<RequestHeaders>,
    /// The same for streamed snapshots (`application/octet-stream`).
    pub(crate) snapshot_headers: Arc<RequestHeaders>,
    /// The connect timeout.
    pub(crate) dial_timeout: Duration,
    /// TLS for `https://` URLs, if configured.
    pub(crate) tls: Option<ClientTls>,
}

/// One of a pipeline's senders: one POST in flight at a time.
pub struct SenderActor {
    index: usize,
    settings: SenderSettings,
    client: awc::Client,
    /// The request head for the URI posted to last, built once and reused
    /// for every message to it.
    frozen: Option<FrozenClientRequest>,
    // Dropped with the actor, which tells the pipeline this sender is gone
    // for good (a restart keeps the actor, so it does not fire then).
    _gone: oneshot::Sender<()>,
}

impl std::fmt::Debug for SenderActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderActor")
            .field("index", &self.index)
            .field("peer", &self.settings.peer)
            .finish()
    }
}

impl SenderActor {
    /// A sender numbered `index`. Call it on the arbiter it will run on:
    /// `awc::Client` is not `Send`. `gone` is dropped when the sender stops
    /// for good.
    pub(crate) fn new(index: usize, settings: SenderSettings, gone: oneshot::Sender<()>) -> Self {
        let client = build_client(settings.dial_timeout, settings.tls.as_ref());
        SenderActor {
            index,
            settings,
            client,
            frozen: None,
            _gone: gone,
        }
    }
}

/// The HTTP client each sender owns: HTTP/1.1 only, keep-alive, no
/// redirects, `dial_timeout` to connect and no total timeout of its own
/// (the sender bounds each exchange itself). Public, but not part of the
/// API, only so that a benchmark can measure bare requests with exactly
/// this client. Every connection it opens has `TCP_NODELAY`.
#[doc(hidden)]
pub fn http_client(dial_timeout: Duration) -> awc::Client {
    build_client(dial_timeout, None)
}

/// [`http_client`], speaking TLS to `https://` URLs with `tls` if given.
/// Each new client opens new connections, which read the certificate
/// files again if they changed.
pub(crate) fn build_client(dial_timeout: Duration, tls: Option<&ClientTls>) -> awc::Client {
    let connector = awc::Connector::new()
        .connector(crate::nodelay::connector())
        .timeout(dial_timeout)
        .max_http_version(Version::HTTP_11);
    // After `max_http_version`, which replaces the TLS configuration (and
    // so not the builder's `max_http_version` either: it only calls the
    // connector's again). Our TLS configuration offers HTTP/1.1 alone.
    #[cfg(feature = "tls")]
    let connector = match tls {
        Some(config) => connector.rustls_0_23(config.clone()),
        None => connector,
    };
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .disable_timeout()
        .finish()
}

impl Actor for SenderActor {
    type Context = Context<Self>;
}

impl Supervised for SenderActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        log::debug!(
            "sender {} to peer {} restarted with a fresh client",
            self.index,
            self.settings.peer
        );
        self.client = build_client(self.settings.dial_timeout, self.settings.tls.as_ref());
        self.frozen = None;
    }
}

impl SenderActor {
    fn request(&self, uri: Uri, headers: &RequestHeaders) -> awc::ClientRequest {
        let mut request = self.client.post(uri);
        for (name, value) in headers.iter() {
            request = request.insert_header((name.clone(), value.clone()));
        }
        request
    }

    /// The request head for a message to `uri`: etcd's headers and `Host`,
    /// built on the first message to `uri` and then only shared, so a
    /// message costs no header map, no header inserts and no `Host`
    /// formatting.
    fn frozen(&mut self, uri: &Uri) -> Result<FrozenClientRequest, Error> {
        if let Some(frozen) = self.frozen.as_ref().filter(|f| f.get_uri() == uri) {
            return Ok(frozen.clone());
        }
        let mut request = self.request(uri.clone(), &self.settings.headers);
        if let Some(host) = host_header(uri) {
            request = request.insert_header((HOST, host));
        }
        let frozen = request.freeze().map_err(freeze_error)?;
        Ok(self.frozen.insert(frozen).clone())
    }
}

/// The `Host` header awc would add to each request to `uri`
/// (`host[:port]`, the port left out when it is 80 or 443).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let value = match uri.port_u16() {
        None | Some(80) | Some(443) => host.to_owned(),
        Some(port) => format!("{host}:{port}"),
    };
    HeaderValue::from_str(&value).ok()
}

/// Reads an answer as etcd's `checkPostResponse` does: 204 is success, and
/// any other answer's (short) body is read to the end and mapped.
async fn read_answer<S>(mut response: awc::ClientResponse<S>, uri: &Uri) -> Result<(), Error>
where
    S: futures::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    let body = response
        .body()
        .limit(MAX_ANSWER_BYTES)
        .await
        .map_err(|e| Error::transport("failed to read the answer", e))?;
    check_post_response(status, &body, &uri.to_string())
}

impl Handler<Post> for SenderActor {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, post: Post, _ctx: &mut Context<Self>) -> Self::Result {
        let dial_timeout = self.settings.dial_timeout;
        let timeout = post.timeout;
        let sent = self
            .frozen(&post.uri)
            .map(|request| send_body(&request, post.body));
        let exchange = async move {
            let response = sent?
                .await
                .map_err(|e| send_error(e, dial_timeout, timeout))?;
            read_answer(response, &post.uri).await
        };
        let bounded = async move {
            actix::clock::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(Error::Timeout(timeout)))
        };
        Box::pin(bounded.into_actor(self))
    }
}

impl Handler<PostSnapshot> for SenderActor {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, post: PostSnapshot, _ctx: &mut Context<Self>) -> Self::Result {
        let request = self.request(post.uri.clone(), &self.settings.snapshot_headers);
        let dial_timeout = self.settings.dial_timeout;
        let stall = post.stall_timeout;
        let progress = Rc::new(Cell::new(Instant::now()));
        let failure = Rc::new(Cell::new(None));
        let body = ExactBody::new(post.body, post.size, progress.clone(), failure.clone());
        let head = futures::stream::once(futures::future::ready(Ok(post.head)));
        let stream = head.chain(body);
        let exchange = async move {
            let response = request
                .send_stream(stream)
                .await
                .map_err(|e| send_error(e, dial_timeout, stall))?;
            read_answer(response, &post.uri).await
        };
        let watched =
            async move {
                let outcome =
                    match future::select(Box::pin(exchange), Box::pin(stalled(progress, stall)))
                        .await
                    {
                        future::Either::Left((outcome, _)) => outcome,
                        future::Either::Right((stalled, _)) => stalled,
                    };
                // A wrong size or a failing body says more than the broken
                // request it caused.
                outcome.map_err(|err| failure.take().unwrap_or(err))
            };
        Box::pin(watched.into_actor(self))
    }
}

/// Sends a small body as it is, and a large one in slices so that the
/// client copies no more than a slice at a time into its write buffer.
fn send_body(request: &FrozenClientRequest, body: Body) -> SendClientRequest {
    let body = match body.into_single() {
        Ok(bytes) => return request.send_body(bytes),
        Err(body) => body,
    };
    let slices = futures::stream::iter(
        body.slices()
            .into_iter()
            .map(Ok::<_, std::convert::Infallible>),
    );
    let sized = awc::body::SizedStream::new(body.len() as u64, slices);
    request.send_body(sized)
}

/// Resolves with [`Error::Stalled`] once `progress` is `stall` old.
async fn stalled(progress: Rc<Cell<Instant>>, stall: Duration) -> Result<(), Error> {
    loop {
        let idle = progress.get().elapsed();
        if idle >= stall {
            return Err(Error::Stalled(stall));
        }
        actix::clock::sleep(stall - idle).await;
    }
}

impl Handler<StopSender> for SenderActor {
    type Result = ();

    fn handle(&mut self, _: StopSender, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Maps the client's error in building a request head, keeping the error
/// beneath it where it can cross threads.
fn freeze_error(err: FreezeRequestError) -> Error {
    const CONTEXT: &str = "failed to build the request";
    match err {
        FreezeRequestError::Url(url) => Error::transport(CONTEXT, url),
        FreezeRequestError::Http(http) => Error::transport(CONTEXT, http),
        other => Error::Transport(TransportError::new(format!("{CONTEXT}: {other}"))),
    }
}

/// Maps the client's error, keeping the error beneath it where it can
/// cross threads (awc's own error may not: it can box anything).
fn send_error(err: SendRequestError, dial_timeout: Duration, timeout: Duration) -> Error {
    match err {
        SendRequestError::Connect(ConnectError::Timeout) => Error::Timeout(dial_timeout),
        SendRequestError::Timeout => Error::Timeout(timeout),
        SendRequestError::Connect(ConnectError::Io(io)) => {
            Error::transport("failed to connect to host", io)
        }
        SendRequestError::Send(io) => Error::transport("failed to send the request", io),
        SendRequestError::Response(parse) => {
            Error::transport("failed to read the answer's head", parse)
        }
        other => Error::Transport(TransportError::new(other.to_string())),
    }
}

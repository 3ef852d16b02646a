//! The serving side of streams: etcd's `streamHandler`
//! (`rafthttp/http.go:370-494`) as an actix-web route, and the table of
//! stream writers it attaches accepted GETs to.
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::{receiver::{self, ReceiverConfig}, stream_routes, Id, Inbound, LocalMember, StreamRoutes, StreamWriters};
//! # async fn run(raft: Recipient<Inbound>, writers: StreamWriters) -> std::io::Result<()> {
//! let local = LocalMember::new(Id(1), Id(0x1000));
//! let streams = StreamRoutes::new(&local, writers);
//! let config = ReceiverConfig::new(&local, raft);
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(stream_routes(streams.clone()))
//!         .configure(receiver::configure(config.clone()))
//! })
//! .bind(("127.0.0.1", 2380))?
//! .run()
//! .await
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::conn::conn_channel;
use super::request_checks::{check_stream_request, SenderLookup, StreamRefusal, StreamRequest};
use super::stream_type::StreamType;
use super::writer::{AttachConn, StreamWriterActor};
use crate::etcd_text::{go_error_body, GO_TEXT_PLAIN};
use crate::id::Id;
use crate::local_member::LocalMember;
use crate::receiver::peer_headers;
use crate::version::SERVER_VERSION;
use crate::wire::{name, RAFT_STREAM_PREFIX};

/// `X-Raft-To`: the id the dialler means to reach (`rafthttp/stream.go:613`).
pub(crate) const HEADER_RAFT_TO: &str = "x-raft-to";

/// Numbers the attached connections, so a writer tells its current one
/// from one it already let go.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Writers by peer and stream type.
type WriterTable = HashMap<(Id, StreamType), Addr<StreamWriterActor>>;

/// The stream writers of this member, by peer and stream type: the peers
/// whose stream GETs are accepted. Shared by every HTTP worker; the owner
/// of the writers (the transport) adds and removes them.
#[derive(Debug, Clone, Default)]
pub struct StreamWriters {
    writers: Arc<RwLock<WriterTable>>,
}

impl StreamWriters {
    /// Accept `peer`'s GETs of type `kind`, attaching them to `writer`.
    pub fn insert(&self, peer: Id, kind: StreamType, writer: Addr<StreamWriterActor>) {
        self.table_mut().insert((peer, kind), writer);
    }

    /// Stop accepting `peer`'s GETs (its writers are not stopped here).
    pub fn remove(&self, peer: Id) {
        self.table_mut().retain(|(id, _), _| *id != peer);
    }

    /// `peer`'s writer of type `kind`, if it is a peer.
    pub fn get(&self, peer: Id, kind: StreamType) -> Option<Addr<StreamWriterActor>> {
        let table = self.writers.read().unwrap_or_else(|e| e.into_inner());
        table.get(&(peer, kind)).cloned()
    }

    fn table_mut(&self) -> std::sync::RwLockWriteGuard<'_, WriterTable> {
        self.writers.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a member id was removed from the cluster (etcd's
/// `Raft.IsIDRemoved`).
pub type RemovedCheck = Arc<dyn Fn(Id) -> bool + Send + Sync>;

/// What the stream route needs: who we are, the writers to attach to, and
/// which ids were removed.
#[derive(Clone)]
pub struct StreamRoutes {
    local: LocalMember,
    writers: StreamWriters,
    removed: RemovedCheck,
}

impl std::fmt::Debug for StreamRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRoutes")
            .field("local", &self.local)
            .field("writers", &self.writers)
            .finish_non_exhaustive()
    }
}

impl StreamRoutes {
    /// Routes for `local`, attaching to `writers`; no id counts as removed
    /// until [`StreamRoutes::removed`] says otherwise.
    pub fn new(local: &LocalMember, writers: StreamWriters) -> Self {
        StreamRoutes {
            local: local.clone(),
            writers,
            removed: Arc::new(|_| false),
        }
    }

    /// Sets the check for removed members, which get 410.
    pub fn removed(mut self, removed: RemovedCheck) -> Self {
        self.removed = removed;
        self
    }
}

impl SenderLookup for StreamRoutes {
    fn is_removed(&self, id: Id) -> bool {
        (self.removed)(id)
    }

    fn is_peer(&self, id: Id) -> bool {
        StreamType::ALL
            .into_iter()
            .any(|kind| self.writers.get(id, kind).is_some())
    }
}

/// Mounts `GET /raft/stream/{message,msgapp}/<id>`. Call it before
/// [`receiver::configure`](crate::receiver::configure), whose catch-all
/// would otherwise answer these paths.
pub fn stream_routes(routes: StreamRoutes) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let routes = Arc::new(routes);
        cfg.service(
            web::resource(format!("{RAFT_STREAM_PREFIX}/{{tail:.*}}"))
                .to(move |req: HttpRequest| serve(routes.clone(), req)),
        );
    }
}

async fn serve(routes: Arc<StreamRoutes>, req: HttpRequest) -> HttpResponse {
    let headers = req.headers();
    let request = StreamRequest {
        method: req.method().as_str(),
        path: req.path(),
        headers: peer_headers(headers),
        raft_to: headers.get(HEADER_RAFT_TO).map(HeaderValue::as_bytes),
    };
    let local = &routes.local;
    match check_stream_request(&request, local.id, local.cluster_id, &*routes) {
        Ok((kind, from)) => match routes.writers.get(from, kind) {
            Some(writer) => attach(local, writer, kind, from),
            None => refuse(local, &StreamRefusal::SenderNotFound(from)),
        },
        Err(refusal) => refuse(local, &refusal),
    }
}

/// 200 and a body fed by `writer` from now on.
fn attach(
    local: &LocalMember,
    writer: Addr<StreamWriterActor>,
    kind: StreamType,
    from: Id,
) -> HttpResponse {
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (chunks, body) = conn_channel(conn, writer.clone().recipient());
    writer.do_send(AttachConn { conn, chunks });
    log::info!("attached {kind} connection from remote peer {from}");
    let mut response = HttpResponse::Ok();
    response.insert_header((name::SERVER_VERSION, SERVER_VERSION));
    response.insert_header((name::CLUSTER_ID, local.cluster_id.to_string()));
    let mut response = response.streaming(body);
    response.head_mut().set_camel_case_headers(true);
    response
}

/// etcd's answer to a refused GET: Go's `http.Error`, with our version
/// and cluster id except on a 405.
fn refuse(local: &LocalMember, refusal: &StreamRefusal) -> HttpResponse {
    log::warn!("{}", refusal.log_text());
    let (status, text) = refusal.status_and_text();
    let status = actix_web::http::StatusCode::from_u16(status).expect("etcd's status codes");
    let mut response = HttpResponse::build(status);
    if matches!(refusal, StreamRefusal::MethodNotAllowed) {
        response.insert_header((header::ALLOW, "GET"));
    } else {
        response.insert_header((name::SERVER_VERSION, SERVER_VERSION));
        response.insert_header((name::CLUSTER_ID, local.cluster_id.to_string()));
    }
    response.insert_header((header::CONTENT_TYPE, GO_TEXT_PLAIN));
    response.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    let mut response = response.body(go_error_body(text));
    response.head_mut().set_camel_case_headers(true);
    response
}

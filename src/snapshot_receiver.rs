//! Receiving streamed snapshots: etcd's `snapshotHandler`
//! (`rafthttp/http.go:200-348`) for `POST /raft/snapshot`, with the
//! database streamed into a [`SnapshotSink`] instead of held in memory.
//!
//! The route is mounted by [`receiver::configure`](crate::receiver::configure)
//! once [`ReceiverConfig::snapshots`](crate::receiver::ReceiverConfig::snapshots)
//! has a sink; the simplest is a directory:
//!
//! ```no_run
//! # use actix::prelude::*;
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::receiver::{self, ReceiverConfig};
//! # use rafthttp_pipeline::snapshot_receiver::{DirSink, SnapshotConfig};
//! # use rafthttp_pipeline::{Id, Inbound};
//! # async fn run(raft: Recipient<Inbound>) -> std::io::Result<()> {
//! let snapshots = SnapshotConfig::new().sink(DirSink::new("/var/lib/member/snap"));
//! let config = ReceiverConfig::new(Id(1), Id(0x1000), raft).snapshots(snapshots);
//! HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .bind(("127.0.0.1", 2380))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! A request goes through etcd's steps in etcd's order: the method, the
//! version and cluster id checks of `/raft`, then the 8-byte length (capped
//! at [`SnapshotConfig::limit_bytes`] before anything is allocated), the
//! `MsgSnap` (400 `failed to decode raft message (<err>)`, 400 `wrong raft
//! message type`), then the database, streamed to the sink until the body
//! ends (500 `failed to save KV snapshot (<err>)`). Only once the sink has
//! committed it does the raft actor get an [`Inbound`] whose `snapshot`
//! says where the database is; its answer becomes the status as for `/raft`
//! (204, a complete 403 for a removed member, or 500 `failed to process
//! raft message (<err>)`).
//!
//! # Memory and threads
//!
//! The database is never collected: at most [`WRITE_BATCH_BYTES`] are
//! buffered, then written by the sink on actix's blocking thread pool while
//! the connection waits, so TCP pushes back on the sender. Memory per
//! transfer is that batch plus the framed message (at most
//! [`SnapshotConfig::limit_bytes`], allocated as it arrives).
//!
//! # Failures and cancellation
//!
//! Whatever goes wrong after the sink began (the body is cut, stalls for
//! [`SnapshotConfig::stall_timeout`], or the sink fails), the writer is
//! dropped without being committed, which discards what it wrote: for a
//! [`DirSink`], the temp file is removed. This holds too when actix-web
//! drops the request's future, e.g. when the peer disconnects.
//!
//! # Streamed or inline?
//!
//! A `MsgSnap` can carry its snapshot inline in `snapshot.data` through the
//! pipeline's `POST /raft`, as etcd's raftexample does: fine for a small
//! state machine, since the whole message is encoded, sent and decoded in
//! memory. A real database goes through `POST /raft/snapshot`:
//! [`SendSnapshot`](crate::SendSnapshot) streams it from any byte stream,
//! this receiver streams it to disk, and memory stays flat on both ends.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::error::PayloadError;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use log::{info, warn};
use prost::Message as _;

use crate::config::SNAPSHOT_STALL_TIMEOUT;
use crate::messages::Inbound;
use crate::raftpb::Message as RaftMessage;
use crate::receiver::{
    check_versions, go_http_error, go_style, method_not_allowed, sender_id, sender_urls, Receiver,
    Rejection,
};
use crate::snapshot::{frame_len, SNAPSHOT_LIMIT_BYTES};
use crate::wire::name;

/// How much of the database is buffered before the sink writes it: 1 MiB.
pub const WRITE_BATCH_BYTES: usize = 1024 * 1024;

/// The most allocated up front for the framed message; it grows as bytes
/// arrive, so a length field alone never costs the full cap.
const INITIAL_MESSAGE_CAPACITY: usize = 64 * 1024;

/// etcd's `ErrExceedSizeLimit` (`rafthttp/msg_codec.go`).
const ERR_EXCEED_SIZE_LIMIT: &str = "rafthttp: error limit exceeded";

/// etcd's answer to a message that is not a `MsgSnap` (`snapshotHandler`,
/// `rafthttp/http.go`).
const ERR_WRONG_TYPE: &str = "wrong raft message type";

/// Where received databases go. The receiver calls it on actix's blocking
/// thread pool, so its methods may block.
///
/// [`begin`](SnapshotSink::begin) is called once per transfer, after the
/// `MsgSnap` was decoded; the writer then gets the database in order, in
/// batches of about [`WRITE_BATCH_BYTES`], and is committed once the body
/// has ended. Several transfers may run at once, each with its own writer.
pub trait SnapshotSink: std::fmt::Debug + Send + Sync {
    /// Starts storing the database of the snapshot at raft index `index`
    /// (the `MsgSnap`'s `snapshot.metadata.index`). An error answers 500
    /// `failed to save KV snapshot (<err>)`.
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>>;
}

/// One database being stored, from [`SnapshotSink::begin`].
///
/// Dropping a writer without [`commit`](SnapshotWriter::commit) must
/// discard what it wrote: that is how every failure, including a cut
/// connection, cleans up. Drop may run on an HTTP worker thread when the
/// request is abandoned, so keep it short.
pub trait SnapshotWriter: Send {
    /// Appends the next bytes of the database.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Makes the database durable and final, and says where it is. Only
    /// after this returns `Ok` does raft hear of the snapshot.
    fn commit(self: Box<Self>) -> io::Result<PathBuf>;
}

/// The file name etcd gives a snapshot database: the index as 16 lower-case
/// hex digits and `.snap.db` (`snap/db.go`, `dbFilePath`).
pub fn db_file_name(index: u64) -> String {
    format!("{index:016x}.snap.db")
}

/// The default sink: etcd's `Snapshotter.SaveDBFrom` (`snap/db.go:36-79`).
///
/// The database is written to a temp file (`tmp...`) in the directory,
/// fsynced, and renamed to [`db_file_name`]`(index)`; the directory is then
/// fsynced too, which etcd does not do. If that file already exists, the
/// temp file is dropped and the save succeeds, as in etcd. The directory
/// is created when missing. On any failure the temp file is removed.
#[derive(Debug, Clone)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// A sink that stores databases in `dir`, etcd's `member/snap`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSink { dir: dir.into() }
    }

    /// The directory the databases go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the database of the snapshot at `index` ends up.
    pub fn path_for(&self, index: u64) -> PathBuf {
        self.dir.join(db_file_name(index))
    }
}

impl SnapshotSink for DirSink {
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        fs::create_dir_all(&self.dir)?;
        let (file, temp) = create_temp_file(&self.dir)?;
        Ok(Box::new(DirWriter {
            file: Some(file),
            temp,
            target: self.path_for(index),
            committed: false,
        }))
    }
}

/// Tells temp files of one process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a new, empty `tmp<pid>-<n>` in `dir`, never reusing a name.
fn create_temp_file(dir: &Path) -> io::Result<(File, PathBuf)> {
    let pid = std::process::id();
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("tmp{pid}-{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A [`DirSink`] transfer: the open temp file and where it goes.
struct DirWriter {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl SnapshotWriter for DirWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(bytes),
            None => Err(io::Error::other("snapshot file already closed")),
        }
    }

    fn commit(mut self: Box<Self>) -> io::Result<PathBuf> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        if self.target.exists() {
            // etcd keeps the database it already has; Drop removes ours.
            return Ok(self.target.clone());
        }
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        sync_dir(&self.target)?;
        Ok(self.target.clone())
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        drop(self.file.take());
        if let Err(e) = fs::remove_file(&self.temp) {
            warn!("failed to remove snapshot temp file {:?}: {e}", self.temp);
        }
    }
}

/// Makes a rename in `file`'s directory durable.
fn sync_dir(file: &Path) -> io::Result<()> {
    match file.parent() {
        Some(dir) if cfg!(unix) => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// Where a received database was stored, in [`Inbound::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSnapshot {
    /// What the sink's [`SnapshotWriter::commit`] returned: for a
    /// [`DirSink`], `<dir>/<index as %016x>.snap.db`.
    pub path: PathBuf,
    /// The database's size: every byte after the message (etcd's `n` from
    /// `SaveDBFrom`).
    pub size: u64,
    /// From the request's arrival until the database was committed (etcd's
    /// `download-took`).
    pub took: Duration,
}

/// How `POST /raft/snapshot` is received, in
/// [`ReceiverConfig::snapshots`](crate::receiver::ReceiverConfig::snapshots).
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// Where databases go (default `None`: `/raft/snapshot` is not mounted
    /// and answers 404, as for any unknown path).
    pub sink: Option<Arc<dyn SnapshotSink>>,
    /// The largest framed `MsgSnap` accepted, checked before anything is
    /// allocated (default [`SNAPSHOT_LIMIT_BYTES`], etcd 3.6.14's
    /// `snapshotLimitByte`). Keep it above the largest `snapshot.data` the
    /// cluster sends; the database itself is not limited.
    pub limit_bytes: u64,
    /// How long the body may send nothing before the transfer fails and
    /// its partial database is discarded (default
    /// [`SNAPSHOT_STALL_TIMEOUT`]).
    pub stall_timeout: Duration,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            sink: None,
            limit_bytes: SNAPSHOT_LIMIT_BYTES,
            stall_timeout: SNAPSHOT_STALL_TIMEOUT,
        }
    }
}

impl SnapshotConfig {
    /// The defaults: no sink, [`SNAPSHOT_LIMIT_BYTES`],
    /// [`SNAPSHOT_STALL_TIMEOUT`].
    pub fn new() -> Self {
        SnapshotConfig::default()
    }

    /// Sets where databases go, e.g. a [`DirSink`]; this mounts the route.
    pub fn sink(mut self, sink: impl SnapshotSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Sets the largest framed `MsgSnap` accepted (default
    /// [`SNAPSHOT_LIMIT_BYTES`]).
    pub fn limit_bytes(mut self, bytes: u64) -> Self {
        self.limit_bytes = bytes;
        self
    }

    /// Sets how long the body may stall (default [`SNAPSHOT_STALL_TIMEOUT`]).
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }
}

/// Why the body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ReadError {
    /// Go's `io.EOF`: the body ended where a read wanted its first byte.
    #[error("EOF")]
    Eof,
    /// Go's `io.ErrUnexpectedEOF`: the body ended inside a read.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// The connection failed or was cut.
    #[error("{0}")]
    Payload(String),
    /// Nothing arrived for the stall timeout.
    #[error("no bytes received for {0:?}")]
    Stalled(Duration),
}

/// Why the framed message could not be read (etcd's `decodeLimit`
/// errors, whose texts go into the 400 answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FrameError {
    /// The length field is over the limit.
    #[error("{ERR_EXCEED_SIZE_LIMIT}")]
    LimitExceeded { len: u64, limit: u64 },
    /// The body ended or failed inside the frame.
    #[error("{0}")]
    Read(ReadError),
    /// The bytes are not a raft message.
    #[error("{0}")]
    Unmarshal(prost::DecodeError),
}

/// etcd's `messageDecoder.decodeLimit` (`rafthttp/msg_codec.go:54-68`) as
/// a push decoder: feed it chunks until it yields the message and the
/// bytes after it.
#[derive(Debug)]
struct FrameDecoder {
    limit: u64,
    length: [u8; 8],
    have: usize,
    message: Option<(usize, BytesMut)>,
}

impl FrameDecoder {
    fn new(limit: u64) -> Self {
        FrameDecoder {
            limit,
            length: [0; 8],
            have: 0,
            message: None,
        }
    }

    /// Takes the next chunk. `Some` holds the message and the rest of the
    /// chunk, the start of the database; feed nothing after it.
    fn feed(&mut self, mut chunk: Bytes) -> Result<Option<(RaftMessage, Bytes)>, FrameError> {
        if self.message.is_none() {
            let take = (8 - self.have).min(chunk.len());
            self.length[self.have..self.have + take].copy_from_slice(&chunk[..take]);
            self.have += take;
            chunk.advance(take);
            if self.have < 8 {
                return Ok(None);
            }
            let len = frame_len(self.length, self.limit).map_err(|_| self.limit_exceeded())?;
            let buf = BytesMut::with_capacity(len.min(INITIAL_MESSAGE_CAPACITY));
            self.message = Some((len, buf));
        }
        let Some((len, buf)) = &mut self.message else {
            return Ok(None);
        };
        let take = (*len - buf.len()).min(chunk.len());
        buf.extend_from_slice(&chunk.split_to(take));
        if buf.len() < *len {
            return Ok(None);
        }
        let message = RaftMessage::decode(std::mem::take(buf).freeze());
        message
            .map(|m| Some((m, chunk)))
            .map_err(FrameError::Unmarshal)
    }

    fn limit_exceeded(&self) -> FrameError {
        FrameError::LimitExceeded {
            len: u64::from_be_bytes(self.length),
            limit: self.limit,
        }
    }

    /// The error for a body that ended before the message was complete:
    /// Go's `io.ReadFull` says `EOF` when a read got no byte at all.
    fn ended(&self) -> FrameError {
        let started = match &self.message {
            None => self.have > 0,
            Some((_, buf)) => !buf.is_empty(),
        };
        FrameError::Read(if started {
            ReadError::UnexpectedEof
        } else {
            ReadError::Eof
        })
    }
}

/// The request body, read chunk by chunk with the stall timeout.
struct Body {
    payload: web::Payload,
    stall: Duration,
}

impl Body {
    async fn next(&mut self) -> Result<Option<Bytes>, ReadError> {
        match actix_web::rt::time::timeout(self.stall, self.payload.next()).await {
            Err(_) => Err(ReadError::Stalled(self.stall)),
            Ok(None) => Ok(None),
            // A body cut short, as Go's readers say it.
            Ok(Some(Err(PayloadError::Incomplete(_)))) => Err(ReadError::UnexpectedEof),
            Ok(Some(Err(e))) => Err(ReadError::Payload(e.to_string())),
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        }
    }

    /// Reads the framed message; returns it with the bytes that came
    /// after it in the same chunk.
    async fn read_frame(&mut self, limit: u64) -> Result<(RaftMessage, Bytes), FrameError> {
        let mut decoder = FrameDecoder::new(limit);
        loop {
            let Some(chunk) = self.next().await.map_err(FrameError::Read)? else {
                return Err(decoder.ended());
            };
            if let Some(done) = decoder.feed(chunk)? {
                return Ok(done);
            }
        }
    }
}

/// Why a `POST /raft/snapshot` failed, with what to log.
#[derive(Debug, thiserror::Error)]
enum SnapshotRejection {
    /// A check shared with `/raft` (version, cluster id, removed member),
    /// answered as `/raft` answers it.
    #[error("{0}")]
    Shared(Rejection),
    #[error("failed to decode Raft message ({0})")]
    Decode(FrameError),
    #[error("unexpected Raft message type {0}")]
    WrongType(i32),
    #[error("failed to save KV snapshot ({0})")]
    Save(String),
    #[error("failed to process Raft message ({0})")]
    Process(String),
}

impl SnapshotRejection {
    /// The status and etcd's body text.
    fn status_and_text(&self) -> (StatusCode, String) {
        match self {
            SnapshotRejection::Shared(shared) => {
                let (status, text) = shared.status_and_text();
                (status, text.to_owned())
            }
            SnapshotRejection::Decode(e) => (
                StatusCode::BAD_REQUEST,
                format!("failed to decode raft message ({e})"),
            ),
            SnapshotRejection::WrongType(_) => (StatusCode::BAD_REQUEST, ERR_WRONG_TYPE.to_owned()),
            SnapshotRejection::Save(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to save KV snapshot ({e})"),
            ),
            SnapshotRejection::Process(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to process raft message ({e})"),
            ),
        }
    }
}

/// One worker's snapshot receiver: the `/raft` receiver for the shared
/// checks and the raft actor, plus the sink and limits.
pub(crate) struct SnapshotReceiver {
    shared: Rc<Receiver>,
    sink: Arc<dyn SnapshotSink>,
    limit_bytes: u64,
    stall_timeout: Duration,
}

impl SnapshotReceiver {
    /// `None` when `config` has no sink: the route is then not mounted.
    pub(crate) fn new(shared: Rc<Receiver>, config: &SnapshotConfig) -> Option<Self> {
        Some(SnapshotReceiver {
            shared,
            sink: config.sink.clone()?,
            limit_bytes: config.limit_bytes,
            stall_timeout: config.stall_timeout,
        })
    }

    /// etcd's steps 3 to 12 for a `POST /raft/snapshot`.
    async fn receive(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> Result<(), SnapshotRejection> {
        let started = Instant::now();
        let headers = req.headers();
        check_versions(headers).map_err(SnapshotRejection::Shared)?;
        self.shared
            .check_cluster_id(headers)
            .map_err(SnapshotRejection::Shared)?;
        let (from, peer_urls) = (sender_id(headers), sender_urls(headers));
        let mut body = Body {
            payload,
            stall: self.stall_timeout,
        };
        let (message, rest) = body
            .read_frame(self.limit_bytes)
            .await
            .map_err(SnapshotRejection::Decode)?;
        if !message.is_snapshot() {
            return Err(SnapshotRejection::WrongType(message.r#type));
        }
        let index = message.snapshot.metadata.index;
        info!(
            "receiving database snapshot (index {index}, message {} bytes, from {})",
            message.encoded_len(),
            message.from
        );
        let (path, size) = save(self.sink.clone(), index, rest, &mut body)
            .await
            .map_err(SnapshotRejection::Save)?;
        let took = started.elapsed();
        info!("received and saved database snapshot {path:?} ({size} bytes in {took:?})");
        let inbound = Inbound {
            message,
            from,
            peer_urls,
            snapshot: Some(ReceivedSnapshot { path, size, took }),
        };
        self.shared.deliver(inbound).await.map_err(|r| match r {
            Rejection::Process(reason) => SnapshotRejection::Process(reason),
            other => SnapshotRejection::Shared(other),
        })
    }
}

/// `/raft/snapshot`: etcd's snapshot handler. As for `/raft`, the 405 has
/// no cluster id and every later answer carries ours.
pub(crate) async fn serve(
    rx: Rc<SnapshotReceiver>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let mut response = match rx.receive(&req, payload).await {
        Ok(()) => go_style(HttpResponse::NoContent().finish()),
        Err(rejection) => {
            log_rejection(&rx, &req, &rejection);
            let (status, text) = rejection.status_and_text();
            go_http_error(status, &text)
        }
    };
    response
        .headers_mut()
        .insert(name::CLUSTER_ID, rx.shared.cluster_id_header.clone());
    response
}

fn log_rejection(rx: &SnapshotReceiver, req: &HttpRequest, rejection: &SnapshotRejection) {
    let remote = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let from = req
        .headers()
        .get(name::SERVER_FROM)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let detail = match rejection {
        SnapshotRejection::Decode(FrameError::LimitExceeded { len, limit }) => {
            format!(", length {len} over limit {limit}")
        }
        _ => String::new(),
    };
    let local = rx.shared.local_id;
    warn!("snapshot: {rejection}{detail} (local {local}, remote {from} at {remote})");
}

/// Streams the database into a writer from `sink`: `first` (the bytes
/// after the message), then the rest of the body, in batches of
/// [`WRITE_BATCH_BYTES`]. Returns where it was committed and its size.
async fn save(
    sink: Arc<dyn SnapshotSink>,
    index: u64,
    first: Bytes,
    body: &mut Body,
) -> Result<(PathBuf, u64), String> {
    let writer = blocking(move || sink.begin(index)).await?;
    let mut guard = WriterGuard(Some(writer));
    let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
    let mut size = first.len() as u64;
    batch.extend_from_slice(&first);
    loop {
        let chunk = match body.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(guard.discard(e.to_string()).await),
        };
        if batch.len() + chunk.len() > WRITE_BATCH_BYTES && !batch.is_empty() {
            batch = guard.write(batch).await?;
        }
        size += chunk.len() as u64;
        batch.extend_from_slice(&chunk);
    }
    if !batch.is_empty() {
        guard.write(batch).await?;
    }
    let path = guard.commit().await?;
    Ok((path, size))
}

/// Holds the writer between blocking calls. Dropped while holding it (a
/// failure, or the request's future dropped), it drops the writer, which
/// discards the partial database.
struct WriterGuard(Option<Box<dyn SnapshotWriter>>);

impl WriterGuard {
    fn take(&mut self) -> Result<Box<dyn SnapshotWriter>, String> {
        self.0
            .take()
            .ok_or_else(|| "snapshot writer already gone".to_owned())
    }

    /// Writes `batch` on the blocking pool; returns it emptied, for reuse.
    async fn write(&mut self, mut batch: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut writer = self.take()?;
        let (writer, batch, written) = web::block(move || {
            let written = writer.write(&batch);
            batch.clear();
            (writer, batch, written)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.0 = Some(writer);
        match written {
            Ok(()) => Ok(batch),
            Err(e) => Err(self.discard(e.to_string()).await),
        }
    }

    async fn commit(&mut self) -> Result<PathBuf, String> {
        let writer = self.take()?;
        blocking(move || writer.commit()).await
    }

    /// Drops the writer on the blocking pool and gives back `reason`.
    async fn discard(&mut self, reason: String) -> String {
        if let Some(writer) = self.0.take() {
            let _ = web::block(move || drop(writer)).await;
        }
        reason
    }
}

/// Runs a blocking sink call on actix's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, String>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match web::block(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

impl std::fmt::Debug for SnapshotReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReceiver")
            .field("sink", &self.sink)
            .field("limit_bytes", &self.limit_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::MessageType;
    use crate::snapshot::frame_head;

    fn snap(index: u64) -> RaftMessage {
        let mut m = RaftMessage {
            r#type: MessageType::MsgSnap as i32,
            to: 2,
            from: 0x1a,
            term: 1,
            ..Default::default()
        };
        m.snapshot.metadata.index = index;
        m
    }

    /// Feeds `bytes` in chunks of `size`; the outcome and the bytes after
    /// the message.
    fn decode(bytes: &[u8], size: usize, limit: u64) -> Result<(RaftMessage, Vec<u8>), FrameError> {
        let mut decoder = FrameDecoder::new(limit);
        let mut chunks = bytes.chunks(size);
        for chunk in chunks.by_ref() {
            if let Some((m, rest)) = decoder.feed(Bytes::copy_from_slice(chunk))? {
                let mut after = rest.to_vec();
                after.extend(chunks.flatten());
                return Ok((m, after));
            }
        }
        Err(decoder.ended())
    }

    #[test]
    fn frames_decode_whatever_the_chunking() {
        let mut body = frame_head(&snap(7)).to_vec();
        body.extend_from_slice(b"hello");
        for size in [1, 3, 8, 9, 30, 38, 39, 1000] {
            let (m, rest) = decode(&body, size, 1024).unwrap();
            assert_eq!(m, snap(7), "chunks of {size}");
            assert_eq!(rest, b"hello", "chunks of {size}");
        }
    }

    #[test]
    fn a_length_over_the_limit_fails_before_the_message() {
        let err = decode(&u64::MAX.to_be_bytes(), 8, SNAPSHOT_LIMIT_BYTES).unwrap_err();
        assert_eq!(err.to_string(), "rafthttp: error limit exceeded");
        let err = decode(&65u64.to_be_bytes(), 3, 64).unwrap_err();
        assert_eq!(err, FrameError::LimitExceeded { len: 65, limit: 64 });
    }

    #[test]
    fn short_bodies_fail_as_gos_read_full() {
        let head = frame_head(&snap(1));
        assert_eq!(decode(b"", 8, 64).unwrap_err().to_string(), "EOF");
        assert_eq!(
            decode(&head[..3], 8, 64).unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert_eq!(decode(&head[..8], 8, 64).unwrap_err().to_string(), "EOF");
        assert_eq!(
            decode(&head[..12], 8, 64).unwrap_err().to_string(),
            "unexpected EOF"
        );
    }

    #[test]
    fn an_empty_message_is_the_zero_message() {
        let (m, rest) = decode(&[0; 8], 8, 64).unwrap();
        assert!(!m.is_snapshot());
        assert!(rest.is_empty());
    }

    #[test]
    fn garbage_is_an_unmarshal_error() {
        let mut body = 3u64.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&body, 8, 64),
            Err(FrameError::Unmarshal(_))
        ));
    }

    #[test]
    fn answers_are_etcds() {
        let cases = [
            (
                SnapshotRejection::Decode(FrameError::Read(ReadError::UnexpectedEof)),
                400,
                "failed to decode raft message (unexpected EOF)",
            ),
            (
                SnapshotRejection::Decode(FrameError::LimitExceeded { len: 9, limit: 8 }),
                400,
                "failed to decode raft message (rafthttp: error limit exceeded)",
            ),
            (
                SnapshotRejection::WrongType(3),
                400,
                "wrong raft message type",
            ),
            (
                SnapshotRejection::Save("disk full".into()),
                500,
                "failed to save KV snapshot (disk full)",
            ),
            (
                SnapshotRejection::Process("raft: stopped".into()),
                500,
                "failed to process raft message (raft: stopped)",
            ),
        ];
        for (rejection, status, text) in cases {
            let (s, t) = rejection.status_and_text();
            assert_eq!((s.as_u16(), t.as_str()), (status, text));
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rafthttp-snapshot-receiver-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn dir_sink_renames_a_committed_database_to_etcds_name() {
        let dir = temp_dir("commit");
        let sink = DirSink::new(&dir);
        let mut writer = sink.begin(0x2a).unwrap();
        writer.write(b"hel").unwrap();
        writer.write(b"lo").unwrap();
        let path = writer.commit().unwrap();
        assert_eq!(path, dir.join("000000000000002a.snap.db"));
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(entries(&dir), ["000000000000002a.snap.db"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dir_sink_keeps_an_existing_database() {
        let dir = temp_dir("exists");
        let sink = DirSink::new(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(sink.path_for(1), b"old").unwrap();
        let mut writer = sink.begin(1).unwrap();
        writer.write(b"new").unwrap();
        assert_eq!(writer.commit().unwrap(), sink.path_for(1));
        assert_eq!(fs::read(sink.path_for(1)).unwrap(), b"old");
        assert_eq!(entries(&dir), ["0000000000000001.snap.db"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dir_sink_removes_the_temp_file_of_a_dropped_writer() {
        let dir = temp_dir("drop");
        let sink = DirSink::new(&dir);
        let mut writer = sink.begin(1).unwrap();
        writer.write(b"partial").unwrap();
        assert_eq!(entries(&dir).len(), 1);
        assert!(entries(&dir)[0].starts_with("tmp"));
        drop(writer);
        assert!(entries(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}

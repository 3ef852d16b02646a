//! `POST /raft/snapshot`: etcd's `snapshotHandler`
//! (`rafthttp/http.go:200-348`), with the database streamed into a
//! [`SnapshotSink`] instead of held in memory.
//!
//! The checks of `/raft` (method, versions, cluster id), then the frame
//! (its length capped before anything is allocated), the `MsgSnap` check,
//! then the database, streamed to the sink in batches on the blocking
//! pool until the body ends. Only once the sink committed it does the raft
//! actor hear of the snapshot.

use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use log::info;
use prost::Message as _;

use super::answer::{Rejection, Route};
use super::budget::Lease;
use super::checks::{check_method, declared_length};
use super::inflow::{close_if_unread, Inflow, ReadError};
use super::sink::{SnapshotSink, SnapshotWriter};
use super::worker::{peer_headers, Worker};
use crate::config::SNAPSHOT_STALL_TIMEOUT;
use crate::id::Id;
use crate::messages::{Inbound, ReceivedSnapshot};
use crate::metrics::Metrics;
use crate::snapshot::{FrameDecoder, FrameError, SNAPSHOT_LIMIT_BYTES};

/// How much of the database is buffered before the sink writes it: 1 MiB.
pub const WRITE_BATCH_BYTES: usize = 1024 * 1024;

/// How `POST /raft/snapshot` is received, in
/// [`ReceiverConfig::snapshots`](super::ReceiverConfig::snapshots).
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
    /// The largest database accepted, in bytes (default `None`: no limit,
    /// as in etcd). A larger one is refused with 413 as soon as the bytes
    /// written pass it, or before anything is written when the
    /// `Content-Length` already says so; its temp file is removed.
    pub max_db_bytes: Option<u64>,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            sink: None,
            limit_bytes: SNAPSHOT_LIMIT_BYTES,
            stall_timeout: SNAPSHOT_STALL_TIMEOUT,
            max_db_bytes: None,
        }
    }
}

impl SnapshotConfig {
    /// The defaults: no sink, [`SNAPSHOT_LIMIT_BYTES`],
    /// [`SNAPSHOT_STALL_TIMEOUT`].
    pub fn new() -> Self {
        SnapshotConfig::default()
    }

    /// Sets where databases go, e.g. a [`DirSink`](super::DirSink); this
    /// mounts the route.
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

    /// Sets the largest database accepted (default: no limit).
    pub fn max_db_bytes(mut self, bytes: u64) -> Self {
        self.max_db_bytes = Some(bytes);
        self
    }
}

/// One worker's snapshot route: the worker for the shared checks and the
/// raft actor, plus the sink and limits.
pub(crate) struct SnapshotReceiver {
    worker: Rc<Worker>,
    sink: Arc<dyn SnapshotSink>,
    limit_bytes: u64,
    stall_timeout: Duration,
    max_db_bytes: Option<u64>,
}

impl std::fmt::Debug for SnapshotReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReceiver")
            .field("sink", &self.sink)
            .field("limit_bytes", &self.limit_bytes)
            .finish()
    }
}

impl SnapshotReceiver {
    /// `None` when `config` has no sink: the route is then not mounted.
    pub(crate) fn new(worker: Rc<Worker>, config: &SnapshotConfig) -> Option<Self> {
        Some(SnapshotReceiver {
            worker,
            sink: config.sink.clone()?,
            limit_bytes: config.limit_bytes,
            stall_timeout: config.stall_timeout,
            max_db_bytes: config.max_db_bytes,
        })
    }

    /// etcd's steps 3 to 12 for a `POST /raft/snapshot`, with our bounds:
    /// requests in flight from the sender, the memory budget for the
    /// frame, the decode bound, the database's size.
    async fn receive(
        &self,
        req: &HttpRequest,
        payload: &mut web::Payload,
    ) -> Result<(), Rejection> {
        let started = Instant::now();
        let count = |f: &dyn Fn(&Metrics)| self.worker.count(f);
        // Refused before the sender is known: etcd's UNKNOWN_SNAPSHOT_SENDER.
        let refused = |_: &_| count(&|m| m.snapshot_receive_failed(None));
        check_method(req.method().as_str(), "POST").inspect_err(refused)?;
        let headers = peer_headers(req.headers());
        let sender = self.worker.checks.check(&headers).inspect_err(refused)?;
        let _slot = self
            .worker
            .admit(req, &sender)
            .inspect_err(|_| count(&|m| m.snapshot_receive_failed(sender.from)))?;
        let mut body = Inflow::new(payload, self.stall_timeout);
        let mut lease = self.worker.budget.lease();
        let unread = |_: &Rejection| {
            count(&|m| {
                m.receive_failed(sender.from);
                m.snapshot_receive_failed(sender.from);
            })
        };
        let (encoded, rest) = read_frame(&mut body, self.limit_bytes, &mut lease)
            .await
            .inspect_err(unread)?;
        let framed = (FRAME_LEN_BYTES + encoded.len()) as u64;
        let unmarshal = |e| Rejection::Decode(FrameError::Unmarshal(e));
        let message = self
            .worker
            .decode(encoded, &mut lease, unmarshal)
            .inspect_err(unread)?;
        // From here etcd labels everything with the message's `From`.
        let from = Id(message.from);
        let failed = |_: &Rejection| count(&|m| m.snapshot_receive_failed(Some(from)));
        count(&|m| m.received(from, message.encoded_len() as u64));
        if !message.is_snapshot() {
            let wrong = Err(Rejection::WrongType(message.r#type));
            return wrong.inspect_err(failed);
        }
        let _in_flight = self
            .worker
            .metrics()
            .map(|m| m.snapshot_receive_started(from));
        let declared_db = declared_length(headers.content_length).map(|n| n.saturating_sub(framed));
        check_db_size(declared_db, self.max_db_bytes).inspect_err(failed)?;
        let index = message.snapshot.metadata.index;
        info!(
            "receiving database snapshot (index {index}, message {} bytes, from {})",
            message.encoded_len(),
            message.from
        );
        let target = Target {
            sink: self.sink.clone(),
            index,
            max_bytes: self.max_db_bytes,
        };
        let (path, size) = save(target, rest, &mut body).await.inspect_err(failed)?;
        count(&|m| m.received(from, size));
        let took = started.elapsed();
        info!("received and saved database snapshot {path:?} ({size} bytes in {took:?})");
        let inbound = Inbound {
            message,
            from: sender.from,
            peer_urls: sender.peer_urls,
            snapshot: Some(ReceivedSnapshot { path, size, took }),
        };
        self.worker.deliver(inbound).await.inspect_err(failed)?;
        count(&|m| m.snapshot_received(from, started.elapsed()));
        Ok(())
    }
}

/// The frame's length field (etcd's `messageEncoder`): 8 bytes.
const FRAME_LEN_BYTES: usize = 8;

/// Refuses a database of `size` bytes over `max` (413).
fn check_db_size(size: Option<u64>, max: Option<u64>) -> Result<(), Rejection> {
    match (size, max) {
        (Some(size), Some(limit)) if size > limit => Err(Rejection::DbTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Serves one `POST /raft/snapshot`.
pub(crate) async fn serve(
    rx: Rc<SnapshotReceiver>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    let outcome = rx.receive(&req, &mut payload).await;
    let response = rx.worker.answers.respond(Route::Snapshot, &req, outcome);
    close_if_unread(response, payload)
}

impl From<ReadError> for FrameError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::UnexpectedEof => FrameError::UnexpectedEof,
            other => FrameError::Read(other.to_string()),
        }
    }
}

/// Reads the framed message, each chunk charged to `lease` before it is
/// buffered; returns the encoded message with the bytes that came after
/// it in the same chunk.
async fn read_frame(
    body: &mut Inflow<'_>,
    limit: u64,
    lease: &mut Lease,
) -> Result<(Bytes, Bytes), Rejection> {
    let mut decoder = FrameDecoder::new(limit);
    loop {
        let next = body.next().await.map_err(FrameError::from);
        let Some(chunk) = next.map_err(Rejection::Decode)? else {
            return Err(Rejection::Decode(decoder.ended()));
        };
        lease.grow(chunk.len())?;
        if let Some(done) = decoder.feed(chunk).map_err(Rejection::Decode)? {
            return Ok(done);
        }
    }
}

/// Where one database goes: the sink, the snapshot's index, and the
/// largest size accepted.
struct Target {
    sink: Arc<dyn SnapshotSink>,
    index: u64,
    max_bytes: Option<u64>,
}

/// Streams the database into a writer from the target's sink: `first`
/// (the bytes after the message), then the rest of the body, in batches of
/// [`WRITE_BATCH_BYTES`], refusing it once it passes the target's largest
/// size. Returns where it was committed and its size.
async fn save(
    target: Target,
    first: Bytes,
    body: &mut Inflow<'_>,
) -> Result<(PathBuf, u64), Rejection> {
    let Target {
        sink,
        index,
        max_bytes,
    } = target;
    let writer = blocking(move || sink.begin(index))
        .await
        .map_err(Rejection::Save)?;
    let mut guard = WriterGuard(Some(writer));
    let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
    let mut size = 0;
    let mut next = Some(first);
    loop {
        let Some(chunk) = next else {
            break;
        };
        size += chunk.len() as u64;
        if let Err(too_large) = check_db_size(Some(size), max_bytes) {
            guard.discard(String::new()).await;
            return Err(too_large);
        }
        if batch.len() + chunk.len() > WRITE_BATCH_BYTES && !batch.is_empty() {
            batch = guard.write(batch).await.map_err(Rejection::Save)?;
        }
        batch.extend_from_slice(&chunk);
        next = match body.next().await {
            Ok(chunk) => chunk,
            Err(e) => return Err(Rejection::Save(guard.discard(e.to_string()).await)),
        };
    }
    if !batch.is_empty() {
        guard.write(batch).await.map_err(Rejection::Save)?;
    }
    let path = guard.commit().await.map_err(Rejection::Save)?;
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

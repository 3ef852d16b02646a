//! The snapshot sink: the receiver's directory sink, observed, failing the
//! first transfers on demand (`--fail-mode 500`).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rafthttp_pipeline::snapshot_receiver::{DirSink, SnapshotSink, SnapshotWriter};
use serde_json::json;

use super::events::{memory, Events};

/// The stand-in's snapshot sink: the receiver's [`DirSink`] (a temp file,
/// fsynced, renamed to `%016x.snap.db`), numbering the transfers and
/// reporting each one, and failing the first ones on demand
/// (`--fail-snapshots N --fail-mode 500`).
#[derive(Debug)]
pub struct StandInSink {
    dir: DirSink,
    attempts: AtomicU64,
    fail_first: u64,
    events: Events,
}

impl StandInSink {
    /// Stores into `dir`; the first `fail_first` transfers fail after their
    /// first write.
    pub fn new(dir: impl Into<PathBuf>, fail_first: u64, events: Events) -> StandInSink {
        StandInSink {
            dir: DirSink::new(dir),
            attempts: AtomicU64::new(0),
            fail_first,
            events,
        }
    }
}

impl SnapshotSink for StandInSink {
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let inject = attempt <= self.fail_first;
        self.events.detail(|| {
            json!({"event": "snapshot_begin", "attempt": attempt, "index": index, "inject": inject})
        });
        let inner = self.dir.begin(index)?;
        Ok(Box::new(StandInWriter {
            inner: Some(inner),
            attempt,
            index,
            written: 0,
            inject,
            events: self.events,
        }))
    }
}

/// One transfer into a [`StandInSink`].
struct StandInWriter {
    inner: Option<Box<dyn SnapshotWriter>>,
    attempt: u64,
    index: u64,
    written: u64,
    inject: bool,
    events: Events,
}

impl StandInWriter {
    fn injected(&self) -> io::Error {
        io::Error::other(format!(
            "injected failure of snapshot transfer {} (--fail-snapshots)",
            self.attempt
        ))
    }
}

impl SnapshotWriter for StandInWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.inject && self.written > 0 {
            return Err(self.injected());
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("snapshot writer already closed"))?;
        inner.write(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<PathBuf> {
        if self.inject {
            return Err(self.injected());
        }
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("snapshot writer already closed"))?;
        let path = inner.commit()?;
        let (attempt, index, written) = (self.attempt, self.index, self.written);
        self.events.detail(|| {
            json!({"event": "snapshot_committed", "attempt": attempt, "index": index,
                   "written": written, "path": path.display().to_string()})
        });
        Ok(path)
    }
}

impl Drop for StandInWriter {
    fn drop(&mut self) {
        // Not committed: dropping the directory writer removes its temp
        // file. Report only once that is done.
        if let Some(inner) = self.inner.take() {
            drop(inner);
            let (attempt, index, written) = (self.attempt, self.index, self.written);
            self.events.detail(|| {
                json!({"event": "snapshot_discarded", "attempt": attempt, "index": index,
                       "written": written, "memory": memory()})
            });
        }
    }
}

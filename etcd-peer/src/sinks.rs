//! The snapshot sink: the receiver's directory sink, observed, failing the
//! first transfers on demand (`--fail-mode 500`).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rafthttp_pipeline::receiver::{DirSink, SnapshotSink, SnapshotWriter};
use serde_json::json;

use crate::events::{memory, Events};

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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rafthttp_pipeline::receiver::SnapshotSink;

    use super::StandInSink;
    use crate::events::Events;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir()
                .join(format!("etcd-peer-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_sink_fails_the_first_transfers_leaving_no_temp_file_then_stores() {
        let dir = Scratch::new("sink");
        let sink = StandInSink::new(&dir.0, 2, Events::new(false));
        for _ in 0..2 {
            let mut w = sink.begin(7).unwrap();
            w.write(b"first batch").unwrap();
            assert_eq!(dir.files().len(), 1, "a temp file with data");
            assert!(w.write(b"second batch").is_err(), "injected");
            drop(w);
            assert!(dir.files().is_empty(), "{:?}", dir.files());
        }
        let mut w = sink.begin(7).unwrap();
        w.write(b"first batch").unwrap();
        w.write(b"second batch").unwrap();
        let path = w.commit().unwrap();
        assert_eq!(path, dir.0.join("0000000000000007.snap.db"));
        assert_eq!(dir.files(), ["0000000000000007.snap.db"]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"first batchsecond batch".to_vec()
        );
        // A writer that fails on commit (a one-batch database) cleans up too.
        let sink = StandInSink::new(&dir.0, 1, Events::new(false));
        let mut w = sink.begin(8).unwrap();
        w.write(b"only batch").unwrap();
        assert!(w.commit().is_err());
        assert_eq!(dir.files(), ["0000000000000007.snap.db"]);
    }
}

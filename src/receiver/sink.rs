//! Where received snapshot databases are stored: the [`SnapshotSink`]
//! trait and the default [`DirSink`], etcd's `Snapshotter.SaveDBFrom`
//! (`snap/db.go`). Storage only, like etcd's `snap` package: no HTTP, no
//! actix; the `/raft/snapshot` handler calls it on the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use log::warn;

/// Where received databases go. The receiver calls it on actix's blocking
/// thread pool, so its methods may block.
///
/// [`begin`](SnapshotSink::begin) is called once per transfer, after the
/// `MsgSnap` was decoded; the writer then gets the database in order, in
/// batches of about [`WRITE_BATCH_BYTES`](super::WRITE_BATCH_BYTES), and
/// is committed once the body has ended. Several transfers may run at
/// once, each with its own writer.
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

#[cfg(test)]
mod tests {
    use super::*;

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

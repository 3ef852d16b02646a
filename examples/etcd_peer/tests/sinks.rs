//! The snapshot sink and its injected failures.

use std::path::PathBuf;

use rafthttp_pipeline::snapshot_receiver::SnapshotSink;

use super::super::events::Events;
use super::super::sinks::StandInSink;

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("etcd-peer-{name}-{}-{nanos}", std::process::id()));
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

//! Replays every saved input through its harness: the seeds, and every
//! crash a fuzz run found (`regressions/<target>/`), so none comes back.
//! The seeds also show that the harnesses reach the deep paths: a valid
//! message and a valid snapshot are taken (204).

use std::fs;
use std::path::{Path, PathBuf};

use rafthttp_fuzz::{raftpb, Target};

/// The files of `fuzz/<dir>/<target>/`, sorted.
fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.expect("a dir entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    files.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).expect("read an input");
            (p, data)
        })
        .collect()
}

fn all(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = inputs("seeds", target);
    files.extend(inputs("regressions", target));
    files
}

#[test]
fn request_inputs_never_panic_and_every_one_is_answered() {
    let t = Target::new();
    let files = all("request");
    assert!(files.len() >= 8, "the seeds are there");
    for (path, data) in files {
        let status = t.request(&data);
        assert!(status.is_some(), "{} answered", path.display());
    }
}

#[test]
fn valid_seeds_reach_raft() {
    let t = Target::new();
    let seed = |name: &str| fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap();
    assert_eq!(t.request(&seed("seeds/request/raft_heartbeat")), Some(204));
    assert_eq!(
        t.request(&seed("seeds/request/raft_append_removed")),
        Some(403)
    );
    assert_eq!(
        t.request(&seed("seeds/request/raft_wrong_cluster")),
        Some(412)
    );
    assert_eq!(t.request(&seed("seeds/request/snapshot_frame")), Some(204));
    assert_eq!(t.snapshot(&seed("seeds/snapshot/frame")), Some(204));
}

#[test]
fn snapshot_inputs_never_panic() {
    let t = Target::new();
    for (path, data) in all("snapshot") {
        assert!(t.snapshot(&data).is_some(), "{} answered", path.display());
    }
}

#[test]
fn raftpb_inputs_round_trip() {
    let files = all("raftpb");
    assert!(files.len() >= 10, "the seeds are there");
    for (_, data) in files {
        raftpb(&data);
    }
}

//! Peak memory of a streamed snapshot, sender and receiver in separate
//! processes: a [`PipelineActor`] sends a database (1 GiB by default) with
//! [`SendSnapshot`] to our receiver, which stores it with a [`DirSink`].
//! Each side prints its peak RSS (`VmHWM` from `/proc/self/status`), and
//! both compute a SHA-1 of the bytes on the fly, which must agree.
//!
//! ```text
//! cargo run --release -p rafthttp-bench --bin snapshot_memory [-- BYTES]
//! ```
//!
//! The example runs itself twice more: `receive DIR` and `send URL BYTES`.
//! It exits non-zero when the transfer fails or the checksums differ; the
//! goal (under 64 MiB each) is printed, not enforced.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use futures::channel::oneshot;
use futures::StreamExt;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::receiver::{DirSink, SnapshotConfig, SnapshotSink, SnapshotWriter};
use rafthttp_pipeline::*;
use sha1::{Digest, Sha1};

const CLUSTER: Id = Id(0x1000);
const SENDER: Id = Id(1);
const RECEIVER: Id = Id(2);
const DEFAULT_BYTES: u64 = 1024 * 1024 * 1024;
const GOAL_KIB: u64 = 64 * 1024;
const CHUNK: usize = 64 * 1024;

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn main() -> Outcome {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("receive") => receive(Path::new(arg(&args, 1)?)),
        Some("send") => send(arg(&args, 1)?, arg(&args, 2)?.parse()?),
        Some(bytes) => run(bytes.parse()?),
        None => run(DEFAULT_BYTES),
    }
}

fn arg(args: &[String], i: usize) -> Result<&str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}"))
}

// ------------------------------------------------------------------ parent

/// Starts both sides, relays what they print, and sums it up.
fn run(bytes: u64) -> Outcome {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("rafthttp-snapshot-memory-{}", std::process::id()));
    let outcome = run_in(&exe, &dir, bytes);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn run_in(exe: &Path, dir: &Path, bytes: u64) -> Outcome {
    let mut receiver = spawn(exe, &["receive".as_ref(), dir.as_os_str()])?;
    let mut from_receiver = lines(&mut receiver)?;
    let port = expect_field(&mut from_receiver, "port")?;
    let url = format!("http://127.0.0.1:{port}");
    let mut sender = spawn(
        exe,
        &["send".as_ref(), url.as_ref(), bytes.to_string().as_ref()],
    )?;
    let mut from_sender = lines(&mut sender)?;
    let sent_sha1 = expect_field(&mut from_sender, "sha1")?;
    let sent_ms: u64 = expect_field(&mut from_sender, "ms")?.parse()?;
    let sender_kib: u64 = expect_field(&mut from_sender, "vmhwm_kib")?.parse()?;
    let received_sha1 = expect_field(&mut from_receiver, "sha1")?;
    let stored = expect_field(&mut from_receiver, "stored")?;
    // Closing its stdin tells the receiver it may measure and exit.
    drop(receiver.stdin.take());
    let receiver_kib: u64 = expect_field(&mut from_receiver, "vmhwm_kib")?.parse()?;
    let (s, r) = (sender.wait()?, receiver.wait()?);
    if !s.success() || !r.success() {
        return Err(format!("sender {s}, receiver {r}").into());
    }

    let secs = Duration::from_millis(sent_ms).as_secs_f64();
    println!(
        "moved {bytes} bytes in {secs:.2} s ({:.0} MiB/s), stored as {stored}",
        bytes as f64 / (1024.0 * 1024.0) / secs.max(0.001)
    );
    println!("sha1 sender   {sent_sha1}");
    println!("sha1 receiver {received_sha1}");
    report("sender", sender_kib);
    report("receiver", receiver_kib);
    if sent_sha1 != received_sha1 {
        return Err("checksums differ".into());
    }
    Ok(())
}

fn report(side: &str, kib: u64) {
    let verdict = if kib < GOAL_KIB { "under" } else { "OVER" };
    println!(
        "{side:<8} peak RSS (VmHWM) {:.1} MiB, {verdict} the 64 MiB goal",
        kib as f64 / 1024.0
    );
}

fn spawn(exe: &Path, args: &[&std::ffi::OsStr]) -> io::Result<Child> {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

fn lines(child: &mut Child) -> io::Result<io::Lines<BufReader<ChildStdout>>> {
    let out = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    Ok(BufReader::new(out).lines())
}

/// Reads `key value` lines until `key` comes; returns its value.
fn expect_field(
    lines: &mut io::Lines<BufReader<ChildStdout>>,
    key: &str,
) -> Result<String, String> {
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some((k, v)) = line.split_once(' ') {
            if k == key {
                return Ok(v.to_owned());
            }
        }
    }
    Err(format!("the child ended before printing {key}"))
}

/// Prints `key value` for the parent.
fn tell(key: &str, value: impl std::fmt::Display) {
    println!("{key} {value}");
    let _ = io::stdout().flush();
}

/// This process's peak resident set size, in KiB.
fn vmhwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- receiver

/// A [`DirSink`] that also hashes what it stores.
#[derive(Debug)]
struct HashingDir {
    dir: DirSink,
    sha1: Arc<Mutex<Option<String>>>,
}

impl SnapshotSink for HashingDir {
    fn begin(&self, index: u64) -> io::Result<Box<dyn SnapshotWriter>> {
        Ok(Box::new(HashingWriter {
            inner: self.dir.begin(index)?,
            hasher: Sha1::new(),
            sha1: self.sha1.clone(),
        }))
    }
}

struct HashingWriter {
    inner: Box<dyn SnapshotWriter>,
    hasher: Sha1,
    sha1: Arc<Mutex<Option<String>>>,
}

impl SnapshotWriter for HashingWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write(bytes)
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        let path = self.inner.commit()?;
        let digest = self.hasher.finalize();
        *self.sha1.lock().map_err(|_| io::Error::other("poisoned"))? = Some(hex(&digest));
        Ok(path)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The receiving raft actor: tells the parent where the database went.
struct Follower {
    sha1: Arc<Mutex<Option<String>>>,
}

impl Actor for Follower {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Follower {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let Some(stored) = inbound.snapshot else {
            return Ok(());
        };
        let sha1 = self.sha1.lock().ok().and_then(|s| s.clone());
        tell("sha1", sha1.unwrap_or_default());
        tell(
            "stored",
            format!("{} ({} bytes)", stored.path.display(), stored.size),
        );
        // The database has served its purpose; do not leave 1 GiB behind.
        let _ = std::fs::remove_file(&stored.path);
        Ok(())
    }
}

fn receive(dir: &Path) -> Outcome {
    let dir = dir.to_owned();
    System::new().block_on(async move {
        let sha1 = Arc::new(Mutex::new(None));
        let follower = Follower { sha1: sha1.clone() }.start();
        let sink = HashingDir {
            dir: DirSink::new(dir),
            sha1,
        };
        let config =
            ReceiverConfig::new(&LocalMember::new(RECEIVER, CLUSTER), follower.recipient())
                .snapshots(SnapshotConfig::new().sink(sink));
        let server =
            HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))?;
        tell("port", server.addrs()[0].port());
        let server = server.run();
        let handle = server.handle();
        actix::spawn(server);
        stdin_closed().await;
        handle.stop(true).await;
        tell("vmhwm_kib", vmhwm_kib());
        Ok(())
    })
}

/// Resolves once the parent closes our stdin.
async fn stdin_closed() {
    let (tx, rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        let _ = tx.send(());
    });
    let _ = rx.await;
}

// ------------------------------------------------------------------ sender

/// The sending raft actor: waits for the snapshot's outcome.
struct Leader {
    done: Option<oneshot::Sender<SnapshotStatus>>,
}

impl Actor for Leader {
    type Context = Context<Self>;
}

impl Handler<ReportSnapshot> for Leader {
    type Result = ();

    fn handle(&mut self, r: ReportSnapshot, _: &mut Context<Self>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(r.status);
        }
    }
}

impl Handler<ReportUnreachable> for Leader {
    type Result = ();

    fn handle(&mut self, r: ReportUnreachable, _: &mut Context<Self>) {
        eprintln!("snapshot_memory: peer {} unreachable: {}", r.to, r.reason);
    }
}

/// `bytes` pseudo-random bytes, made as they are sent, hashed on the way.
fn database(bytes: u64, hasher: Arc<Mutex<Sha1>>) -> rafthttp_pipeline::SnapshotBody {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let block: Bytes = (0..(1 << 20) + 13)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let chunks = futures::stream::unfold(0u64, move |pos| {
        let left = bytes - pos;
        let start = (pos % block.len() as u64) as usize;
        let len = CHUNK.min(block.len() - start).min(left as usize);
        let chunk = (left > 0).then(|| (block.slice(start..start + len), pos + len as u64));
        futures::future::ready(chunk)
    });
    Box::pin(chunks.map(move |chunk| {
        if let Ok(mut h) = hasher.lock() {
            h.update(&chunk);
        }
        Ok(chunk)
    }))
}

fn send(url: &str, bytes: u64) -> Outcome {
    let url = url.to_owned();
    System::new().block_on(async move {
        let (tx, rx) = oneshot::channel();
        let leader = Leader { done: Some(tx) }.start();
        let config = PipelineConfig::new(&LocalMember::new(SENDER, CLUSTER), RECEIVER, vec![url]);
        let pipeline = PipelineActor::start(config, Recipients::from_addr(&leader))?;
        let mut message = Message {
            r#type: MessageType::MsgSnap as i32,
            to: RECEIVER.0,
            from: SENDER.0,
            term: 2,
            ..Default::default()
        };
        message.snapshot.metadata.index = 42;
        let hasher = Arc::new(Mutex::new(Sha1::new()));
        let body = database(bytes, hasher.clone());
        let started = Instant::now();
        pipeline
            .send(SendSnapshot {
                message,
                body,
                size: bytes,
            })
            .await??;
        let status = rx.await?;
        let took = started.elapsed();
        let stats = pipeline.send(Stop).await?;
        if status != SnapshotStatus::Finish || stats.delivered != 1 {
            return Err(format!("snapshot {status:?}, {stats:?}").into());
        }
        let digest = hasher.lock().map_err(|_| "poisoned")?.clone().finalize();
        tell("sha1", hex(&digest));
        tell("ms", took.as_millis());
        tell("vmhwm_kib", vmhwm_kib());
        Ok(())
    })
}

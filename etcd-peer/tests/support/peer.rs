//! The stand-in member, this crate's `etcd-peer` binary, as a child process.
//!
//! [`Peer::spawn`] runs the binary cargo built for these tests
//! (`CARGO_BIN_EXE_etcd-peer`), so a test always drives the current code.
//! The JSON lines it prints on stdout arrive as events, in order, through a
//! reader thread; its log (stderr, `RUST_LOG=info`) goes to a file whose tail
//! is shown when a test fails. Dropping a [`Peer`] kills the process by PID
//! and reaps it, pass or fail; the kernel also kills it if the thread that
//! started it dies first (`PR_SET_PDEATHSIG`), so none outlives a test.

#![allow(dead_code)] // each test binary uses a different part of it

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::etcd::die_with_parent;

/// The binary under test.
pub const ETCD_PEER: &str = env!("CARGO_BIN_EXE_etcd-peer");

/// An `etcd-peer` in a child process, with the JSON lines it prints on
/// stdout as events.
pub struct Peer {
    name: String,
    child: Child,
    /// Its exit status, once reaped.
    status: Option<ExitStatus>,
    events: Receiver<Value>,
    /// Every event received so far, in order.
    seen: Vec<Value>,
    log_path: PathBuf,
}

impl Peer {
    /// Starts `etcd-peer` with `args`; its log goes to `<dir>/<name>.log`.
    pub fn spawn(name: &str, args: &[String], dir: &Path) -> Peer {
        let log_path = dir.join(format!("{name}.log"));
        let log = File::create(&log_path).expect("create the member's log");
        let mut cmd = Command::new(ETCD_PEER);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn etcd-peer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            }
        });
        Peer {
            name: name.to_owned(),
            child,
            status: None,
            events,
            seen: Vec::new(),
            log_path,
        }
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of our own unreaped child.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill {signal} {}", self.pid());
    }

    /// Waits, at most `bound`, for an event that `wanted` accepts; keeps
    /// every event on the way in `seen`. `Err` says why there was none;
    /// when the process closed its stdout, it is reaped and its status kept.
    pub fn try_wait_for(
        &mut self,
        bound: Duration,
        mut wanted: impl FnMut(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return Ok(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(format!("none within {bound:?}")),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.reap();
                    return Err(format!("{} exited ({status:?})", self.name));
                }
            }
        }
    }

    /// [`try_wait_for`](Self::try_wait_for), failing the test with the
    /// member's last events and log tail.
    pub fn wait_for(
        &mut self,
        what: &str,
        bound: Duration,
        wanted: impl FnMut(&Value) -> bool,
    ) -> Value {
        self.try_wait_for(bound, wanted).unwrap_or_else(|why| {
            panic!(
                "{}: no {what}: {why}\nlast events: {:?}\nlog tail:\n{}",
                self.name,
                &self.seen[self.seen.len().saturating_sub(5)..],
                self.log_tail(30)
            )
        })
    }

    /// Events received so far of type `event`.
    pub fn seen(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    /// The ids the member derived from its flags, its first line:
    /// `{"member_id":…,"cluster_id":…,"members":{name: id}}`.
    pub fn identity(&self) -> Value {
        self.seen
            .iter()
            .find(|e| e.get("member_id").is_some())
            .cloned()
            .unwrap_or_else(|| panic!("{}: no identity line yet", self.name))
    }

    /// The member's message counts now: SIGUSR2, then the counts line it
    /// prints in answer, waited for at most `bound`. For a member started
    /// without `--stats-every`, whose only other counts line is its last.
    pub fn counts(&mut self, bound: Duration) -> Value {
        self.signal(libc::SIGUSR2);
        self.wait_for("counts after SIGUSR2", bound, is_counts)
    }

    /// The last counts line received (at exit, after [`stop`](Self::stop)).
    pub fn last_counts(&self) -> Option<Value> {
        self.seen.iter().rev().find(|e| is_counts(e)).cloned()
    }

    /// SIGTERM, then every event up to the end of its output, within
    /// `bound`; fails the test unless it exits cleanly (it is killed on
    /// drop otherwise).
    pub fn stop(&mut self, bound: Duration) {
        if self.status.is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        let why = match self.try_wait_for(bound, |_| false) {
            Ok(_) => unreachable!("no event is wanted"),
            Err(why) => why,
        };
        match self.status {
            Some(status) => assert!(status.success(), "{} exited with {status}", self.name),
            None => panic!(
                "{} still running after SIGTERM: {why}\nlog tail:\n{}",
                self.name,
                self.log_tail(30)
            ),
        }
    }

    /// Waits for the process, whose stdout is closed, and keeps its status.
    fn reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        self.status
    }

    /// The last `lines` lines the member logged.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Whether `event` is a counts line (`{"in":{…},"out":{…},…}`).
fn is_counts(event: &Value) -> bool {
    event.get("in").is_some()
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Child::kill sends SIGKILL to this PID; wait reaps it.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- {} log tail ---\n{}", self.name, self.log_tail(40));
        }
    }
}

//! The sender's end of the receiver child: started from this same binary
//! with `--role receiver`, spoken to over its stdin and stdout (see
//! `receiver.rs` for the protocol), and stopped by PID at the end.

use std::io::{BufRead, BufReader, Write};

use futures::channel::mpsc::{unbounded, TryRecvError, UnboundedReceiver};
use futures::StreamExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the child may take to say `READY`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may take beyond the wait it was asked for.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the child may take to exit after `QUIT` before it is killed.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `READY` is looked for at start.
const READY_POLL: Duration = Duration::from_millis(1);

/// The receiver's own figures, from its `STATS` line.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverStats {
    pub processed: u64,
    pub payload_bytes: u64,
    /// Of `processed`, those that came by a stream (`--streams`).
    pub by_stream: u64,
    pub hwm_kb: i64,
    pub rss_kb: i64,
    pub cpu_s: f64,
    /// Voluntary context switches, all threads (see `probe::wakeups`).
    pub wakeups: u64,
}

/// The running receiver child.
#[derive(Debug)]
pub struct ReceiverChild {
    process: Child,
    stdin: Option<ChildStdin>,
    /// The child's stdout, a line at a time; a reply wakes the driver at
    /// once, as the Go harness's blocking read does.
    lines: UnboundedReceiver<String>,
    pub port: u16,
}

impl ReceiverChild {
    /// Starts this binary again with `flags` and waits for its port.
    pub fn start(flags: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let mut process = Command::new(exe)
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the receiver: {e}"))?;
        let stdin = process.stdin.take();
        let lines = read_lines(process.stdout.take());
        let mut child = ReceiverChild {
            process,
            stdin,
            lines,
            port: 0,
        };
        child.port = child.ready()?;
        Ok(child)
    }

    /// Blocks (at start only) until the child says `READY <port>`.
    fn ready(&mut self) -> Result<u16, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let line = loop {
            match self.lines.try_recv() {
                Ok(line) => break line,
                Err(TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::sleep(READY_POLL)
                }
                _ => return Err("the receiver did not start".to_owned()),
            }
        };
        line.strip_prefix("READY ")
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| format!("the receiver said {line:?}"))
    }

    /// Waits until the receiver has processed `target` messages in all,
    /// or `timeout` passed: (processed, last process time in unix ns).
    pub async fn wait_processed(
        &mut self,
        target: u64,
        timeout: Duration,
    ) -> Result<(u64, i64), String> {
        let command = format!("WAIT {target} {}", timeout.as_millis());
        let line = self.ask(&command, timeout + REPLY_TIMEOUT).await?;
        let mut words = line.split_whitespace().skip(1);
        let mut next = || words.next().and_then(|w| w.parse::<i64>().ok());
        match (line.starts_with("DONE "), next(), next()) {
            (true, Some(processed), Some(last)) => Ok((processed as u64, last)),
            _ => Err(format!("bad reply to WAIT: {line:?}")),
        }
    }

    /// The receiver's counters, CPU time and peak RSS.
    pub async fn stats(&mut self) -> Result<ReceiverStats, String> {
        let line = self.ask("STATS", REPLY_TIMEOUT).await?;
        let json = line
            .strip_prefix("STATS ")
            .ok_or_else(|| format!("bad reply to STATS: {line:?}"))?;
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("bad STATS json: {e}"))?;
        Ok(ReceiverStats {
            processed: v["processed"].as_u64().unwrap_or(0),
            payload_bytes: v["payload_bytes"].as_u64().unwrap_or(0),
            by_stream: v["by_stream"].as_u64().unwrap_or(0),
            hwm_kb: v["hwm_kb"].as_i64().unwrap_or(-1),
            rss_kb: v["rss_kb"].as_i64().unwrap_or(-1),
            cpu_s: v["cpu_s"].as_f64().unwrap_or(0.0),
            wakeups: v["wakeups"].as_u64().unwrap_or(0),
        })
    }

    /// Sends one command line and waits, without blocking the actix
    /// thread, for the one-line answer.
    async fn ask(&mut self, command: &str, timeout: Duration) -> Result<String, String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or("the receiver's stdin is closed")?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the receiver: {e}"))?;
        match actix_web::rt::time::timeout(timeout, self.lines.next()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("the receiver exited".into()),
            Err(_) => Err(format!("no answer to {command:?} within {timeout:?}")),
        }
    }
}

/// Says `QUIT`, closes the child's stdin, and kills it by PID if it has
/// not exited within [`QUIT_TIMEOUT`].
impl Drop for ReceiverChild {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "QUIT");
        }
        let deadline = Instant::now() + QUIT_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Forwards the child's stdout, line by line, to a channel.
fn read_lines(stdout: Option<std::process::ChildStdout>) -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded();
    if let Some(stdout) = stdout {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.unbounded_send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

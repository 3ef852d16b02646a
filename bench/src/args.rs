//! Command-line flags, named as etcd's Go harness names them
//! (`pipebench`), in `--name value` or `--name=value` form.

use std::time::Duration;

use rafthttp_pipeline::{PipelineConfig, SenderPlacement};

/// Which side of the benchmark this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The driver: node A with its pipeline; it starts the receiver.
    Sender,
    /// Node B, started by the sender as a child process.
    Receiver,
}

/// The workloads of the Go harness's README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Small MsgApp throughput.
    W1,
    /// MsgSnap through the pipeline.
    W2,
    /// One MsgApp at a time, echoed back: latency.
    W3,
}

/// W1: what the sender does when the pipeline drops a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wait `--retry-sleep` and resend the same message.
    Retry,
    /// Count the drop and go on at full offered load.
    Drop,
}

/// Every flag, with the Go harness's defaults.
#[derive(Debug, Clone)]
pub struct Args {
    pub role: Role,
    pub workload: Workload,
    pub mode: Mode,
    /// W1 with the actors taken out: bare awc against bare actix-web.
    pub floor: bool,
    pub n: u64,
    pub warmup: u64,
    pub entry_size: usize,
    pub snap_size: usize,
    pub snap_count: usize,
    pub serial: bool,
    pub retry_sleep: Duration,
    pub timeout: Duration,
    /// W1: pipelines in node A, one per peer, messages dealt round-robin;
    /// every peer is served by the one receiver process.
    pub peers: usize,
    /// W1: a window this long, after the warm-up, in which nothing is
    /// sent: each side's CPU time and wake-ups while idle. Zero: none.
    pub idle: Duration,
    /// Where the pipelines' senders run; `None` keeps the library's default.
    pub placement: Option<Placement>,
    /// Receiver only: answer each MsgApp with a MsgAppResp to this URL.
    pub echo_to: Option<String>,
    /// Count etcd's Prometheus metrics on both sides (pipelines and
    /// receiver), to measure what counting costs.
    pub metrics: bool,
    /// W1 and W3 over etcd's streams: both nodes run a `Transport` with
    /// streams on and know each other (see `streams.rs`).
    pub streams: bool,
    /// W1 over streams: at most this many messages sent but not yet
    /// processed by B (etcd's harness's `-window`); 0: no window.
    pub window: u64,
    /// With `--streams`: both members busy-poll this long after each send
    /// (`TransportConfig::busy_poll`); ours only, Go spins on its own.
    pub busy_poll: Option<Duration>,
    /// Receiver only, with `--streams`: node A's URL, added as a peer.
    pub peer_url: Option<String>,
}

/// `--placement`: the pipelines' [`SenderPlacement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `SenderPlacement::SharedPool`, the library's default.
    Pool,
    /// `SenderPlacement::Current`: on the pipeline's own thread.
    Current,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            role: Role::Sender,
            workload: Workload::W1,
            mode: Mode::Drop,
            floor: false,
            metrics: false,
            n: 200_000,
            warmup: 1_000,
            entry_size: 256,
            snap_size: 1 << 20,
            snap_count: 4,
            serial: false,
            retry_sleep: Duration::from_micros(50),
            timeout: Duration::from_secs(180),
            peers: 1,
            idle: Duration::ZERO,
            placement: None,
            echo_to: None,
            streams: false,
            window: 0,
            busy_poll: None,
            peer_url: None,
        }
    }
}

pub const USAGE: &str = "usage: bench [--workload w1|w2|w3] [--mode retry|drop] [--floor]
             [--n N] [--warmup N] [--entry-size BYTES] [--retry-sleep 50us]
             [--peers K] [--idle 5s]
             [--snap-size BYTES] [--snap-count N] [--serial] [--timeout 180s]
             [--placement pool|current] [--metrics] [--streams] [--window N] [--busy-poll 100us]
       bench plot RESULTS.jsonl... > sweep.svg";

impl Placement {
    /// Sets this placement on `config`; `None` leaves the default.
    pub fn apply(placement: Option<Self>, config: PipelineConfig) -> PipelineConfig {
        match placement {
            None => config,
            Some(Placement::Pool) => config.placement(SenderPlacement::SharedPool),
            Some(Placement::Current) => config.placement(SenderPlacement::Current),
        }
    }
}

impl Args {
    /// Parses the flags after the program name.
    pub fn parse(mut raw: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut args = Args::default();
        while let Some(flag) = raw.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            if args.switch(&name) {
                continue;
            }
            let value = inline
                .or_else(|| raw.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            args.set(&name, &value)?;
        }
        args.check()
    }

    /// Sets a flag without a value; false when `name` is not one.
    fn switch(&mut self, name: &str) -> bool {
        match name {
            "--serial" | "--snap-serial" => self.serial = true,
            "--floor" => self.floor = true,
            "--metrics" => self.metrics = true,
            "--streams" => self.streams = true,
            _ => return false,
        }
        true
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "--role" => self.role = parse_role(value)?,
            "--workload" => self.workload = parse_workload(value)?,
            "--mode" => self.mode = parse_mode(value)?,
            "--n" => self.n = number(name, value)?,
            "--warmup" => self.warmup = number(name, value)?,
            "--entry-size" => self.entry_size = number(name, value)?,
            "--snap-size" => self.snap_size = number(name, value)?,
            "--snap-count" => self.snap_count = number(name, value)?,
            "--retry-sleep" => self.retry_sleep = duration(value)?,
            "--timeout" => self.timeout = duration(value)?,
            "--peers" => self.peers = number(name, value)?,
            "--idle" => self.idle = duration(value)?,
            "--placement" => self.placement = Some(parse_placement(value)?),
            "--echo-to" => self.echo_to = Some(value.to_owned()),
            "--peer-url" => self.peer_url = Some(value.to_owned()),
            "--window" => self.window = number(name, value)?,
            "--busy-poll" => self.busy_poll = Some(duration(value)?),
            _ => return Err(format!("unknown flag {name}\n{USAGE}")),
        }
        Ok(())
    }

    fn check(self) -> Result<Self, String> {
        if self.floor && self.workload != Workload::W1 {
            return Err("--floor measures W1 only".into());
        }
        if self.workload == Workload::W2 && self.snap_count == 0 {
            return Err("--snap-count must be at least 1".into());
        }
        if self.workload == Workload::W3 && self.n == 0 {
            return Err("--n must be at least 1 for W3".into());
        }
        if self.peers == 0 {
            return Err("--peers must be at least 1".into());
        }
        let streamable = matches!(self.workload, Workload::W1 | Workload::W3);
        if self.streams && (!streamable || self.floor || self.peers > 1 || self.metrics) {
            return Err(
                "--streams applies to W1 and W3 with one peer, no --floor or --metrics".into(),
            );
        }
        if self.busy_poll.is_some() && !self.streams {
            return Err("--busy-poll applies with --streams".into());
        }
        if self.window > 0 && !(self.streams && self.workload == Workload::W1) {
            return Err("--window applies to W1 with --streams".into());
        }
        let w1_only = self.peers > 1 || !self.idle.is_zero();
        if w1_only && (self.workload != Workload::W1 || self.floor) {
            return Err("--peers and --idle apply to W1 only".into());
        }
        Ok(self)
    }

    /// The flags the receiver child needs from the sender's.
    pub fn receiver_flags(&self) -> Vec<String> {
        let mut flags = vec!["--role".to_owned(), "receiver".to_owned()];
        if self.floor {
            flags.push("--floor".to_owned());
        }
        if self.metrics {
            flags.push("--metrics".to_owned());
        }
        if self.streams {
            flags.push("--streams".to_owned());
        }
        if let Some(window) = self.busy_poll {
            flags.extend([
                "--busy-poll".to_owned(),
                format!("{}us", window.as_micros()),
            ]);
        }
        if let Some(placement) = self.placement {
            let name = match placement {
                Placement::Pool => "pool",
                Placement::Current => "current",
            };
            flags.extend(["--placement".to_owned(), name.to_owned()]);
        }
        flags
    }
}

fn parse_role(value: &str) -> Result<Role, String> {
    match value {
        "sender" | "send" => Ok(Role::Sender),
        "receiver" | "recv" => Ok(Role::Receiver),
        _ => Err(format!("unknown --role {value:?}")),
    }
}

fn parse_workload(value: &str) -> Result<Workload, String> {
    match value {
        "w1" => Ok(Workload::W1),
        "w2" => Ok(Workload::W2),
        "w3" => Ok(Workload::W3),
        _ => Err(format!("unknown --workload {value:?}")),
    }
}

fn parse_mode(value: &str) -> Result<Mode, String> {
    match value {
        "retry" => Ok(Mode::Retry),
        "drop" => Ok(Mode::Drop),
        _ => Err(format!("unknown --mode {value:?} (retry or drop)")),
    }
}

fn parse_placement(value: &str) -> Result<Placement, String> {
    match value {
        "pool" => Ok(Placement::Pool),
        "current" => Ok(Placement::Current),
        _ => Err(format!("unknown --placement {value:?} (pool or current)")),
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{name} wants a number, got {value:?}"))
}

/// Go's duration syntax for the units used here: `0`, `50us`, `1ms`, `2s`.
fn duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("bad duration {value:?}"))?;
    match unit {
        "" if amount == 0 => Ok(Duration::ZERO),
        "ns" => Ok(Duration::from_nanos(amount)),
        "us" | "µs" => Ok(Duration::from_micros(amount)),
        "ms" => Ok(Duration::from_millis(amount)),
        "s" => Ok(Duration::from_secs(amount)),
        _ => Err(format!("bad duration {value:?} (use ns, us, ms or s)")),
    }
}

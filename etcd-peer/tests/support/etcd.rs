//! A real etcd 3.4 member for integration tests.
//!
//! [`Etcd::start`] runs `/usr/bin/etcd` on loopback ports picked by the OS,
//! in a fresh temp data dir, with every `ETCD_*` variable cleared and
//! `--logger zap`, and waits until its peer port answers. Dropping the
//! [`Etcd`] kills the process by its PID and reaps it, whether the test passed
//! or panicked; on Linux the child is also killed by the kernel if the thread
//! that started it dies first (`PR_SET_PDEATHSIG`), so no etcd outlives a test.
//!
//! Tests call [`etcd_available`] first: it fails the test when `CI` is set
//! and etcd is missing, and otherwise skips with one line saying how to
//! install it.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where Debian's `etcd-server` installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";
/// Where Debian's `etcd-client` installs etcdctl.
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// How long etcd may take to answer on its peer port after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a start is tried when etcd could not bind its ports
/// (another process took a port between our probe and etcd's bind).
const START_ATTEMPTS: usize = 3;

/// Whether the etcd tests can run here.
///
/// With etcd and etcdctl present: `true`. Missing and `CI` set: panics, so
/// CI fails rather than passing on a skipped test. Missing otherwise: prints
/// one line on how to install them and returns `false`.
pub fn etcd_available() -> bool {
    let present = Path::new(ETCD).is_file() && Path::new(ETCDCTL).is_file();
    if present {
        return true;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    if ci {
        panic!("CI is set but {ETCD} or {ETCDCTL} is missing: run `apt-get install -y etcd-server etcd-client`");
    }
    eprintln!(
        "skipped: etcd 3.4 not installed; run `sudo apt-get install -y etcd-server etcd-client` to run this test"
    );
    false
}

/// A loopback port that was free a moment ago: bind port 0, read the port,
/// release it. Another process can take it before it is used; callers that
/// hand it to etcd retry ([`start_with_retry`]).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `http://127.0.0.1:<port>`.
pub fn loopback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A directory under the system temp dir, removed with everything in it on
/// drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory whose name starts with `prefix` and is unique
    /// to this process and call.
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// How to start one etcd member.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `--name`.
    pub name: String,
    /// `--initial-cluster-token`.
    pub token: String,
    /// The peer port (`--listen-peer-urls`, `--initial-advertise-peer-urls`).
    pub peer_port: u16,
    /// The client port (`--listen-client-urls`, `--advertise-client-urls`).
    pub client_port: u16,
    /// The other members of the initial cluster: `(name, peer URL)`.
    pub others: Vec<(String, String)>,
    /// `--heartbeat-interval` and `--election-timeout` in ms; etcd's
    /// defaults (100, 1000) when `None`.
    pub timers_ms: Option<(u64, u64)>,
    /// More flags, e.g. `--snapshot-count 100`, after the others.
    pub extra_args: Vec<String>,
    /// The peer URL's scheme: `http`, or `https` with [`EtcdConfig::peer_tls`].
    pub peer_scheme: &'static str,
}

impl EtcdConfig {
    /// A single-member cluster called `name` on fresh ports, with token
    /// `token` and etcd's default timers.
    pub fn new(name: &str, token: &str) -> EtcdConfig {
        EtcdConfig {
            name: name.to_owned(),
            token: token.to_owned(),
            peer_port: free_port(),
            client_port: free_port(),
            others: Vec::new(),
            timers_ms: None,
            extra_args: Vec::new(),
            peer_scheme: "http",
        }
    }

    /// Peer TLS with client-cert auth: `https://` peer URLs, etcd's
    /// `--peer-cert-file`, `--peer-key-file`, `--peer-trusted-ca-file` and
    /// `--peer-client-cert-auth`.
    pub fn peer_tls(mut self, cert: &Path, key: &Path, ca: &Path) -> EtcdConfig {
        self.peer_scheme = "https";
        for (flag, path) in [
            ("--peer-cert-file", cert),
            ("--peer-key-file", key),
            ("--peer-trusted-ca-file", ca),
        ] {
            self.extra_args
                .extend([flag.to_owned(), path.display().to_string()]);
        }
        self.extra_args
            .push("--peer-client-cert-auth=true".to_owned());
        self
    }

    /// Adds a member to the initial cluster.
    pub fn member(mut self, name: &str, peer_url: &str) -> EtcdConfig {
        self.others.push((name.to_owned(), peer_url.to_owned()));
        self
    }

    /// A 10 ms heartbeat and a 100 ms election timeout, so elections and
    /// leadership transfers take tenths of a second.
    pub fn fast_timers(mut self) -> EtcdConfig {
        self.timers_ms = Some((10, 100));
        self
    }

    /// `--heartbeat-interval` and `--election-timeout`, in ms.
    pub fn timers(mut self, heartbeat_ms: u64, election_ms: u64) -> EtcdConfig {
        self.timers_ms = Some((heartbeat_ms, election_ms));
        self
    }

    /// Adds a flag and its value, e.g. `.arg("--snapshot-count", "100")`.
    pub fn arg(mut self, flag: &str, value: &str) -> EtcdConfig {
        self.extra_args.extend([flag.to_owned(), value.to_owned()]);
        self
    }

    /// This member's peer URL.
    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.peer_scheme, self.peer_port)
    }

    /// This member's client URL.
    pub fn client_url(&self) -> String {
        loopback_url(self.client_port)
    }

    /// `--initial-cluster`: this member first, then the others.
    pub fn initial_cluster(&self) -> String {
        let mut entries = vec![format!("{}={}", self.name, self.peer_url())];
        entries.extend(self.others.iter().map(|(n, u)| format!("{n}={u}")));
        entries.join(",")
    }

    fn args(&self, data_dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
            "--listen-peer-urls".into(),
            self.peer_url(),
            "--initial-advertise-peer-urls".into(),
            self.peer_url(),
            "--listen-client-urls".into(),
            self.client_url(),
            "--advertise-client-urls".into(),
            self.client_url(),
            "--initial-cluster".into(),
            self.initial_cluster(),
            "--initial-cluster-token".into(),
            self.token.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        if let Some((heartbeat, election)) = self.timers_ms {
            args.extend([
                "--heartbeat-interval".into(),
                heartbeat.to_string(),
                "--election-timeout".into(),
                election.to_string(),
            ]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A running etcd member. Dropping it kills the process.
#[derive(Debug)]
pub struct Etcd {
    child: Child,
    exited: bool,
    /// How it was started.
    pub config: EtcdConfig,
    /// When the process was spawned.
    pub started_at: Instant,
    log_path: PathBuf,
    dir: TempDir,
}

impl Etcd {
    /// Spawns etcd and waits until its peer port answers `GET /version`.
    ///
    /// Fails with etcd's log tail when it exits first (a port was taken, a
    /// flag was refused) or does not answer within 20 s; the process is
    /// killed in both cases.
    pub fn start(config: EtcdConfig) -> Result<Etcd, String> {
        let dir = TempDir::new("rafthttp-etcd").map_err(|e| format!("temp dir: {e}"))?;
        let log_path = dir.path().join("etcd.log");
        let log = File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut cmd = Command::new(ETCD);
        cmd.args(config.args(&dir.path().join("data")))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        clear_etcd_env(&mut cmd);
        die_with_parent(&mut cmd);
        let started_at = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawn {ETCD}: {e}"))?;
        let mut etcd = Etcd {
            child,
            exited: false,
            config,
            started_at,
            log_path,
            dir,
        };
        // A TLS peer port does not answer plain HTTP; the client port does.
        let port = match etcd.config.peer_scheme {
            "https" => etcd.config.client_port,
            _ => etcd.config.peer_port,
        };
        let peer = ("127.0.0.1", port);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                etcd.exited = true;
                return Err(format!("etcd exited with {status}:\n{}", etcd.log_tail(20)));
            }
            if http_get(peer, "/version").is_ok_and(|a| a.status == 200) {
                return Ok(etcd);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not answer on {} within {START_TIMEOUT:?}:\n{}",
                    etcd.config.peer_url(),
                    etcd.log_tail(20)
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET /health` on the client port says `"health":"true"`
    /// (a leader exists and a read went through raft), at most `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match http_get(("127.0.0.1", self.config.client_port), "/health") {
                Ok(a) if a.status == 200 && a.body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(a) => last = format!("{} {}", a.status, a.body),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "etcd not healthy after {timeout:?}: {last}\n{}",
            self.log_tail(20)
        ))
    }

    /// Runs `etcdctl` (API v3) against this member with `args`, each request
    /// bounded by `timeout`.
    pub fn etcdctl(&self, args: &[&str], timeout: Duration) -> Output {
        let ms = format!("{}ms", timeout.as_millis());
        let mut cmd = Command::new(ETCDCTL);
        cmd.args([
            format!("--endpoints={}", self.config.client_url()),
            format!("--dial-timeout={ms}"),
            format!("--command-timeout={ms}"),
        ])
        .args(args)
        .stdin(Stdio::null());
        clear_etcd_env(&mut cmd);
        cmd.env("ETCDCTL_API", "3");
        die_with_parent(&mut cmd);
        cmd.output().expect("run etcdctl")
    }

    /// Sends SIGTERM and waits up to `bound` for etcd to exit. Returns how
    /// long it took, or `Err` with the time waited if it did not exit (it is
    /// then killed on drop).
    pub fn terminate(&mut self, bound: Duration) -> Result<Duration, Duration> {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        let sent = Instant::now();
        // SAFETY: kill(2) on the pid of our own unreaped child; it cannot be
        // recycled before we wait for it.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}: {}", io::Error::last_os_error());
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.exited = true;
                return Ok(sent.elapsed());
            }
            if sent.elapsed() > bound {
                return Err(sent.elapsed());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        !self.exited && matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines etcd logged.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole log etcd wrote so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The temp dir holding the data dir and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if !self.exited {
            // Child::kill sends SIGKILL to this PID; wait reaps it.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- etcd {} log tail ---\n{}",
                self.config.name,
                self.log_tail(40)
            );
        }
    }
}

/// Calls `make_config` and starts etcd with it, up to three times with
/// fresh ports when etcd could not start (typically: a port was taken).
pub fn start_with_retry(mut make_config: impl FnMut() -> EtcdConfig) -> Etcd {
    let mut errors = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match Etcd::start(make_config()) {
            Ok(etcd) => return etcd,
            Err(e) => errors.push(e),
        }
    }
    panic!("etcd did not start:\n{}", errors.join("\n---\n"));
}

/// Removes every `ETCD_*` and `ETCDCTL_*` variable from `cmd`'s
/// environment: etcd reads each `ETCD_*` as a flag.
pub fn clear_etcd_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(key);
        }
    }
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it
/// dies, so a test runner killed mid-test leaves no etcd behind.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child's own
    // process attributes between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// An HTTP answer: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl HttpAnswer {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal `GET` over HTTP/1.0 (so no chunked answer) with a 2 s timeout.
/// The
/// request goes out in one write, and the body is read up to its
/// `Content-Length`, without waiting for the server to close.
pub fn http_get(addr: (&str, u16), path: &str) -> io::Result<HttpAnswer> {
    let timeout = Duration::from_secs(2);
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let ip = addr
        .0
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&std::net::SocketAddr::new(ip, addr.1), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
        addr.0, addr.1
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_len, body_len) = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break (None, None);
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .filter_map(|l| l.strip_prefix("content-length:"))
                .find_map(|v| v.trim().parse::<usize>().ok());
            break (Some(end + 4), length);
        }
    };
    match (head_len, body_len) {
        (Some(head), Some(len)) => {
            while raw.len() < head + len {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    return Err(invalid("body shorter than Content-Length"));
                }
                raw.extend_from_slice(&buf[..n]);
            }
        }
        (Some(_), None) => {
            stream.read_to_end(&mut raw)?;
        }
        (None, _) => return Err(invalid("connection closed before the headers ended")),
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no HTTP status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpAnswer {
        status,
        headers,
        body: body.to_owned(),
    })
}

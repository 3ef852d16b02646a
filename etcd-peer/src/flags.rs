//! The command line, with etcd's flag names where etcd has one, parsed as
//! Go's flag package parses them.

use std::path::PathBuf;
use std::time::Duration;

use rafthttp_pipeline::membership::{InitialCluster, Member, DEFAULT_INITIAL_CLUSTER_TOKEN};
use rafthttp_pipeline::tls::TlsInfo;

const USAGE: &str = "\
usage: etcd-peer --initial-cluster NAME=URL,... [options]

  --name NAME                     this member's name in --initial-cluster (default \"default\")
  --initial-cluster LIST          the cluster's members, name=peer-url,... as etcd takes it
  --initial-cluster-token TOKEN   the token the cluster was started with (default \"etcd-cluster\")
  --listen-peer-urls URLS         where to listen, all http or all https (default: this
                                  member's URLs)
  --peer-cert-file FILE           peer TLS: this member's certificate (PEM), served and
                                  presented as the client certificate
  --peer-key-file FILE            its private key (PEM)
  --peer-trusted-ca-file FILE     the CA peers' certificates must chain to (PEM)
  --peer-client-cert-auth         require and verify peers' client certificates
  --peer-cert-allowed-cn CN,...   admit only client certificates with one of these CNs
  --peer-cert-allowed-hostname H,...
                                  admit only client certificates valid for one of these
  --data-dir DIR                  take snapshots: store the leader's databases in DIR as
                                  %016x.snap.db (without it, POST /raft/snapshot is 404)
  --down-until-signal             hold the member down (port bound, connections refused)
                                  until SIGUSR1
  --start-delay SECS              hold the member down for SECS seconds (or until SIGUSR1)
  --no-append-ack                 never answer MsgApp (control experiment: writes must fail)
  --stats-every SECS              print message counts as JSON every SECS seconds
  --events                        print a JSON line per append answer and per snapshot step
  --fail-snapshots N              make the first N snapshot transfers fail (needs --data-dir)
  --fail-mode 500|cut             how they fail: the sink fails after its first write and the
                                  receiver answers 500 (default), or the connection is shut
                                  down after 2 MiB of the body

Signals: SIGUSR1 brings a member held down up; SIGUSR2 prints the counts;
SIGINT and SIGTERM stop it, printing each pipeline's counters and the counts.
";

/// With `--fail-mode cut`, how much of a snapshot body passes before the
/// connection is shut down: more than the receiver's first write batch, so
/// a temp file with data exists when the cut comes.
pub const CUT_AFTER_BYTES: u64 = 2 * 1024 * 1024;

/// How `--fail-snapshots` makes a transfer fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The sink fails after its first write (a real temp file with data
    /// exists by then); the receiver discards it and answers 500.
    Status500,
    /// The connection is shut down after [`CUT_AFTER_BYTES`] of the body;
    /// etcd gets no answer at all.
    Cut,
}

impl FailMode {
    /// The name `--fail-mode` takes and the events print.
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Status500 => "500",
            FailMode::Cut => "cut",
        }
    }
}

/// The command line, with etcd's flag names where etcd has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    /// `--name`.
    pub name: String,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--listen-peer-urls`; empty means this member's URLs.
    pub listen_peer_urls: Vec<String>,
    /// `--data-dir`: where received snapshot databases go; `None` leaves
    /// `POST /raft/snapshot` unmounted.
    pub data_dir: Option<PathBuf>,
    /// `--down-until-signal`: held down until SIGUSR1.
    pub down_until_signal: bool,
    /// `--start-delay`: held down this long (or until SIGUSR1).
    pub start_delay: Option<Duration>,
    /// `--no-append-ack`.
    pub no_append_ack: bool,
    /// `--stats-every`.
    pub stats_every: Option<Duration>,
    /// `--events`.
    pub events: bool,
    /// `--fail-snapshots`: how many snapshot transfers fail first.
    pub fail_snapshots: u64,
    /// `--fail-mode`.
    pub fail_mode: FailMode,
    /// `--peer-cert-file`.
    pub peer_cert_file: Option<PathBuf>,
    /// `--peer-key-file`.
    pub peer_key_file: Option<PathBuf>,
    /// `--peer-trusted-ca-file`.
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// `--peer-client-cert-auth`.
    pub peer_client_cert_auth: bool,
    /// `--peer-cert-allowed-cn`.
    pub peer_cert_allowed_cn: Vec<String>,
    /// `--peer-cert-allowed-hostname`.
    pub peer_cert_allowed_hostname: Vec<String>,
}

impl Flags {
    /// Parses the arguments after the program name. Flags take `--flag
    /// value` or `--flag=value`, with one dash or two, as Go's flag package.
    /// `Err` carries the message to print (the usage for `--help`).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            name: "default".into(),
            initial_cluster: String::new(),
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.into(),
            listen_peer_urls: Vec::new(),
            data_dir: None,
            down_until_signal: false,
            start_delay: None,
            no_append_ack: false,
            stats_every: None,
            events: false,
            fail_snapshots: 0,
            fail_mode: FailMode::Status500,
            peer_cert_file: None,
            peer_key_file: None,
            peer_trusted_ca_file: None,
            peer_client_cert_auth: false,
            peer_cert_allowed_cn: Vec::new(),
            peer_cert_allowed_hostname: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let bare = arg.trim_start_matches('-');
            if bare.len() == arg.len() {
                return Err(format!("unexpected argument {arg:?}\n{USAGE}"));
            }
            let (key, inline) = match bare.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (bare, None),
            };
            match key {
                "help" | "h" => return Err(USAGE.to_owned()),
                "no-append-ack" => flags.no_append_ack = true,
                "down-until-signal" => flags.down_until_signal = true,
                "events" => flags.events = true,
                // A Go bool flag: bare, or `=true` / `=false`.
                "peer-client-cert-auth" => {
                    flags.peer_client_cert_auth = match inline.as_deref() {
                        None | Some("true") | Some("1") => true,
                        Some("false") | Some("0") => false,
                        Some(other) => return Err(format!("--{key}={other:?}: not a bool")),
                    }
                }
                "name"
                | "initial-cluster"
                | "initial-cluster-token"
                | "listen-peer-urls"
                | "data-dir"
                | "start-delay"
                | "stats-every"
                | "fail-snapshots"
                | "fail-mode"
                | "peer-cert-file"
                | "peer-key-file"
                | "peer-trusted-ca-file"
                | "peer-cert-allowed-cn"
                | "peer-cert-allowed-hostname" => {
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| format!("flag --{key} needs a value\n{USAGE}"))?,
                    };
                    flags.set(key, value)?;
                }
                _ => return Err(format!("unknown flag {arg:?}\n{USAGE}")),
            }
        }
        if flags.initial_cluster.is_empty() {
            return Err(format!("--initial-cluster is required\n{USAGE}"));
        }
        if flags.fail_snapshots > 0 && flags.data_dir.is_none() {
            return Err(format!("--fail-snapshots needs --data-dir\n{USAGE}"));
        }
        Ok(flags)
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let seconds = |value: &str| {
            value
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("--{key} {value:?}: not SECS > 0"))
        };
        match key {
            "name" => self.name = value,
            "initial-cluster" => self.initial_cluster = value,
            "initial-cluster-token" => self.initial_cluster_token = value,
            "listen-peer-urls" => {
                self.listen_peer_urls = value
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "data-dir" if !value.is_empty() => self.data_dir = Some(PathBuf::from(value)),
            "peer-cert-file" => self.peer_cert_file = Some(PathBuf::from(value)),
            "peer-key-file" => self.peer_key_file = Some(PathBuf::from(value)),
            "peer-trusted-ca-file" => self.peer_trusted_ca_file = Some(PathBuf::from(value)),
            "peer-cert-allowed-cn" => self.peer_cert_allowed_cn = list(&value),
            "peer-cert-allowed-hostname" => self.peer_cert_allowed_hostname = list(&value),
            "start-delay" => self.start_delay = Some(seconds(&value)?),
            "stats-every" => self.stats_every = Some(seconds(&value)?),
            "fail-snapshots" => {
                self.fail_snapshots = value
                    .parse()
                    .map_err(|_| format!("--fail-snapshots {value:?}: not a count"))?;
            }
            "fail-mode" => {
                self.fail_mode = match value.as_str() {
                    "500" => FailMode::Status500,
                    "cut" => FailMode::Cut,
                    _ => return Err(format!("--fail-mode {value:?}: not 500 or cut")),
                };
            }
            _ => return Err(format!("--{key} {value:?}: bad value\n{USAGE}")),
        }
        Ok(())
    }

    /// Peer TLS from etcd's flags, if `--peer-cert-file` is given; the
    /// listeners then speak TLS and the pipelines post to `https://` URLs.
    pub fn tls(&self) -> Result<Option<TlsInfo>, String> {
        let (Some(cert), key) = (&self.peer_cert_file, &self.peer_key_file) else {
            return Ok(None);
        };
        let key = key
            .as_ref()
            .ok_or("--peer-cert-file needs --peer-key-file")?;
        let mut info = TlsInfo::new(cert, key)
            .client_cert_auth(self.peer_client_cert_auth)
            .allowed_cn(self.peer_cert_allowed_cn.clone())
            .allowed_hostname(self.peer_cert_allowed_hostname.clone());
        info.trusted_ca_file = self.peer_trusted_ca_file.clone();
        Ok(Some(info))
    }

    /// Whether the member starts held down.
    pub fn held_down(&self) -> bool {
        self.down_until_signal || self.start_delay.is_some()
    }

    /// The cluster, this member in it, and the addresses to listen on.
    pub fn resolve(&self) -> Result<(InitialCluster, Member, Vec<String>), String> {
        let cluster = InitialCluster::parse(&self.initial_cluster, &self.initial_cluster_token)
            .map_err(|e| format!("--initial-cluster: {e}"))?;
        let me = cluster
            .member(&self.name)
            .cloned()
            .ok_or_else(|| format!("--name {:?} is not in --initial-cluster", self.name))?;
        let listen = if self.listen_peer_urls.is_empty() {
            me.peer_urls.clone()
        } else {
            self.listen_peer_urls.clone()
        };
        let https = listen
            .iter()
            .filter(|url| url.starts_with("https://"))
            .count();
        if https > 0 && https < listen.len() {
            return Err("--listen-peer-urls: all http or all https".into());
        }
        if https > 0 && self.peer_cert_file.is_none() {
            return Err("--listen-peer-urls: https needs --peer-cert-file".into());
        }
        let addrs = listen
            .iter()
            .map(|url| {
                url.strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"))
                    .map(|a| a.trim_end_matches('/').to_owned())
                    .ok_or_else(|| format!("--listen-peer-urls {url:?}: only http and https"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((cluster, me, addrs))
    }
}

/// A comma-separated flag value as a list (empty items dropped).
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{FailMode, Flags};

    #[test]
    fn flags_parse_like_etcd() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let f = Flags::parse(args(
            "--name p --initial-cluster=e=http://127.0.0.1:1,p=http://127.0.0.1:2 \
             -initial-cluster-token tok --no-append-ack --stats-every 0.5",
        ))
        .unwrap();
        assert_eq!(f.name, "p");
        assert_eq!(f.initial_cluster_token, "tok");
        assert!(f.no_append_ack);
        assert_eq!(f.stats_every, Some(Duration::from_millis(500)));
        let (cluster, me, addrs) = f.resolve().unwrap();
        assert_eq!(cluster.members.len(), 2);
        assert_eq!(me.name, "p");
        assert_eq!(addrs, ["127.0.0.1:2"]);

        assert!(Flags::parse(args("--name p")).is_err(), "no cluster");
        assert!(Flags::parse(args("--bogus 1 --initial-cluster a=http://h:1")).is_err());
        assert!(Flags::parse(args("--initial-cluster a=http://h:1 --stats-every x")).is_err());
        let no_me = Flags::parse(args("--name z --initial-cluster a=http://h:1")).unwrap();
        assert!(no_me.resolve().is_err());
    }

    #[test]
    fn flags_for_following_and_failing() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let base = "--initial-cluster a=http://127.0.0.1:1";
        let f = Flags::parse(args(base)).unwrap();
        assert_eq!(
            (f.data_dir.as_deref(), f.held_down(), f.events),
            (None, false, false)
        );
        assert_eq!((f.fail_snapshots, f.fail_mode), (0, FailMode::Status500));

        let f = Flags::parse(args(&format!(
            "{base} --data-dir /tmp/b --down-until-signal --events --fail-snapshots 3 --fail-mode=cut"
        )))
        .unwrap();
        assert_eq!(f.data_dir.as_deref(), Some(Path::new("/tmp/b")));
        assert!(f.down_until_signal && f.held_down() && f.events);
        assert_eq!((f.fail_snapshots, f.fail_mode), (3, FailMode::Cut));
        assert_eq!(FailMode::Cut.name(), "cut");

        let f = Flags::parse(args(&format!("{base} --start-delay 1.5"))).unwrap();
        assert_eq!(f.start_delay, Some(Duration::from_millis(1500)));
        assert!(f.held_down() && !f.down_until_signal);

        for bad in [
            "--fail-snapshots 3",
            "--data-dir /x --fail-snapshots x",
            "--data-dir /x --fail-mode 404",
            "--start-delay 0",
            "--data-dir",
        ] {
            assert!(
                Flags::parse(args(&format!("{base} {bad}"))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn etcds_peer_tls_flags() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let base = "--name a --initial-cluster a=https://127.0.0.1:1";
        assert_eq!(Flags::parse(args(base)).unwrap().tls(), Ok(None));
        assert!(
            Flags::parse(args(base)).unwrap().resolve().is_err(),
            "https without a certificate"
        );
        let f = Flags::parse(args(&format!(
            "{base} --peer-cert-file c.pem --peer-key-file k.pem --peer-trusted-ca-file ca.pem \
             --peer-client-cert-auth --peer-cert-allowed-cn m1,m2"
        )))
        .unwrap();
        assert_eq!(f.resolve().unwrap().2, ["127.0.0.1:1"]);
        let tls = f.tls().unwrap().unwrap();
        assert_eq!(tls.cert_file, Path::new("c.pem"));
        assert_eq!(tls.key_file, Path::new("k.pem"));
        assert_eq!(tls.trusted_ca_file.as_deref(), Some(Path::new("ca.pem")));
        assert!(tls.client_cert_auth);
        assert_eq!(tls.allowed_cn, ["m1", "m2"]);
        let f = Flags::parse(args(&format!(
            "{base} --peer-cert-file c --peer-key-file k --peer-client-cert-auth=false \
             --peer-cert-allowed-hostname h"
        )))
        .unwrap();
        let tls = f.tls().unwrap().unwrap();
        assert!(!tls.client_cert_auth);
        assert_eq!(tls.allowed_hostname, ["h"]);
        let no_key = Flags::parse(args(&format!("{base} --peer-cert-file c"))).unwrap();
        assert!(no_key.tls().is_err());
        let mixed = "--name a --initial-cluster a=https://127.0.0.1:1 --peer-cert-file c \
                     --listen-peer-urls http://127.0.0.1:1,https://127.0.0.1:2";
        assert!(Flags::parse(args(mixed)).unwrap().resolve().is_err());
    }
}

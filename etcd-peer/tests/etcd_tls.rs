//! Peer TLS with a real etcd 3.4: etcd and the `etcd-peer` binary form one
//! cluster over mutual TLS (`https://` peer URLs, client-cert auth on both
//! sides, certificates made at test time with rcgen): a leader is elected
//! and writes commit. Then a member whose certificate comes from another
//! CA (our library's pipeline, in-process) is refused in the handshake by
//! both etcd and our member.
//!
//! A second test has etcd stream its database to our member over mutual
//! TLS (`POST /raft/snapshot`), as `etcd_snapshot.rs` does in plain HTTP.
//!
//! Clients (`etcdctl`) use etcd's plain client URL; only peer traffic is
//! under TLS here.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::tls::TlsInfo;
use rafthttp_pipeline::{
    Envelope, Error, GetStats, Id, LocalMember, PipelineActor, PipelineConfig, Recipients,
    ReportSnapshot, ReportUnreachable, Stop,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::Value;
use tokio::sync::mpsc;

use support::etcd::{etcd_available, free_port, Etcd, EtcdConfig, TempDir};
use support::peer::Peer;
use support::streams::wait_all_four;

const TOKEN: &str = "tok-tls";
/// How long any one expected event may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One etcd test at a time, so that etcd's fast timers do not compete for
/// the CPU.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _ = env_logger::builder().is_test(true).try_init();
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A CA made for the test, writing PEM files in a directory.
struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
    dir: PathBuf,
    name: String,
}

/// A certificate and key this CA issued, as files.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed CA");
        let ca = Ca {
            key,
            cert,
            dir: dir.to_owned(),
            name: name.to_owned(),
        };
        std::fs::write(ca.file(), ca.cert.pem()).expect("write the CA");
        ca
    }

    fn file(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// A server-and-client certificate for 127.0.0.1 named `cn`, written
    /// as `file.crt` and `file.key`.
    fn issue(&self, file: &str, cn: &str) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign");
        let issued = Issued {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }
}

/// etcd and the stand-in, both with peer TLS from `ca`.
struct Cluster {
    etcd: Etcd,
    standin: Peer,
    /// The stand-in's `https://` peer URL.
    our_url: String,
}

/// Starts the stand-in, waits until it is up, then etcd; retried with
/// fresh ports when a port was taken meanwhile.
fn start_cluster(ca: &Ca, dir: &Path) -> Cluster {
    let ours = ca.issue("rust-peer", "rust-peer");
    let theirs = ca.issue("etcd-tls", "etcd-tls");
    let mut errors = Vec::new();
    for _ in 0..3 {
        let our_url = format!("https://127.0.0.1:{}", free_port());
        let config = EtcdConfig::new("etcd-tls", TOKEN)
            .member("rust-peer", &our_url)
            .fast_timers()
            .peer_tls(&theirs.cert, &theirs.key, &ca.file());
        let mut args = member_args("rust-peer", &our_url, &config, &ours, ca);
        args.extend(["--peer-cert-allowed-cn".to_owned(), "etcd-tls".to_owned()]);
        args.push("--streams".to_owned());
        let mut standin = Peer::spawn("rust-peer", &args, dir);
        if let Err(e) = standin.try_wait_for(EVENT_TIMEOUT, |e| e["event"] == "up") {
            errors.push(format!("rust-peer: {e}\n{}", standin.log_tail(5)));
            continue;
        }
        match Etcd::start(config) {
            Ok(etcd) => {
                return Cluster {
                    etcd,
                    standin,
                    our_url,
                }
            }
            Err(e) => errors.push(e),
        }
    }
    panic!("the cluster did not start:\n{}", errors.join("\n---\n"));
}

/// The stand-in's flags for member `name` at `url` in `config`'s cluster,
/// with peer TLS from `issued` and client-cert auth.
fn member_args(
    name: &str,
    url: &str,
    config: &EtcdConfig,
    issued: &Issued,
    ca: &Ca,
) -> Vec<String> {
    [
        "--name",
        name,
        "--initial-cluster",
        &config.initial_cluster(),
        "--initial-cluster-token",
        &config.token,
        "--listen-peer-urls",
        url,
        "--peer-cert-file",
        &issued.cert.display().to_string(),
        "--peer-key-file",
        &issued.key.display().to_string(),
        "--peer-trusted-ca-file",
        &ca.file().display().to_string(),
        "--peer-client-cert-auth",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Puts until one commits (it needs our member's acks), at most 30 s.
fn first_put(etcd: &Etcd) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcd.etcdctl(&["put", "foo", "bar"], Duration::from_secs(1));
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no put committed within 30 s: {}\n{}",
            text(&out),
            etcd.log_tail(20)
        );
    }
}

#[test]
fn etcd_and_our_member_commit_over_mutual_tls_and_both_refuse_another_ca() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let dir = TempDir::new("rafthttp-etcd-tls").expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let Cluster {
        mut etcd,
        mut standin,
        our_url,
    } = start_cluster(&ca, dir.path());

    // A leader was elected and writes commit: every commit needs our
    // member's acks, which travel over mutual TLS both ways.
    first_put(&etcd);
    for i in 0..20 {
        let out = etcd.etcdctl(&["put", &format!("k{i}"), "v"], Duration::from_secs(2));
        assert!(out.status.success(), "put {i}: {}", text(&out));
    }
    let status = etcd.etcdctl(
        &["endpoint", "status", "-w", "json"],
        Duration::from_secs(2),
    );
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let leader = status[0]["Status"]["leader"].as_u64().expect("a leader");
    let identity = standin.identity();
    let etcd_id: Id = identity["members"]["etcd-tls"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("etcd's id");
    assert_eq!(leader, etcd_id.0, "{status}");
    let counts = standin.counts(EVENT_TIMEOUT);
    assert!(
        counts["in"]["MsgApp"].as_u64().unwrap_or(0) >= 20,
        "{counts}"
    );
    // etcd's streams run over mutual TLS too: etcd's two readers dialled
    // our member, and our two readers dialled etcd.
    let ours = identity["member_id"]
        .as_str()
        .expect("our member's id")
        .to_owned();
    wait_all_four(&etcd, &ours, Duration::from_secs(20));

    // A member whose certificate is from another CA (it trusts ours, so
    // only its own certificate is wrong) is refused in the handshake by
    // both; the same message with a certificate from our CA gets through.
    let other = Ca::new(dir.path(), "other");
    let intruder = tls(&other.issue("intruder", "intruder"), &ca);
    let for_etcd = tls(&ca.issue("control", "control"), &ca);
    // Our member admits the CN "etcd-tls" only (--peer-cert-allowed-cn).
    let for_us = tls(&ca.issue("control-etcd", "etcd-tls"), &ca);
    let cluster_id: Id = identity["cluster_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the cluster id");
    let etcd_url = etcd.config.peer_url();
    let unreachable_count = |standin: &mut Peer| {
        standin.counts(EVENT_TIMEOUT)["in"]["MsgUnreachable"]
            .as_u64()
            .unwrap_or(0)
    };
    let system = actix_rt::System::new();
    for url in [&etcd_url, &our_url] {
        let outcome = system.block_on(post(url, intruder.clone(), cluster_id));
        match outcome {
            Some(Error::Transport(_)) => {}
            other => panic!("{url}: the intruder got {other:?}, not a refused handshake"),
        }
    }
    assert_eq!(
        unreachable_count(&mut standin),
        0,
        "nothing reached our raft"
    );
    let control = system.block_on(post(&etcd_url, for_etcd, cluster_id));
    assert!(
        !matches!(control, Some(Error::Transport(_))),
        "etcd: {control:?}"
    );
    let control = system.block_on(post(&our_url, for_us, cluster_id));
    assert!(control.is_none(), "our member: {control:?}");
    assert_eq!(
        unreachable_count(&mut standin),
        1,
        "the control got through"
    );

    standin.stop(EVENT_TIMEOUT);
    let _ = etcd.terminate(EVENT_TIMEOUT);
}

/// Peer TLS for `issued`, trusting `ca`.
fn tls(issued: &Issued, ca: &Ca) -> Arc<rustls::ClientConfig> {
    TlsInfo::new(&issued.cert, &issued.key)
        .trusted_ca_file(ca.file())
        .load()
        .expect("load TLS")
        .client_config()
}

/// A member outside the cluster (id 0x1234) posts one `MsgUnreachable` (a
/// type etcd never sends, so our member's count of it tells whether it
/// arrived) to `url` through a pipeline with `tls`. `None` if it was
/// delivered, else why it was reported unreachable.
async fn post(url: &str, tls: Arc<rustls::ClientConfig>, cluster_id: Id) -> Option<Error> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let callbacks = Callbacks(tx).start();
    let outsider = LocalMember::new(Id(0x1234), cluster_id);
    let config = PipelineConfig::new(&outsider, Id(1), vec![url.to_owned()]).tls(tls);
    let pipeline =
        PipelineActor::start(config, Recipients::from_addr(&callbacks)).expect("valid config");
    let message = Message {
        r#type: MessageType::MsgUnreachable as i32,
        from: 0x1234,
        to: 1,
        ..Message::default()
    };
    pipeline
        .send(Envelope(message))
        .await
        .expect("pipeline alive")
        .expect("accepted");
    // Its outcome, then stop (the pipeline reports its counters when asked).
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while {
        let stats = pipeline.send(GetStats).await.expect("pipeline alive");
        stats.delivered + stats.reported() < stats.offered
    } {
        assert!(Instant::now() < deadline, "no outcome for the message");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = pipeline.send(Stop).await.expect("stopped");
    assert_eq!((stats.offered, stats.delivered + stats.reported()), (1, 1));
    if stats.delivered == 1 {
        return None;
    }
    let reason = tokio::time::timeout(EVENT_TIMEOUT, rx.recv())
        .await
        .expect("a report")
        .expect("the channel open");
    Some(reason)
}

/// Forwards the reasons of unreachable reports to a channel.
struct Callbacks(mpsc::UnboundedSender<Error>);

impl Actor for Callbacks {
    type Context = Context<Self>;
}

impl Handler<ReportUnreachable> for Callbacks {
    type Result = ();
    fn handle(&mut self, m: ReportUnreachable, _: &mut Context<Self>) {
        let _ = self.0.send(m.reason);
    }
}

impl Handler<ReportSnapshot> for Callbacks {
    type Result = ();
    fn handle(&mut self, _: ReportSnapshot, _: &mut Context<Self>) {}
}

/// A free loopback `https://` URL.
fn https_url() -> String {
    format!("https://127.0.0.1:{}", free_port())
}

#[test]
fn etcd_streams_a_snapshot_to_our_member_over_mutual_tls() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let dir = TempDir::new("rafthttp-etcd-tls-snap").expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let (a_cert, b_cert, etcd_cert) = (ca.issue("a", "a"), ca.issue("b", "b"), ca.issue("e", "e"));
    // etcd with A (acking) and B (held down, taking snapshots), all on TLS.
    let (a_url, b_url) = (https_url(), https_url());
    let config = EtcdConfig::new("etcd-snap", "tok-tls-snap")
        .member("a", &a_url)
        .member("b", &b_url)
        .timers(25, 500)
        .arg("--snapshot-count", "100")
        .peer_tls(&etcd_cert.cert, &etcd_cert.key, &ca.file());
    let mut a = Peer::spawn(
        "a",
        &member_args("a", &a_url, &config, &a_cert, &ca),
        dir.path(),
    );
    a.wait_for("a up", EVENT_TIMEOUT, |e| e["event"] == "up");
    let b_data = dir.path().join("snap");
    let mut b_args = member_args("b", &b_url, &config, &b_cert, &ca);
    b_args.extend(
        [
            "--data-dir",
            &b_data.display().to_string(),
            "--down-until-signal",
            "--events",
        ]
        .map(str::to_owned),
    );
    let mut b = Peer::spawn("b", &b_args, dir.path());
    b.wait_for("b down", EVENT_TIMEOUT, |e| e["event"] == "down");
    let etcd = Etcd::start(config).expect("etcd started");
    etcd.wait_healthy(Duration::from_secs(20))
        .expect("etcd healthy with A");

    // 10 000 entries; etcd compacts its log past B's (it keeps 5 000), so
    // only a snapshot can catch B up.
    let out = etcd.etcdctl(&["check", "datascale"], Duration::from_secs(120));
    assert!(out.status.success(), "datascale: {}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !etcd.log().lines().any(|l| {
        serde_json::from_str::<Value>(l).is_ok_and(|l| {
            l["msg"] == "compacted Raft logs" && l["compact-index"].as_u64() > Some(1_000)
        })
    }) {
        assert!(Instant::now() < deadline, "etcd did not compact its log");
        std::thread::sleep(Duration::from_millis(50));
    }

    // B comes up; etcd streams its database over mutual TLS.
    b.signal(libc::SIGUSR1);
    let saved = b.wait_for("saved snapshot", Duration::from_secs(120), |e| {
        e["event"] == "snapshot_saved"
    });
    b.wait_for("the 204", EVENT_TIMEOUT, |e| {
        e["event"] == "snapshot_answer" && e["status"] == 204
    });
    let size = saved["size"].as_u64().expect("database size");
    let path = PathBuf::from(saved["path"].as_str().expect("database path"));
    assert_eq!(std::fs::metadata(&path).expect("saved file").len(), size);
    assert!(size > 1024 * 1024, "a real database: {size} bytes");
    let status = etcd.etcdctl(
        &[
            "snapshot",
            "status",
            &path.display().to_string(),
            "-w",
            "json",
        ],
        EVENT_TIMEOUT,
    );
    assert!(
        status.status.success(),
        "etcd reads the saved database: {}",
        text(&status)
    );
    a.stop(EVENT_TIMEOUT);
    b.stop(EVENT_TIMEOUT);
}

//! Mutual TLS over real loopback: a pipeline delivers over `https://` with
//! a client certificate; the receiver's server refuses, in the handshake, a
//! client certificate from another CA, an expired one, and one outside
//! etcd's allow-lists, so no request is read and no message reaches raft;
//! a certificate rotated on disk is used by new connections; and two
//! members built with `MemberBuilder::tls` talk over etcd's streams and
//! probe each other over TLS.
//!
//! Certificates are made here, at test time, with rcgen.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpServer};
use rafthttp_pipeline::prober::{GetHealth, PeerHealth, ProberConfig};
use rafthttp_pipeline::receiver::ReceiverConfig;
use rafthttp_pipeline::tls::{PeerTls, TlsInfo};
use rafthttp_pipeline::transport::{AddPeer, Member, MemberBuilder, SendMessages};
use rafthttp_pipeline::{
    nodelay, Envelope, LocalMember, PipelineActor, PipelineConfig, ResetConnections, Stop,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use support::messages::heartbeat;
use support::raft::RecordingRaft;
use support::{count_unreachable, ids, member, wait_stats, Recording, WAIT};

/// A directory of its own for one test's files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("rafthttp-tls-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority made for the test, writing PEM files in `dir`.
struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
    dir: PathBuf,
    name: String,
}

/// An issued certificate: its files and its DER bytes.
struct Issued {
    cert_file: PathBuf,
    key_file: PathBuf,
    der: Vec<u8>,
}

impl Ca {
    fn new(dir: &Dir, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed CA");
        let ca = Ca {
            key,
            cert,
            dir: dir.0.clone(),
            name: name.to_owned(),
        };
        std::fs::write(ca.ca_file(), ca.cert.pem()).expect("write the CA");
        ca
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// A server-and-client certificate for `127.0.0.1` named `cn`, written
    /// as `file.crt` and `file.key`; `expired` dates it in the past.
    fn issue(&self, file: &str, cn: &str, sans: &[&str], expired: bool) -> Issued {
        let key = KeyPair::generate().expect("leaf key");
        let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the leaf");
        let issued = Issued {
            cert_file: self.dir.join(format!("{file}.crt")),
            key_file: self.dir.join(format!("{file}.key")),
            der: cert.der().to_vec(),
        };
        // Written aside and renamed in, as a rotation should be.
        write_atomically(&issued.key_file, &key.serialize_pem());
        write_atomically(&issued.cert_file, &cert.pem());
        issued
    }

    /// etcd's peer TLS for `issued`, trusting this CA, with client-cert
    /// auth on.
    fn info(&self, issued: &Issued) -> TlsInfo {
        TlsInfo::new(&issued.cert_file, &issued.key_file)
            .trusted_ca_file(self.ca_file())
            .client_cert_auth(true)
    }
}

fn write_atomically(path: &Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

/// The client certificates (DER) the connections a server accepted
/// presented, one per connection, in order. A connection refused in the
/// handshake never gets here.
type Accepted = Arc<Mutex<Vec<Vec<u8>>>>;

/// A receiving member (2) behind `tls`'s server configuration.
struct TlsMember {
    url: String,
    raft: Recording,
    accepted: Accepted,
    server: ServerHandle,
}

fn start_member(tls: &PeerTls) -> TlsMember {
    let _ = env_logger::builder().is_test(true).try_init();
    let (_, peer, cluster) = ids();
    let raft = Recording::start();
    let routes = member::routes(ReceiverConfig::new(
        &LocalMember::new(peer, cluster),
        raft.inbound(),
    ));
    let accepted = Accepted::default();
    let seen = accepted.clone();
    let hook = move |connection: &dyn std::any::Any, extensions: &mut _| {
        nodelay::on_connect(connection, extensions);
        let stream = connection
            .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
            .expect("a TLS connection");
        assert!(stream.get_ref().0.nodelay().expect("readable"), "nodelay");
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("a client cert");
        seen.lock().unwrap().push(presented[0].to_vec());
    };
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(1)
        .disable_signals()
        .on_connect(hook)
        .bind_rustls_0_23(("127.0.0.1", 0), tls.server_config())
        .expect("bind a loopback port");
    let url = format!("https://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    TlsMember {
        url,
        raft,
        accepted,
        server: handle,
    }
}

/// A pipeline from member 1 to `to` with `tls` for its client side.
fn pipeline(to: &TlsMember, tls: &PeerTls, raft: &Recording) -> Addr<PipelineActor> {
    let (local, peer, cluster) = ids();
    let config = PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer,
        vec![to.url.clone()],
    )
    .tls(tls.client_config());
    PipelineActor::start(config, raft.recipients()).expect("valid configuration")
}

const LOOPBACK: &[&str] = &["127.0.0.1"];

/// Member 2's server side: its own certificate, trusting `ca`.
fn server_tls(ca: &Ca, info: impl FnOnce(TlsInfo) -> TlsInfo) -> PeerTls {
    let issued = ca.issue("server", "member-2", LOOPBACK, false);
    info(ca.info(&issued)).load().expect("server TLS")
}

/// Sends one heartbeat and waits for its outcome: `true` if delivered,
/// `false` if reported unreachable.
async fn heartbeat_delivered(p: &Addr<PipelineActor>) -> bool {
    p.send(Envelope(heartbeat()))
        .await
        .expect("pipeline alive")
        .expect("accepted");
    let stats = wait_stats(p, "one outcome", |s| {
        s.delivered + s.reported() == s.offered
    })
    .await;
    stats.reported() == 0
}

#[actix_rt::test]
async fn a_pipeline_delivers_over_mutual_tls() {
    let dir = Dir::new("delivers");
    let ca = Ca::new(&dir, "ca");
    let member = start_member(&server_tls(&ca, |i| i));
    let client = ca.issue("client", "member-1", LOOPBACK, false);
    let tls = ca.info(&client).load().expect("client TLS");
    let raft = Recording::start();
    let p = pipeline(&member, &tls, &raft);
    for _ in 0..3 {
        assert!(heartbeat_delivered(&p).await);
    }
    assert_eq!(member.raft.wait_received(3, WAIT).await.len(), 3);
    assert!(!member.accepted.lock().unwrap().is_empty());
    assert!(member
        .accepted
        .lock()
        .unwrap()
        .iter()
        .all(|der| *der == client.der));
    let stats = p.send(Stop).await.expect("stopped");
    assert_eq!((stats.offered, stats.delivered), (3, 3));
    member.server.stop(false).await;
}

/// Sends one heartbeat from a client with `client` and asserts that it was
/// refused in the handshake: reported unreachable, no connection reached
/// the HTTP layer, and raft received nothing.
async fn assert_refused(member: &TlsMember, client: PeerTls) {
    let raft = Recording::start();
    let p = pipeline(member, &client, &raft);
    assert!(!heartbeat_delivered(&p).await, "refused");
    assert_eq!(count_unreachable(&raft.events()), 1);
    assert!(
        member.accepted.lock().unwrap().is_empty(),
        "no request read"
    );
    assert!(member.raft.received().is_empty(), "no Inbound");
    p.send(Stop).await.expect("stopped");
}

#[actix_rt::test]
async fn a_client_certificate_from_another_ca_is_refused_in_the_handshake() {
    let dir = Dir::new("other-ca");
    let ca = Ca::new(&dir, "ca");
    let other = Ca::new(&dir, "other");
    let member = start_member(&server_tls(&ca, |i| i));
    // It trusts the member's CA, but its own certificate is from another.
    let client = other.issue("client", "member-1", LOOPBACK, false);
    let tls = ca.info(&client).load().expect("client TLS");
    assert_refused(&member, tls).await;
    member.server.stop(false).await;
}

#[actix_rt::test]
async fn an_expired_client_certificate_is_refused_in_the_handshake() {
    let dir = Dir::new("expired");
    let ca = Ca::new(&dir, "ca");
    let member = start_member(&server_tls(&ca, |i| i));
    let client = ca.issue("client", "member-1", LOOPBACK, true);
    assert_refused(&member, ca.info(&client).load().expect("client TLS")).await;
    member.server.stop(false).await;
}

#[actix_rt::test]
async fn the_cn_allow_list_admits_its_names_only() {
    let dir = Dir::new("allowed-cn");
    let ca = Ca::new(&dir, "ca");
    let member = start_member(&server_tls(&ca, |i| {
        i.allowed_cn(vec!["member-1".into(), "member-3".into()])
    }));
    let intruder = ca.issue("intruder", "intruder", LOOPBACK, false);
    assert_refused(&member, ca.info(&intruder).load().expect("TLS")).await;

    let client = ca.issue("client", "member-1", LOOPBACK, false);
    let raft = Recording::start();
    let p = pipeline(&member, &ca.info(&client).load().expect("TLS"), &raft);
    assert!(heartbeat_delivered(&p).await, "member-1 is allowed");
    assert_eq!(member.raft.wait_received(1, WAIT).await.len(), 1);
    p.send(Stop).await.expect("stopped");
    member.server.stop(false).await;
}

#[actix_rt::test]
async fn the_hostname_allow_list_checks_the_certificates_names() {
    let dir = Dir::new("allowed-hostname");
    let ca = Ca::new(&dir, "ca");
    let member = start_member(&server_tls(&ca, |i| {
        i.allowed_hostname(vec!["member-1.example".into()])
    }));
    let elsewhere = ca.issue("elsewhere", "member-1", &["member-9.example"], false);
    assert_refused(&member, ca.info(&elsewhere).load().expect("TLS")).await;

    let client = ca.issue("client", "x", &["member-1.example"], false);
    let raft = Recording::start();
    let p = pipeline(&member, &ca.info(&client).load().expect("TLS"), &raft);
    assert!(heartbeat_delivered(&p).await, "member-1.example is allowed");
    p.send(Stop).await.expect("stopped");
    member.server.stop(false).await;
}

#[actix_rt::test]
async fn both_allow_lists_at_once_is_etcds_error() {
    let dir = Dir::new("exclusive");
    let ca = Ca::new(&dir, "ca");
    let issued = ca.issue("server", "member-2", LOOPBACK, false);
    let err = ca
        .info(&issued)
        .allowed_cn(vec!["a".into()])
        .allowed_hostname(vec!["b".into()])
        .load()
        .expect_err("mutually exclusive");
    assert_eq!(
        err.to_string(),
        r#"AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")"#
    );
}

#[actix_rt::test]
async fn a_rotated_certificate_is_used_by_new_connections() {
    let dir = Dir::new("rotate");
    let ca = Ca::new(&dir, "ca");
    let member = start_member(&server_tls(&ca, |i| i));
    let old = ca.issue("client", "member-1", LOOPBACK, false);
    let tls = ca.info(&old).load().expect("client TLS");
    let raft = Recording::start();
    let p = pipeline(&member, &tls, &raft);
    assert!(heartbeat_delivered(&p).await);
    let before = member.accepted.lock().unwrap().len();
    assert!(before >= 1);

    // Rotated on disk, in place; no call into the crate.
    let new = ca.issue("client", "member-1-renewed", LOOPBACK, false);
    assert_ne!(new.der, old.der);
    // The open connection keeps the old certificate; ResetConnections
    // drops it, and the next connection presents the new one.
    p.send(ResetConnections).await.expect("pipeline alive");
    assert!(heartbeat_delivered(&p).await);
    let accepted = member.accepted.lock().unwrap().clone();
    assert!(accepted.len() > before, "a new connection");
    assert!(accepted[..before].iter().all(|der| *der == old.der));
    assert!(accepted[before..].iter().all(|der| *der == new.der));
    p.send(Stop).await.expect("stopped");
    member.server.stop(false).await;
}

#[actix_rt::test]
async fn the_server_serves_a_rotated_certificate_to_new_connections() {
    let dir = Dir::new("rotate-server");
    let ca = Ca::new(&dir, "ca");
    let server = ca.issue("server", "member-2", LOOPBACK, false);
    let server_tls = ca.info(&server).load().expect("server TLS");
    let member = start_member(&server_tls);
    let client = ca.issue("client", "member-1", LOOPBACK, false);
    let tls = ca.info(&client).load().expect("client TLS");
    let raft = Recording::start();
    let p = pipeline(&member, &tls, &raft);
    assert!(heartbeat_delivered(&p).await);

    // A new server certificate without the member's address: new
    // connections get it (explicit reload) and the client refuses them.
    ca.issue("server", "member-2", &["elsewhere.example"], false);
    server_tls.reload().expect("reload");
    p.send(ResetConnections).await.expect("pipeline alive");
    assert!(
        !heartbeat_delivered(&p).await,
        "the new certificate is served"
    );
    p.send(Stop).await.expect("stopped");
    member.server.stop(false).await;
}

/// A member over mutual TLS with streams on, its certificate named `cn`.
fn tls_member(ca: &Ca, id: rafthttp_pipeline::Id, cn: &str) -> (Member<RecordingRaft>, Recording) {
    let issued = ca.issue(cn, cn, LOOPBACK, false);
    let tls = ca.info(&issued).load().expect("member TLS");
    let raft = Recording::start();
    let (_, _, cluster) = ids();
    let member = MemberBuilder::new(LocalMember::new(id, cluster))
        .tls(tls)
        .workers(1)
        .transport(|c| c.with_streams().probe(fast_probes()))
        .start(|_| raft.raft_recipients())
        .expect("bind a loopback port");
    (member, raft)
}

/// Probes every 20 ms, so that a test sees a few.
fn fast_probes() -> ProberConfig {
    ProberConfig {
        interval: std::time::Duration::from_millis(20),
        ..ProberConfig::default()
    }
}

/// What `member`'s prober found about `peer` once it found it healthy, or
/// at the end of [`WAIT`].
async fn wait_healthy(member: &Member<RecordingRaft>, peer: rafthttp_pipeline::Id) -> PeerHealth {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let health = member.transport().send(GetHealth(peer)).await.unwrap();
        let health = health.expect("the peer is probed");
        if health.healthy || std::time::Instant::now() > deadline {
            return health;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

// Two members over mutual TLS: each one's stream readers dial the other's
// `https://` stream endpoints with its client certificate, so heartbeats
// arrive by stream (no `X-PeerURLs`), not only by pipeline; and each
// one's prober probes the other over TLS.
#[actix_rt::test]
async fn members_over_mutual_tls_talk_by_stream() {
    let dir = Dir::new("streams");
    let ca = Ca::new(&dir, "ca");
    let (local, peer, _) = ids();
    let (one, _) = tls_member(&ca, local, "member-1");
    let (two, two_raft) = tls_member(&ca, peer, "member-2");
    assert!(one.urls()[0].starts_with("https://"), "{:?}", one.urls());
    for (from, to) in [(&one, &two), (&two, &one)] {
        let add = AddPeer {
            id: to.local().id,
            urls: to.urls().to_vec(),
        };
        from.transport()
            .send(add)
            .await
            .unwrap()
            .expect("valid peer");
    }
    let mut sent = 0;
    let by_stream = loop {
        sent += 1;
        one.transport().do_send(SendMessages(vec![heartbeat()]));
        let got = two_raft.wait_received(sent, WAIT).await;
        if got[sent - 1].inbound.peer_urls.is_empty() {
            break true;
        }
        if sent == 200 {
            break false;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(by_stream, "no heartbeat came by stream in {sent}");
    assert_eq!(count_unreachable(&two_raft.events()), 0);
    // The prober speaks TLS too.
    let health = wait_healthy(&one, peer).await;
    assert!(health.healthy && health.error.is_none(), "{health:?}");
    one.stop().await;
    two.stop().await;
}

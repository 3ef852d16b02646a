//! Interoperation with a real etcd 3.4.23 member.
//!
//! - a. `rafthttp-pipeline`'s `PipelineActor` posts to etcd's `/raft`: a
//!   well-formed message gets 204 and the peer becomes active; a wrong
//!   cluster id gets 412 `cluster ID mismatch` (unreachable, plus snapshot
//!   failure for a `MsgSnap`); `X-Server-Version: 2.3.0` gets
//!   `incompatible version`.
//! - b. etcd posts to the library's receiver: the messages decode, with the
//!   right types and ids, and etcd's headers carry the ids we derive.
//! - c. etcd plus the `etcd-peer` binary (a child process) form a cluster:
//!   etcd elects itself, commits `etcdctl put`, serves a linearizable `get`,
//!   takes 100 more puts, and on SIGTERM hands leadership over and stops in
//!   under 2 s. Without the stand-in's `MsgAppResp`, `put` fails. The
//!   stand-in's side comes from what the binary prints: the ids it derived
//!   (its first line), its message counts (on SIGUSR2, and at exit) and its
//!   pipelines' final counters (`pipeline_stopped`, at exit).
//!
//! a and b run the library in-process; they live here, beside c, because
//! all three need a real etcd (`support/etcd.rs`). Every etcd and every
//! stand-in runs on ephemeral 127.0.0.1 ports and is killed by PID when its
//! test ends, pass or fail. The tests run one at a time, so that etcd's
//! 10 ms timers do not compete for the CPU.

mod support;

use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::Service;
use actix_web::{App, HttpServer};
use rafthttp_pipeline::membership::InitialCluster;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::LocalMember;
use rafthttp_pipeline::{
    Envelope, Error, Id, Inbound, PeerStatusChanged, PipelineActor, PipelineConfig, ProcessError,
    Recipients, ReportSnapshot, ReportUnreachable, SnapshotStatus, Stop,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use support::etcd::{
    etcd_available, free_port, http_get, loopback_url, start_with_retry, Etcd, EtcdConfig, TempDir,
};
use support::peer::Peer;

/// Our member id in test a, where we are not a member of etcd's cluster.
const OUTSIDER: Id = Id(0x1234);
/// How long any one expected event may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One etcd test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _ = env_logger::builder().is_test(true).try_init();
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// a. Our pipeline to etcd

/// What the pipeline told its recipients.
#[derive(Debug)]
enum Event {
    Unreachable(ReportUnreachable),
    Snapshot(ReportSnapshot),
    Status(PeerStatusChanged),
}

/// Forwards every pipeline callback to a channel.
struct Callbacks(mpsc::UnboundedSender<Event>);

impl Actor for Callbacks {
    type Context = Context<Self>;
}

impl Handler<ReportUnreachable> for Callbacks {
    type Result = ();
    fn handle(&mut self, m: ReportUnreachable, _: &mut Context<Self>) {
        let _ = self.0.send(Event::Unreachable(m));
    }
}

impl Handler<ReportSnapshot> for Callbacks {
    type Result = ();
    fn handle(&mut self, m: ReportSnapshot, _: &mut Context<Self>) {
        let _ = self.0.send(Event::Snapshot(m));
    }
}

impl Handler<PeerStatusChanged> for Callbacks {
    type Result = ();
    fn handle(&mut self, m: PeerStatusChanged, _: &mut Context<Self>) {
        let _ = self.0.send(Event::Status(m));
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(EVENT_TIMEOUT, rx.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("channel closed while waiting for {what}"),
        Err(_) => panic!("no {what} within {EVENT_TIMEOUT:?}"),
    }
}

fn message(kind: MessageType, to: Id, from: Id, term: u64) -> Message {
    Message {
        r#type: kind as i32,
        to: to.0,
        from: from.0,
        term,
        ..Message::default()
    }
}

#[test]
fn a_pipeline_posts_to_real_etcd() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let token = "tok-a";
    let etcd = start_with_retry(|| EtcdConfig::new("etcd-a", token).fast_timers());
    etcd.wait_healthy(EVENT_TIMEOUT).unwrap();
    let cluster = InitialCluster::parse(&etcd.config.initial_cluster(), token).unwrap();
    let etcd_id = cluster.member("etcd-a").unwrap().id;

    // etcd's own word on the ids we derived.
    let members = http_get(("127.0.0.1", etcd.config.peer_port), "/members").expect("GET /members");
    assert_eq!(members.status, 200, "{members:?}");
    assert_eq!(
        members.header("x-etcd-cluster-id"),
        Some(&*cluster.cluster_id.to_string())
    );
    let body = members.body;
    let members: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(members[0]["id"].as_u64(), Some(etcd_id.0), "{body}");

    let peer_urls = vec![etcd.config.peer_url()];
    actix_rt::System::new().block_on(async move {
        let (tx, mut events) = mpsc::unbounded_channel();
        let callbacks = Callbacks(tx).start();
        let recipients =
            Recipients::from_addr(&callbacks).peer_status(callbacks.clone().recipient());
        let config = |cluster_id| {
            PipelineConfig::new(
                &LocalMember::new(OUTSIDER, cluster_id),
                etcd_id,
                peer_urls.clone(),
            )
        };

        // A well-formed message: 204, so the peer becomes active. etcd is
        // leader at term >= 2 and ignores a term-1 heartbeat from a stranger.
        let pipeline =
            PipelineActor::start(config(cluster.cluster_id), recipients.clone()).unwrap();
        let heartbeat = message(MessageType::MsgHeartbeat, etcd_id, OUTSIDER, 1);
        pipeline
            .send(Envelope(heartbeat.clone()))
            .await
            .unwrap()
            .unwrap();
        match next(&mut events, "peer status").await {
            Event::Status(s) => {
                assert_eq!((s.peer, s.active), (etcd_id, true), "{s:?}");
                assert!(s.since.is_some());
            }
            other => panic!("expected the peer to become active, got {other:?}"),
        }
        let stats = pipeline.send(Stop).await.unwrap();
        assert_eq!((stats.delivered, stats.failed), (1, 0), "{stats:?}");

        // A wrong cluster id: 412 "cluster ID mismatch".
        let wrong = Id(cluster.cluster_id.0 ^ 1);
        let pipeline = PipelineActor::start(config(wrong), recipients.clone()).unwrap();
        let snap = message(MessageType::MsgSnap, etcd_id, OUTSIDER, 1);
        pipeline
            .send(Envelope(heartbeat.clone()))
            .await
            .unwrap()
            .unwrap();
        pipeline.send(Envelope(snap)).await.unwrap().unwrap();
        let (mut unreachable, mut snapshot_reports) = (Vec::new(), Vec::new());
        while unreachable.len() < 2 || snapshot_reports.is_empty() {
            match next(&mut events, "reports for the wrong cluster id").await {
                Event::Unreachable(u) => unreachable.push(u),
                Event::Snapshot(s) => snapshot_reports.push(s),
                Event::Status(s) => assert!(!s.active, "{s:?}"),
            }
        }
        let mut types: Vec<i32> = unreachable.iter().map(|u| u.message_type).collect();
        types.sort();
        assert_eq!(
            types,
            [
                MessageType::MsgSnap as i32,
                MessageType::MsgHeartbeat as i32
            ]
        );
        for u in &unreachable {
            assert_eq!(
                (u.to, &u.reason),
                (etcd_id, &Error::ClusterIdMismatch),
                "{u:?}"
            );
        }
        assert_eq!(
            snapshot_reports,
            [ReportSnapshot {
                to: etcd_id,
                status: SnapshotStatus::Failure
            }]
        );
        let stats = pipeline.send(Stop).await.unwrap();
        assert_eq!((stats.delivered, stats.failed), (0, 2), "{stats:?}");

        // X-Server-Version 2.3.0: 412 "incompatible version".
        let mut old = config(cluster.cluster_id);
        old.server_version = "2.3.0".into();
        let pipeline = PipelineActor::start(old, recipients).unwrap();
        pipeline.send(Envelope(heartbeat)).await.unwrap().unwrap();
        loop {
            match next(&mut events, "incompatible version report").await {
                Event::Unreachable(u) => {
                    assert_eq!((u.to, &u.reason), (etcd_id, &Error::IncompatibleVersion));
                    break;
                }
                Event::Status(s) => assert!(!s.active, "{s:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        pipeline.send(Stop).await.unwrap();
    });

    // And etcd's side of the story.
    let log = etcd.log();
    assert!(log.contains("request cluster ID mismatch"), "{log}");
    assert!(
        log.contains("failed to check version compatibility"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// b. etcd to our receiver

/// Forwards every received message to a channel and accepts it.
struct Inbox(mpsc::UnboundedSender<Inbound>);

impl Actor for Inbox {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Inbox {
    type Result = Result<(), ProcessError>;
    fn handle(&mut self, m: Inbound, _: &mut Context<Self>) -> Self::Result {
        let _ = self.0.send(m);
        Ok(())
    }
}

/// One request etcd made to our peer port, as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    status: u16,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn posts_answered(seen: &Mutex<Vec<Seen>>) -> usize {
    let seen = seen.lock().unwrap();
    seen.iter()
        .filter(|s| s.method == "POST" && s.path == "/raft")
        .count()
}

#[test]
fn b_etcd_posts_to_our_receiver() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let token = "tok-b";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let our_url = loopback_url(listener.local_addr().unwrap().port());
    let etcd = start_with_retry(|| {
        EtcdConfig::new("etcd-b", token)
            .member("rust", &our_url)
            .fast_timers()
    });
    let cluster = InitialCluster::parse(&etcd.config.initial_cluster(), token).unwrap();
    let etcd_id = cluster.member("etcd-b").unwrap().id;
    let our_id = cluster.member("rust").unwrap().id;
    let etcd_url = etcd.config.peer_url();

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let inbound = actix_rt::System::new().block_on({
        let seen = seen.clone();
        async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let inbox = Inbox(tx).start();
            let config = ReceiverConfig::new(
                &LocalMember::new(our_id, cluster.cluster_id),
                inbox.recipient(),
            )
            .serve_version(true);
            let recorded = seen.clone();
            let server = HttpServer::new(move || {
                let seen = recorded.clone();
                App::new()
                    .wrap_fn(move |req, srv| {
                        let seen = seen.clone();
                        let method = req.method().to_string();
                        let path = req.path().to_owned();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                                (k.as_str().to_owned(), v)
                            })
                            .collect();
                        let response = srv.call(req);
                        async move {
                            let response = response.await?;
                            seen.lock().unwrap().push(Seen {
                                method,
                                path,
                                status: response.status().as_u16(),
                                headers,
                            });
                            Ok(response)
                        }
                    })
                    .configure(receiver::configure(config.clone()))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            let handle = server.handle();
            actix_rt::spawn(server);
            let mut inbound = Vec::new();
            for _ in 0..3 {
                inbound.push(next(&mut rx, "a message from etcd").await);
            }
            // The answers are recorded once written: wait for the third.
            let deadline = Instant::now() + EVENT_TIMEOUT;
            while posts_answered(&seen) < 3 && Instant::now() < deadline {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            handle.stop(true).await;
            inbound
        }
    });

    // The messages decode, with etcd's ids and the types of a campaign:
    // etcd cannot win alone, so it keeps asking for our vote. Its log
    // holds the two bootstrap ConfChange entries, both at term 1.
    let mut last_term = 0;
    for m in &inbound {
        let msg = &m.message;
        assert_eq!(msg.msg_type(), Some(MessageType::MsgVote), "{msg:?}");
        assert_eq!((Id(msg.from), Id(msg.to)), (etcd_id, our_id), "{msg:?}");
        assert_eq!(m.from, Some(etcd_id), "X-Server-From");
        assert_eq!(m.peer_urls, [etcd_url.as_str()], "X-PeerURLs");
        assert!(msg.term >= 2 && msg.term >= last_term, "{msg:?}");
        assert_eq!((msg.index, msg.log_term), (2, 1), "{msg:?}");
        last_term = msg.term;
    }

    // etcd's headers carry exactly the ids we derived.
    let seen = seen.lock().unwrap().clone();
    let posts: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path == "/raft")
        .collect();
    assert!(posts.len() >= 3, "{seen:?}");
    for post in posts {
        assert_eq!(post.status, 204, "{post:?}");
        assert_eq!(post.header("x-server-from"), Some(&*etcd_id.to_string()));
        assert_eq!(
            post.header("x-etcd-cluster-id"),
            Some(&*cluster.cluster_id.to_string())
        );
        assert_eq!(post.header("x-server-version"), Some("3.4.23"));
        assert_eq!(post.header("content-type"), Some("application/protobuf"));
    }
    // etcd tried its streams, got 404, and kept to the pipeline.
    for s in seen.iter().filter(|s| s.path.starts_with("/raft/stream/")) {
        assert_eq!(s.status, 404, "{s:?}");
    }
}

// ---------------------------------------------------------------------------
// c. The cluster: etcd plus the stand-in

const TOKEN_C: &str = "tok-c";

/// etcd and the stand-in in one two-member cluster.
struct Cluster {
    etcd: Etcd,
    /// The `etcd-peer` binary, named `rust-peer` in the cluster.
    standin: Peer,
    /// The stand-in's log.
    _dir: TempDir,
}

/// Starts the stand-in, waits until it is up, then starts etcd, so that the
/// stand-in answers from etcd's first message. Retried with fresh ports
/// when a port was taken between picking it and binding it. Without
/// `ack_appends` the stand-in never answers `MsgApp`, and prints an event
/// for each one it receives.
fn start_cluster(ack_appends: bool) -> Cluster {
    let mut errors = Vec::new();
    for _ in 0..3 {
        let dir = TempDir::new("rafthttp-etcd-interop").expect("temp dir");
        let our_url = loopback_url(free_port());
        let config = EtcdConfig::new("etcd-c", TOKEN_C)
            .member("rust-peer", &our_url)
            .fast_timers();
        let mut args = vec![
            "--name".to_owned(),
            "rust-peer".to_owned(),
            "--initial-cluster".to_owned(),
            config.initial_cluster(),
            "--initial-cluster-token".to_owned(),
            TOKEN_C.to_owned(),
            "--listen-peer-urls".to_owned(),
            our_url,
        ];
        if !ack_appends {
            args.extend(["--no-append-ack".to_owned(), "--events".to_owned()]);
        }
        let mut standin = Peer::spawn("rust-peer", &args, dir.path());
        if let Err(e) = standin.try_wait_for(EVENT_TIMEOUT, |e| e["event"] == "up") {
            errors.push(format!("rust-peer: {e}\n{}", standin.log_tail(5)));
            continue;
        }
        match Etcd::start(config) {
            Ok(etcd) => {
                return Cluster {
                    etcd,
                    standin,
                    _dir: dir,
                }
            }
            Err(e) => errors.push(e),
        }
    }
    panic!("the cluster did not start:\n{}", errors.join("\n---\n"));
}

/// An id as the stand-in prints it (hex, as etcd writes ids).
fn id(value: &Value) -> Id {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an id: {value}"))
}

/// How many messages of `kind` the stand-in counted in `direction`
/// (`"in"`: received, `"out"`: handed to a pipeline).
fn count(counts: &Value, direction: &str, kind: MessageType) -> u64 {
    counts[direction][format!("{kind:?}")].as_u64().unwrap_or(0)
}

fn ok(out: &std::process::Output) -> bool {
    out.status.success()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn c_etcd_and_our_member_elect_a_leader_and_commit_writes() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let Cluster {
        mut etcd,
        mut standin,
        _dir,
    } = start_cluster(true);
    // The ids as the stand-in derived them from its flags.
    let identity = standin.identity();
    let cluster_id = id(&identity["cluster_id"]);
    let etcd_id = id(&identity["members"]["etcd-c"]);
    let me = id(&identity["member_id"]);

    // The first put: it commits only once our member acked etcd's entries.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    let first_put = loop {
        attempts += 1;
        // Short timeouts keep the measurement fine-grained; longer ones
        // later keep a slow machine from failing every attempt.
        let timeout = Duration::from_millis(if attempts <= 20 { 300 } else { 2000 });
        let out = etcd.etcdctl(&["put", "foo", "bar"], timeout);
        if ok(&out) {
            break etcd.started_at.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no successful put within 30 s: {}",
            text(&out)
        );
    };

    // etcd elected itself, with our vote, in the cluster whose ids we derived.
    let status = etcd.etcdctl(
        &["endpoint", "status", "-w", "json"],
        Duration::from_secs(2),
    );
    assert!(ok(&status), "{}", text(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let status = &status[0]["Status"];
    assert_eq!(status["leader"].as_u64(), Some(etcd_id.0), "{status}");
    assert_eq!(status["header"]["member_id"].as_u64(), Some(etcd_id.0));
    assert_eq!(status["header"]["cluster_id"].as_u64(), Some(cluster_id.0));

    // A linearizable read: a ReadIndex round of heartbeats we answered.
    let get = etcd.etcdctl(
        &["get", "foo", "--print-value-only", "--consistency=l"],
        Duration::from_secs(2),
    );
    assert!(ok(&get), "{}", text(&get));
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "bar");

    for i in 0..100 {
        let out = etcd.etcdctl(
            &["put", &format!("key-{i}"), &format!("value-{i}")],
            Duration::from_secs(2),
        );
        assert!(ok(&out), "put {i}: {}", text(&out));
    }
    let get = etcd.etcdctl(
        &["get", "key-99", "--print-value-only"],
        Duration::from_secs(2),
    );
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "value-99");

    // Every message carried etcd's X-Server-From as the stand-in derived
    // it, and its X-Etcd-Cluster-ID too: the receiver answers 412 to any
    // other cluster id, and those messages are never counted.
    let running = standin.counts(EVENT_TIMEOUT);
    assert_eq!(
        running["senders"],
        json!([etcd_id.to_string()]),
        "X-Server-From"
    );
    assert!(
        count(&running, "in", MessageType::MsgVote) >= 1,
        "{running}"
    );
    assert!(
        count(&running, "in", MessageType::MsgApp) >= 100,
        "{running}"
    );
    assert!(
        count(&running, "in", MessageType::MsgHeartbeat) >= 1,
        "{running}"
    );
    assert_eq!(
        count(&running, "out", MessageType::MsgAppResp),
        count(&running, "in", MessageType::MsgApp),
        "{running}"
    );
    assert_eq!(
        count(&running, "out", MessageType::MsgHeartbeatResp),
        count(&running, "in", MessageType::MsgHeartbeat),
        "{running}"
    );

    // SIGTERM: etcd hands leadership to our member and stops at once.
    let stopped = etcd.terminate(Duration::from_secs(2));
    let took = stopped.unwrap_or_else(|waited| {
        panic!(
            "etcd still running {waited:?} after SIGTERM; stand-in counts {}",
            standin.counts(EVENT_TIMEOUT)
        )
    });
    let after = standin.counts(EVENT_TIMEOUT);
    assert_eq!(
        count(&after, "in", MessageType::MsgTimeoutNow),
        1,
        "{after}"
    );
    assert_eq!(count(&after, "out", MessageType::MsgVote), 1, "{after}");
    assert!(
        count(&after, "in", MessageType::MsgVoteResp) >= 1,
        "{after}"
    );
    assert_eq!(
        count(&after, "out", MessageType::MsgHeartbeat),
        1,
        "{after}"
    );

    standin.stop(EVENT_TIMEOUT);
    println!("etcd interop figures (etcd {etcd_id}, stand-in {me}, cluster {cluster_id}):");
    println!(
        "  first successful put {:.3} s after etcd started (attempt {attempts})",
        first_put.as_secs_f64()
    );
    println!("  etcd stopped {:.3} s after SIGTERM", took.as_secs_f64());
    println!("  messages etcd -> stand-in: {}", after["in"]);
    println!("  messages stand-in -> etcd: {}", after["out"]);
    for stats in standin.seen("pipeline_stopped") {
        println!(
            "  pipeline to {}: offered {} delivered {} failed {} dropped {} cancelled {}",
            stats["peer"].as_str().unwrap_or("?"),
            stats["offered"],
            stats["delivered"],
            stats["failed"],
            stats["dropped"],
            stats["cancelled"]
        );
    }
}

#[test]
fn c_without_append_acks_a_put_fails() {
    if !etcd_available() {
        return;
    }
    let _serial = serial();
    let Cluster {
        etcd,
        mut standin,
        _dir,
    } = start_cluster(false);

    // Wait until etcd leads and replicates to us: a MsgApp arrives, and
    // goes unanswered.
    let append = standin.wait_for("a MsgApp from etcd", EVENT_TIMEOUT, |e| {
        e["event"] == "append"
    });
    assert_eq!(append["answer"], Value::Null, "{append}");
    let out = etcd.etcdctl(&["put", "foo", "bar"], Duration::from_secs(2));
    assert!(!ok(&out), "put succeeded without a single MsgAppResp");
    println!("put without append acks: {}", text(&out).trim());

    let counts = standin.counts(EVENT_TIMEOUT);
    assert!(
        count(&counts, "out", MessageType::MsgVoteResp) >= 1,
        "{counts}"
    );
    assert!(count(&counts, "in", MessageType::MsgApp) >= 1, "{counts}");
    assert_eq!(
        count(&counts, "out", MessageType::MsgAppResp),
        0,
        "{counts}"
    );
}

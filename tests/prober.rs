//! The prober over real HTTP on loopback: against our own receiver, against
//! a peer whose clock is off (its `Date` header or its `"Now"`), and
//! against a port where nobody listens. Warnings are read from the log.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use rafthttp_pipeline::metrics::prometheus::Registry;
use rafthttp_pipeline::metrics::Metrics;
use rafthttp_pipeline::prober::{
    AddPeer, AddPeerError, ClockOffset, GetHealth, PeerHealth, Prober, ProberConfig, RemovePeer,
};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::transport;
use rafthttp_pipeline::{Id, LocalMember, Transport, TransportConfig};
use support::logs::{capture_warnings, warnings_with};
use support::Recording;

/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(20);
const RTT_FAMILY: &str = "etcd_network_peer_round_trip_time_seconds";

// ---------------------------------------------------------------------------
// Warnings, captured from the `log` facade.

/// The warnings starting with `text` about peer `id`.
fn warnings(text: &str, id: Id) -> Vec<String> {
    let about = format!("remote-peer-id={id} ");
    let mut lines = warnings_with(&[text, &about]);
    lines.retain(|l| l.starts_with(text));
    lines
}

// ---------------------------------------------------------------------------
// Helpers.

/// Polls `f` every 10 ms until it gives `Some`, at most [`WAIT`].
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn health(prober: &Addr<Prober>, id: Id) -> PeerHealth {
    prober
        .send(GetHealth(id))
        .await
        .unwrap()
        .expect("peer probed")
}

/// Probes every 20 ms, checks every 50 ms.
fn fast() -> ProberConfig {
    ProberConfig {
        interval: Duration::from_millis(20),
        monitoring_interval: Duration::from_millis(50),
        error_interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        ..ProberConfig::default()
    }
}

/// (count, sum) of the round-trip histogram for `to`.
fn round_trips(registry: &Registry, to: Id) -> (u64, f64) {
    let label = to.to_string();
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == RTT_FAMILY)
        .flat_map(|f| f.get_metric().iter())
        .find(|m| m.get_label()[0].value() == label)
        .map(|m| {
            let h = m.get_histogram();
            (h.get_sample_count(), h.get_sample_sum())
        })
        .unwrap_or((0, 0.0))
}

fn serve<F>(app: F) -> (SocketAddr, ServerHandle)
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = HttpServer::new(move || App::new().configure(app.clone()))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, handle)
}

/// Our receiver, serving `/raft/probing` among etcd's routes.
fn start_receiver() -> (SocketAddr, ServerHandle) {
    let raft = Recording::start().inbound();
    let config = ReceiverConfig::new(&LocalMember::new(Id(1), Id(0x100)), raft);
    serve(move |cfg| receiver::configure(config.clone())(cfg))
}

/// How the skewed peer tells its time.
#[derive(Debug, Clone, Copy)]
enum Skewed {
    /// A `Date` header this far behind ours, and no `"Now"` in the body.
    DateBehind(Duration),
    /// A `"Now"` this far ahead of ours (and a true `Date` header).
    NowAhead(Duration),
}

/// A peer answering `/raft/probing` with its clock off by `skew`.
fn start_skewed(skew: Skewed) -> (SocketAddr, ServerHandle) {
    serve(move |cfg| {
        cfg.route(
            "/raft/probing",
            web::get().to(move || async move {
                let now = SystemTime::now();
                match skew {
                    Skewed::DateBehind(d) => HttpResponse::Ok()
                        .insert_header(("Date", httpdate::fmt_http_date(now - d)))
                        .body("{\"OK\":true}\n"),
                    Skewed::NowAhead(d) => HttpResponse::Ok().body(format!(
                        "{{\"OK\":true,\"Now\":\"{}\"}}\n",
                        rfc3339(now + d)
                    )),
                }
            }),
        );
    })
}

/// `t` as Go writes a UTC `time.Time` in JSON.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let (days, secs) = (d.as_secs() / 86_400, d.as_secs() % 86_400);
    // H. Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_nanos()
    )
}

/// A loopback URL where nothing listens: connections are refused.
fn dead_url() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

// ---------------------------------------------------------------------------
// Tests.

#[actix_rt::test]
async fn our_receiver_is_healthy_and_every_round_trip_is_observed() {
    capture_warnings();
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (addr, server) = start_receiver();
    let prober = Prober::new(fast(), Some(metrics)).start();
    let peer = Id(0x11);
    let added = prober.send(AddPeer {
        id: peer,
        urls: vec![format!("http://{addr}/")],
    });
    added.await.unwrap().unwrap();

    eventually("three probes", async || {
        let h = health(&prober, peer).await;
        (h.total >= 3).then_some(())
    })
    .await;
    let last = prober.send(RemovePeer(peer)).await.unwrap().unwrap();
    assert!(last.healthy, "{last:?}");
    assert_eq!((last.loss, last.error.clone()), (0, None));
    assert!(last.srtt > Duration::ZERO);
    let offset = last.clock_offset.expect("the receiver tells its time");
    assert!(offset.magnitude() < Duration::from_secs(1), "{offset:?}");

    let (count, sum) = round_trips(&registry, peer);
    assert_eq!(count, last.total, "one observation per answered probe");
    assert!(sum > 0.0);
    assert!(warnings("prober found high clock drift", peer).is_empty());
    assert_eq!(prober.send(GetHealth(peer)).await.unwrap(), None);
    assert_eq!(prober.send(RemovePeer(peer)).await.unwrap(), None);
    server.stop(true).await;
}

#[actix_rt::test]
async fn a_date_header_five_seconds_behind_warns_of_clock_drift() {
    capture_warnings();
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (addr, server) = start_skewed(Skewed::DateBehind(Duration::from_secs(5)));
    let prober = Prober::new(fast(), Some(metrics)).start();
    let peer = Id(0x22);
    let add = AddPeer {
        id: peer,
        urls: vec![format!("http://{addr}")],
    };
    prober.send(add).await.unwrap().unwrap();

    let line = eventually("a clock drift warning", async || {
        warnings("prober found high clock drift", peer).pop()
    })
    .await;
    assert!(
        line.starts_with(&format!(
            "prober found high clock drift round-tripper-name=ROUND_TRIPPER_SNAPSHOT remote-peer-id={peer} clock-drift="
        )),
        "{line}"
    );
    let h = health(&prober, peer).await;
    assert!(h.healthy);
    match h.clock_offset {
        // The header has whole seconds: 5 s ± 0.5 s, less half the round trip.
        Some(ClockOffset::Behind(d)) => {
            assert!(
                d > Duration::from_millis(4400) && d < Duration::from_millis(5600),
                "{d:?}"
            )
        }
        other => panic!("expected the peer behind, got {other:?}"),
    }
    let (count, _) = round_trips(&registry, peer);
    assert!(count >= 1, "the round-trip histogram is observed");
    server.stop(true).await;
}

#[actix_rt::test]
async fn a_now_three_seconds_ahead_warns_too() {
    capture_warnings();
    let (addr, server) = start_skewed(Skewed::NowAhead(Duration::from_secs(3)));
    let prober = Prober::new(fast(), None).start();
    let peer = Id(0x33);
    let add = AddPeer {
        id: peer,
        urls: vec![format!("http://{addr}")],
    };
    prober.send(add).await.unwrap().unwrap();

    let line = eventually("a clock drift warning", async || {
        warnings("prober found high clock drift", peer).pop()
    })
    .await;
    assert!(line.contains(" clock-drift=-"), "ahead is negative: {line}");
    let h = health(&prober, peer).await;
    match h.clock_offset {
        // 3 s, less the answer's way back, plus half the smoothed round
        // trip (which may still carry a slower first probe).
        Some(ClockOffset::Ahead(d)) => {
            let most = Duration::from_secs(3) + h.srtt / 2;
            assert!(d > Duration::from_millis(2500) && d <= most, "{d:?} {h:?}")
        }
        other => panic!("expected the peer ahead, got {other:?}"),
    }
    server.stop(true).await;
}

#[actix_rt::test]
async fn an_unreachable_peer_is_unhealthy_and_warned_about() {
    capture_warnings();
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let prober = Prober::new(fast(), Some(metrics)).start();
    let peer = Id(0x44);
    let url = dead_url();
    let add = AddPeer {
        id: peer,
        urls: vec![url.clone()],
    };
    prober.send(add).await.unwrap().unwrap();

    let line = eventually("an unhealthy warning", async || {
        warnings("prober detected unhealthy status", peer).pop()
    })
    .await;
    assert!(line.contains(&format!("{url}/raft/probing")), "{line}");
    let h = health(&prober, peer).await;
    assert!(!h.healthy);
    assert!(h.loss >= 1 && h.loss == h.total, "{h:?}");
    assert_eq!(
        round_trips(&registry, peer).0,
        0,
        "failures are not round trips"
    );
}

#[actix_rt::test]
async fn a_failed_probe_moves_to_the_next_url() {
    capture_warnings();
    let (addr, server) = start_receiver();
    let prober = Prober::new(fast(), None).start();
    let peer = Id(0x55);
    let add = AddPeer {
        id: peer,
        urls: vec![dead_url(), format!("http://{addr}")],
    };
    prober.send(add).await.unwrap().unwrap();

    let h = eventually("a healthy answer from the second URL", async || {
        let h = health(&prober, peer).await;
        h.healthy.then_some(h)
    })
    .await;
    assert!(h.loss >= 1, "the first URL failed first: {h:?}");
    server.stop(true).await;
}

#[actix_rt::test]
async fn a_peer_without_urls_is_refused() {
    let prober = Prober::new(ProberConfig::default(), None).start();
    let add = AddPeer {
        id: Id(0x66),
        urls: vec![],
    };
    assert_eq!(
        prober.send(add).await.unwrap(),
        Err(AddPeerError::NoUrls(Id(0x66)))
    );
    assert_eq!(prober.send(GetHealth(Id(0x66))).await.unwrap(), None);
}

#[actix_rt::test]
async fn the_transport_probes_the_peers_it_adds_and_stops_at_removal() {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (addr, server) = start_receiver();
    let local = LocalMember::new(Id(9), Id(0x100));
    let config = TransportConfig::new(&local)
        .pipeline_with(|p| p.metrics(metrics))
        .probe(fast());
    let t = Transport::start(config, Recording::start().recipients());
    let peer = Id(0x77);
    let add = transport::AddPeer {
        id: peer,
        urls: vec![format!("http://{addr}")],
    };
    t.send(add).await.unwrap().unwrap();

    let h = eventually("a healthy probe through the transport", async || {
        let h = t.send(GetHealth(peer)).await.unwrap()?;
        h.healthy.then_some(h)
    })
    .await;
    assert_eq!(h.loss, 0);
    assert!(
        round_trips(&registry, peer).0 >= 1,
        "the template's metrics"
    );

    t.send(transport::RemovePeer(peer)).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while t.send(GetHealth(peer)).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "still probed after removal");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop(true).await;
}

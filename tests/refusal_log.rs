//! Refused requests do not flood the log, and none goes uncounted: a burst
//! of refusals from one peer gives its first warning at once and the rest
//! as `[merged N repeated lines in T]`: when the burst has lasted a merge
//! period (the worker's timer), and, for the last ones, when the server
//! stops.

mod support;

use std::time::{Duration, Instant};

use actix_web::{App, HttpServer};
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::{Id, LocalMember};
use support::logs::{capture_warnings, merged_count, warnings_with};
use support::Recording;

/// The number of refusals each warning about sender `from` stands for.
fn counts(from: &str) -> Vec<u64> {
    let about = format!("remote {from}");
    let lines = warnings_with(&[&about]);
    lines.iter().map(|l| merged_count(l)).collect()
}

#[actix_rt::test]
async fn a_burst_of_refusals_is_merged_and_fully_counted() {
    capture_warnings();
    let raft = Recording::start().inbound();
    let config = ReceiverConfig::new(&LocalMember::new(Id(1), Id(0x100)), raft);
    let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    const REFUSED: u64 = 300;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish();
    let refuse = async |n: u64| {
        for _ in 0..n {
            let answer = client
                .post(format!("http://{addr}/raft"))
                .insert_header(("X-Server-From", "7"))
                .insert_header(("X-Server-Version", "3.4.23"))
                .insert_header(("X-Min-Cluster-Version", "3.0.0"))
                .insert_header(("X-Etcd-Cluster-ID", "999"))
                .send_body("")
                .await
                .unwrap();
            assert_eq!(answer.status(), 412, "a foreign cluster is refused");
        }
    };
    // Half the burst; its merged count comes with the worker's timer.
    refuse(REFUSED / 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts("7").len() < 2 {
        assert!(Instant::now() < deadline, "no merged line from the timer");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts("7"), vec![1, REFUSED / 2 - 1]);
    refuse(REFUSED / 2).await;
    // The worker's drop logs what its last merge period still holds; the
    // worker thread drops its services as it winds down, after `stop`.
    handle.stop(true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts("7").iter().sum::<u64>() < REFUSED && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }

    let counts = counts("7");
    assert_eq!(counts.iter().sum::<u64>(), REFUSED, "{counts:?}");
    assert_eq!(counts[0], 1, "the first refusal is logged at once");
    assert!(
        counts.len() <= 25,
        "{} lines for {REFUSED} refusals",
        counts.len()
    );
}

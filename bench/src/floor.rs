//! The floor: W1 with the actors taken out. One bare `awc` client with 4
//! requests in flight (the pipeline's 4 senders) posts the same 298-byte
//! MsgApp body to a bare actix-web handler that answers 204. Measured
//! exactly as W1, so the two tell what the actor layer costs.

use std::cell::Cell;
use std::time::Duration;

use awc::http::header::CONTENT_TYPE;
use awc::http::{StatusCode, Uri};
use bytes::Bytes;
use prost::Message as _;
use rafthttp_pipeline::internals::http_client;
use rafthttp_pipeline::{CONN_PER_PIPELINE, DIAL_TIMEOUT};

use crate::args::Args;
use crate::child::ReceiverChild;
use crate::messages::{entry_data, msg_app, B};
use crate::report::Outcome;
use crate::w1::{throughput, wait_all, OpenWindow};

/// Where the requests go and what they carry.
struct Target {
    client: awc::Client,
    uri: Uri,
    body: Bytes,
}

pub async fn run(args: &Args) -> Result<Outcome, String> {
    let mut child = ReceiverChild::start(&args.receiver_flags())?;
    let uri = format!("http://127.0.0.1:{}/raft", child.port);
    let target = Target {
        client: http_client(DIAL_TIMEOUT),
        uri: uri.parse().map_err(|e| format!("{uri}: {e}"))?,
        body: msg_app(0, B, &entry_data(args.entry_size))
            .encode_to_vec()
            .into(),
    };
    let warm_errors = post_all(&target, args.warmup).await;
    wait_all(&mut child, args.warmup, args.timeout, "warm-up").await?;
    let opened = OpenWindow::open(&mut child).await?;
    let errors = post_all(&target, args.n).await;
    let target_count = args.warmup + args.n - errors;
    let (processed, window, rx) = opened.close(&mut child, target_count, args.timeout).await?;
    let delivered = processed.saturating_sub(args.warmup);
    let mut out = Outcome::new("w1", "floor", args.n);
    throughput(&mut out, delivered, args.entry_size, &window, &rx);
    out.set("dropped", 0);
    out.set("errors", warm_errors + errors);
    out.set("wire_bytes_per_msg", target.body.len());
    out.check(warm_errors + errors == 0, || {
        format!("{} requests failed", warm_errors + errors)
    });
    out.check(delivered == args.n, || {
        format!("delivered {delivered} != sent {}", args.n)
    });
    Ok(out)
}

/// Posts `total` requests, [`CONN_PER_PIPELINE`] at a time; returns how
/// many failed.
async fn post_all(target: &Target, total: u64) -> u64 {
    let next = Cell::new(0);
    let workers = (0..CONN_PER_PIPELINE).map(|_| post_loop(target, &next, total));
    futures::future::join_all(workers).await.into_iter().sum()
}

/// One in-flight request after another until `total` were claimed.
async fn post_loop(target: &Target, next: &Cell<u64>, total: u64) -> u64 {
    let mut errors = 0;
    while next.replace(next.get() + 1) < total {
        errors += u64::from(!post(target).await);
    }
    errors
}

async fn post(target: &Target) -> bool {
    let request = target
        .client
        .post(target.uri.clone())
        .insert_header((CONTENT_TYPE, "application/protobuf"))
        .timeout(Duration::from_secs(5));
    match request.send_body(target.body.clone()).await {
        Ok(mut response) => {
            let drained = response.body().await.is_ok();
            drained && response.status() == StatusCode::NO_CONTENT
        }
        Err(_) => false,
    }
}

//! The receiver over real HTTP on loopback.
//!
//! Each test starts an actix-web server with the receiver on 127.0.0.1:0 and
//! talks to it with exact bytes over a plain TCP connection, so that status
//! line, headers and body can be checked exactly as etcd 3.4.23 writes them
//! (ETCD-RAFTHTTP.md §5.2.2), and so that every answer can be checked to be
//! a complete HTTP response. Where DESIGN.md §4 improves on etcd (removed
//! member, processing error, malformed headers, size cap) the tests check
//! our answer instead.

mod support;

use actix_web::http::StatusCode;
use bytes::Bytes;
use prost::Message as _;
use rafthttp_pipeline::internals::check_post_response;
use rafthttp_pipeline::raftpb::Message as RaftMessage;
use rafthttp_pipeline::receiver::{ReceiverConfig, MAX_MESSAGE_BYTES};
use rafthttp_pipeline::{Error, Id};
use support::http::{chunked, exchange, finish, head, open, request, Headers};
use support::member::Member;
use support::messages::{append_with_data, heartbeat, of_encoded_len, unhex};
use support::raft::{Answer, Received, Recording};
use support::WAIT;
use tokio::io::AsyncWriteExt;

/// The receiving member.
const LOCAL: Id = Id(2);
/// The cluster, as in ETCD-RAFTHTTP.md §5.2.2 ("local 1").
const CLUSTER: Id = Id(1);

const DECODE_CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/raftpb/decode_cases.json"
);

// ---------------------------------------------------------------------------
// A receiving member, and what it is sent.

/// Member 2 of cluster 1, its raft answering `answer`.
fn start(answer: Answer) -> Member {
    start_with(Recording::answering(answer), |c| c)
}

/// Member 2 of cluster 1, its raft `raft`, its configuration adjusted by
/// `tune`.
fn start_with(raft: Recording, tune: impl FnOnce(ReceiverConfig) -> ReceiverConfig) -> Member {
    Member::start(raft, LOCAL, CLUSTER, tune)
}

/// The headers etcd 3.4's pipeline sends (ETCD-RAFTHTTP.md §2), from
/// member 0x1a of cluster 1. The messages say they come from member 1: the
/// sender the receiver reports is the header's.
fn etcd_headers() -> Headers {
    Headers::etcd("application/protobuf", Id(0x1a), CLUSTER)
}

/// `POST /raft` with etcd's headers and `body`.
fn post_raft(body: &[u8]) -> Vec<u8> {
    request("POST", "/raft", &etcd_headers(), body)
}

/// `POST /raft` with a chunked body and no `Content-Length`.
fn chunked_post_raft(chunks: &[&[u8]]) -> Vec<u8> {
    chunked("POST", "/raft", &etcd_headers(), chunks)
}

/// A valid encoding of exactly `len` bytes.
fn encoding_of_len(len: usize) -> Vec<u8> {
    of_encoded_len(len, append_with_data).encode_to_vec()
}

// ---------------------------------------------------------------------------
// §5.2.2 row by row.

#[actix_rt::test]
async fn non_post_on_raft_gets_405_allow_post_without_cluster_id() {
    let member = start(Answer::Ok);
    for method in ["GET", "PUT", "DELETE"] {
        let resp = exchange(member.addr, &request(method, "/raft", &etcd_headers(), b"")).await;
        resp.assert_go_error(405, "Method Not Allowed");
        assert_eq!(resp.header("allow"), Some("POST"));
        assert_eq!(resp.header("content-length"), Some("19"));
        assert_eq!(resp.header("x-etcd-cluster-id"), None, "{method}");
    }
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn cluster_id_mismatch_gets_412_with_our_cluster_id() {
    let member = start(Answer::Ok);
    // etcd compares exact strings: a leading zero or a missing header fails.
    for remote in [Some("2"), Some("01"), Some("0x1"), Some(""), None] {
        let headers = etcd_headers().set("X-Etcd-Cluster-ID", remote);
        let resp = exchange(member.addr, &request("POST", "/raft", &headers, b"")).await;
        resp.assert_go_error(412, "cluster ID mismatch");
        resp.assert_cluster_id(CLUSTER);
        assert_eq!(
            check_post_response(StatusCode::PRECONDITION_FAILED, &resp.body, "http://x/raft"),
            Err(Error::ClusterIdMismatch),
            "our sender reads it as etcd's does"
        );
    }
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn old_missing_or_too_new_versions_get_412_incompatible_version() {
    let member = start(Answer::Ok);
    let cases = [
        ("X-Server-Version", Some("2.3.0")),
        ("X-Server-Version", None),
        ("X-Server-Version", Some("")),
        ("X-Server-Version", Some("2.99.99")),
        ("X-Min-Cluster-Version", Some("3.5.0")),
        ("X-Min-Cluster-Version", Some("4.0.0")),
    ];
    for (name, value) in cases {
        let headers = etcd_headers().set(name, value);
        let resp = exchange(member.addr, &request("POST", "/raft", &headers, b"")).await;
        resp.assert_go_error(412, "incompatible version");
        resp.assert_cluster_id(CLUSTER);
    }
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn compatible_versions_are_compared_by_major_minor_only() {
    let member = start(Answer::Ok);
    let cases = [
        ("X-Server-Version", Some("3.0.0")),
        ("X-Server-Version", Some("3.6.0-alpha.0+git")),
        ("X-Min-Cluster-Version", Some("3.4.99")),
        // a missing minimum means 2.0.0, which we satisfy
        ("X-Min-Cluster-Version", None),
    ];
    for (name, value) in cases {
        let headers = etcd_headers().set(name, value);
        let resp = exchange(member.addr, &request("POST", "/raft", &headers, b"")).await;
        assert_eq!(resp.status, 204, "{name}: {value:?}");
    }
    assert_eq!(member.raft.received().len(), cases.len());
    member.stop().await;
}

#[actix_rt::test]
async fn malformed_version_headers_get_412_and_never_panic() {
    let member = start(Answer::Ok);
    let bad = [
        "garbage",
        "3.4",
        "3.4.x",
        "3.4.23.1",
        "v3.4.23",
        "3.4.23-a..b",
        "3.4.23-é",
        "99999999999999999999.0.0",
    ];
    for name in ["X-Server-Version", "X-Min-Cluster-Version"] {
        for value in bad {
            let headers = etcd_headers().set(name, Some(value));
            let resp = exchange(member.addr, &request("POST", "/raft", &headers, b"")).await;
            resp.assert_go_error(412, "incompatible version");
            resp.assert_cluster_id(CLUSTER);
        }
    }
    let still_serving = exchange(member.addr, &post_raft(b"")).await;
    assert_eq!(still_serving.status, 204);
    assert_eq!(member.raft.received().len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn version_is_checked_before_cluster_id() {
    let member = start(Answer::Ok);
    let headers = etcd_headers()
        .set("X-Server-Version", Some("2.3.0"))
        .set("X-Etcd-Cluster-ID", Some("2"));
    let resp = exchange(member.addr, &request("POST", "/raft", &headers, b"")).await;
    resp.assert_go_error(412, "incompatible version");
    member.stop().await;
}

#[actix_rt::test]
async fn garbage_body_gets_400_error_unmarshalling_raft_message() {
    let member = start(Answer::Ok);
    let resp = exchange(member.addr, &post_raft(b"abc")).await;
    resp.assert_go_error(400, "error unmarshalling raft message");
    resp.assert_cluster_id(CLUSTER);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn empty_body_gets_204_with_only_the_cluster_id_and_arrives_as_the_zero_message() {
    let member = start(Answer::Ok);
    let resp = exchange(member.addr, &post_raft(b"")).await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.names(), ["x-etcd-cluster-id"]);
    assert!(
        resp.head.contains("\r\nX-Etcd-Cluster-Id: 1"),
        "header names as Go writes them: {}",
        resp.head
    );
    assert!(resp.body.is_empty());
    let received = member.raft.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].inbound.message,
        RaftMessage::default(),
        "MsgHup from 0"
    );
    member.stop().await;
}

#[actix_rt::test]
async fn message_arrives_with_its_sender_and_peer_urls() {
    let member = start(Answer::Ok);
    let message = append_with_data(100);
    let headers = etcd_headers().set(
        "X-PeerURLs",
        Some("http://127.0.0.1:2380,https://127.0.0.1:2381"),
    );
    let resp = exchange(
        member.addr,
        &request("POST", "/raft", &headers, &message.encode_to_vec()),
    )
    .await;
    assert_eq!(resp.status, 204);
    let received = member.raft.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].inbound.message, message);
    assert_eq!(received[0].inbound.from, Some(Id(0x1a)));
    assert_eq!(
        received[0].inbound.peer_urls,
        ["http://127.0.0.1:2380", "https://127.0.0.1:2381"]
    );
    member.stop().await;
}

#[actix_rt::test]
async fn malformed_sender_headers_are_ignored_and_the_message_still_arrives() {
    let member = start(Answer::Ok);
    let cases = [
        (Some("zz"), Some("::not a url::")),
        (Some("-1"), Some("http://127.0.0.1:2380,ftp://h:1")),
        (Some("10000000000000000"), Some(",")),
        (None, None),
    ];
    for (from, urls) in cases {
        let headers = etcd_headers()
            .set("X-Server-From", from)
            .set("X-PeerURLs", urls);
        let body = heartbeat().encode_to_vec();
        let resp = exchange(member.addr, &request("POST", "/raft", &headers, &body)).await;
        assert_eq!(resp.status, 204, "{from:?} {urls:?}");
    }
    let received = member.raft.received();
    assert_eq!(received.len(), cases.len());
    for Received { inbound, .. } in received {
        assert_eq!(inbound.message, heartbeat());
        assert_eq!(inbound.from, None);
        assert!(inbound.peer_urls.is_empty());
    }
    member.stop().await;
}

#[actix_rt::test]
async fn removed_member_gets_a_complete_403_that_etcd_senders_map_to_member_removed() {
    let member = start(Answer::RemovedMember);
    let resp = exchange(member.addr, &post_raft(&heartbeat().encode_to_vec())).await;
    // etcd 3.4 answers 500 and aborts the body here (§5.2.1); we answer a
    // whole 403, which etcd's checkPostResponse maps to errMemberRemoved
    // for any body (util.go:96).
    resp.assert_go_error(403, "cannot process message from removed member");
    resp.assert_cluster_id(CLUSTER);
    assert_eq!(
        check_post_response(StatusCode::FORBIDDEN, &resp.body, "http://x/raft"),
        Err(Error::MemberRemoved)
    );
    assert_eq!(member.raft.received().len(), 1);
    member.stop().await;
}

#[actix_rt::test]
async fn process_error_gets_a_complete_500_and_the_member_keeps_serving() {
    let member = start(Answer::Other);
    for _ in 0..2 {
        let resp = exchange(member.addr, &post_raft(&heartbeat().encode_to_vec())).await;
        resp.assert_go_error(500, "error processing raft message");
        resp.assert_cluster_id(CLUSTER);
        assert_eq!(resp.header("transfer-encoding"), None);
    }
    assert_eq!(member.raft.received().len(), 2);
    member.stop().await;
}

#[actix_rt::test]
async fn raft_actor_gone_gets_a_complete_500() {
    let member = start_with(Recording::gone(), |c| c);
    let resp = exchange(member.addr, &post_raft(b"")).await;
    resp.assert_go_error(500, "error processing raft message");
    resp.assert_cluster_id(CLUSTER);
    member.stop().await;
}

#[actix_rt::test]
async fn unknown_raft_paths_get_404_page_not_found() {
    let member = start(Answer::Ok);
    for path in ["/raft/", "/raft/snapshot", "/raft/x/y", "/raft/probing/x"] {
        for method in ["GET", "POST"] {
            let resp = exchange(member.addr, &request(method, path, &etcd_headers(), b"")).await;
            resp.assert_go_error(404, "404 page not found");
            assert_eq!(resp.header("x-etcd-cluster-id"), None, "{method} {path}");
        }
    }
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn stream_paths_get_404_without_server_version_so_etcd_falls_back_to_the_pipeline() {
    let member = start(Answer::Ok);
    let headers = etcd_headers().set("X-Raft-To", Some("2"));
    for path in ["/raft/stream/message/1a", "/raft/stream/msgappv2/1a"] {
        let resp = exchange(member.addr, &request("GET", path, &headers, b"")).await;
        resp.assert_go_error(404, "404 page not found");
        assert_eq!(resp.header("x-server-version"), None, "{path}");
        assert_eq!(
            resp.names(),
            ["content-length", "content-type", "x-content-type-options"]
        );
    }
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Size cap (DESIGN.md §4.6).

#[actix_rt::test]
async fn content_length_over_the_cap_gets_413_before_the_body_is_sent() {
    let member = start(Answer::Ok);
    // Only the head goes out; the 413 must come back without the body.
    let announced = format!("Content-Length: {}", MAX_MESSAGE_BYTES + 1);
    let resp = exchange(
        member.addr,
        &head("POST", "/raft", &etcd_headers(), &announced),
    )
    .await;
    resp.assert_go_error(413, "raft message too large");
    resp.assert_cluster_id(CLUSTER);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn chunked_body_over_the_cap_is_cut_off_with_413() {
    let member = start_with(Recording::start(), |c| c.max_message_bytes(1024));
    let body = append_with_data(2000).encode_to_vec();
    let (a, b) = body.split_at(600);
    let resp = exchange(member.addr, &chunked_post_raft(&[a, b])).await;
    resp.assert_go_error(413, "raft message too large");
    resp.assert_cluster_id(CLUSTER);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

#[actix_rt::test]
async fn body_of_exactly_the_cap_is_accepted_with_or_without_content_length() {
    let member = start_with(Recording::start(), |c| c.max_message_bytes(1024));
    let body = encoding_of_len(1024);
    let (a, b) = body.split_at(512);
    assert_eq!(exchange(member.addr, &post_raft(&body)).await.status, 204);
    assert_eq!(
        exchange(member.addr, &chunked_post_raft(&[a, b]))
            .await
            .status,
        204
    );
    let over = request("POST", "/raft", &etcd_headers(), &encoding_of_len(1025));
    exchange(member.addr, &over)
        .await
        .assert_go_error(413, "raft message too large");
    let received = member.raft.received();
    assert_eq!(received.len(), 2);
    let expected = RaftMessage::decode(body.as_slice()).unwrap();
    assert!(received.iter().all(|r| r.inbound.message == expected));
    member.stop().await;
}

#[actix_rt::test]
async fn body_cut_short_gets_400_error_reading_raft_message() {
    let member = start(Answer::Ok);
    let mut req = head("POST", "/raft", &etcd_headers(), "Content-Length: 100");
    req.extend_from_slice(&[0x08; 10]);
    let mut stream = open(member.addr, &req).await;
    stream.shutdown().await.expect("half close");
    let resp = finish(stream).await;
    resp.assert_go_error(400, "error reading raft message");
    resp.assert_cluster_id(CLUSTER);
    assert!(member.raft.received().is_empty());
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Decoding: etcd's own accept/reject decisions.

#[actix_rt::test]
async fn every_decode_case_gets_the_answer_etcd_would_give() {
    let text = std::fs::read_to_string(DECODE_CASES).expect("decode_cases.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = cases.as_array().expect("array");
    let member = start(Answer::Ok);
    let mut accepted = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let body = unhex(case["hex"].as_str().expect("hex"));
        let etcd_accepts = case["etcd_accepts"].as_bool().expect("etcd_accepts");
        let ours = RaftMessage::decode(Bytes::from(body.clone()));
        let resp = exchange(member.addr, &post_raft(&body)).await;
        match (etcd_accepts, ours) {
            (true, Ok(message)) => {
                assert_eq!(resp.status, 204, "{name}");
                assert_eq!(resp.names(), ["x-etcd-cluster-id"], "{name}");
                accepted.push(message);
            }
            // etcd rejects, or our codec deliberately rejects malformed
            // protobuf that gogoproto lets through.
            _ => {
                resp.assert_go_error(400, "error unmarshalling raft message");
                resp.assert_cluster_id(CLUSTER);
            }
        }
    }
    let received: Vec<RaftMessage> = member
        .raft
        .received()
        .into_iter()
        .map(|r| r.inbound.message)
        .collect();
    assert_eq!(received, accepted);
    assert!(received.len() > 100, "most accepted cases decode");
    member.stop().await;
}

// ---------------------------------------------------------------------------
// Concurrency.

#[actix_rt::test]
async fn concurrent_posts_from_one_peer_are_served_concurrently() {
    const N: usize = 4;
    // The raft actor answers nobody until all N requests wait in the
    // receiver: a receiver that served them one by one would never answer.
    let member = start_with(Recording::holding_until(N), |c| c);
    let body = heartbeat().encode_to_vec();
    let request = post_raft(&body);
    let all = futures::future::join_all((0..N).map(|_| exchange(member.addr, &request)));
    let responses = actix_rt::time::timeout(WAIT, all)
        .await
        .expect("all requests answered together");
    assert!(responses.iter().all(|r| r.status == 204));
    assert_eq!(member.raft.received().len(), N);
    member.stop().await;
}

// ---------------------------------------------------------------------------
// /raft/probing and /version.

/// Go's `time.RFC3339Nano` in UTC: `2006-01-02T15:04:05[.fraction]Z`, the
/// fraction without trailing zeros.
fn is_rfc3339_nano_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 1 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let fixed = shape.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        other => other == got,
    });
    let fraction = &b[shape.len()..b.len() - 1];
    let fraction_ok = match fraction {
        [] => true,
        [b'.', digits @ ..] => {
            (1..=9).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
                && digits.last() != Some(&b'0')
        }
        _ => false,
    };
    fixed && fraction_ok
}

#[actix_rt::test]
async fn probing_answers_any_method_with_ok_and_the_current_time() {
    let member = start(Answer::Ok);
    for method in ["GET", "POST", "PUT"] {
        let resp = exchange(
            member.addr,
            &request(method, "/raft/probing", &Headers::default(), b""),
        )
        .await;
        assert_eq!(resp.status, 200, "{method}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let text = resp.body_text();
        assert!(text.starts_with("{\"OK\":true,\"Now\":\""), "{text}");
        assert!(text.ends_with("\"}\n"), "{text}");
        let health: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(health["OK"], true);
        let now = health["Now"].as_str().expect("Now");
        assert!(is_rfc3339_nano_utc(now), "{now}");
        assert!(now[..4] >= *"2024", "{now}");
    }
    member.stop().await;
}

#[actix_rt::test]
async fn version_route_serves_etcd_versions_when_enabled() {
    let member = start_with(Recording::start(), |c| c.serve_version(true));
    let resp = exchange(
        member.addr,
        &request("GET", "/version", &Headers::default(), b""),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.body_text(),
        r#"{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}"#
    );
    for method in ["POST", "PUT"] {
        let resp = exchange(
            member.addr,
            &request(method, "/version", &Headers::default(), b""),
        )
        .await;
        resp.assert_go_error(405, "Method Not Allowed");
        assert_eq!(resp.header("allow"), Some("GET"));
    }
    member.stop().await;
}

#[actix_rt::test]
async fn version_route_is_not_mounted_by_default() {
    let member = start(Answer::Ok);
    let resp = exchange(
        member.addr,
        &request("GET", "/version", &Headers::default(), b""),
    )
    .await;
    assert_eq!(resp.status, 404);
    member.stop().await;
}

//! `GET /members`.

use rafthttp_pipeline::membership::InitialCluster;

use super::super::members::{json_string, members_json};

#[test]
fn members_json_is_what_etcd_decodes() {
    let cluster =
        InitialCluster::parse("a=http://127.0.0.1:2380,b=http://127.0.0.1:2390", "tok").unwrap();
    let json = members_json(&cluster);
    assert!(json.ends_with("]\n"));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<u64> = parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0x71405583d3e2d5ce, 0xff9d11e786a34662]);
    assert_eq!(parsed[0]["peerURLs"][0], "http://127.0.0.1:2380");
    assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
}

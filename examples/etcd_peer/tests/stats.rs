//! The counters.

use rafthttp_pipeline::raftpb::MessageType;

use super::super::stats::{type_name, Counts};

#[test]
fn counts_print_as_json() {
    let mut c = Counts::default();
    c.inbound.insert(type_name(MessageType::MsgApp as i32), 7);
    c.outbound
        .insert(type_name(MessageType::MsgAppResp as i32), 7);
    c.outbound.insert(type_name(99), 1);
    let json = c.to_json();
    assert_eq!(
        json,
        "{\"in\":{\"MsgApp\":7},\"out\":{\"MsgAppResp\":7,\"Unknown(99)\":1},\"unreachable\":0,\"rejected_appends\":0}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["in"]["MsgApp"], 7);
    assert_eq!(c.received(MessageType::MsgApp), 7);
    assert_eq!(c.sent(MessageType::MsgAppResp), 7);
}

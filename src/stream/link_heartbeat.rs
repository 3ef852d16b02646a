//! The link heartbeat: an empty `MsgHeartbeat` (From = To = 0) each writer
//! sends every [`HEARTBEAT_INTERVAL`](super::HEARTBEAT_INTERVAL) to keep the
//! reader's read timeout from firing, and each reader drops (etcd's
//! `linkHeartbeatMessage`, `rafthttp/stream.go:93-98`).

use crate::raftpb::{Message, MessageType};

/// etcd's `linkHeartbeatMessage`: `Message{Type: MsgHeartbeat}`.
pub(crate) fn link_heartbeat() -> Message {
    Message {
        r#type: MessageType::MsgHeartbeat as i32,
        ..Default::default()
    }
}

/// etcd's `isLinkHeartbeatMessage`: a `MsgHeartbeat` from 0 to 0.
pub(crate) fn is_link_heartbeat(message: &Message) -> bool {
    message.r#type == MessageType::MsgHeartbeat as i32 && message.from == 0 && message.to == 0
}

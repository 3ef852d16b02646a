//! Which road a message to a peer takes (etcd's `peer.pick`,
//! `rafthttp/peer.go:358-371`). Pure.

use crate::raftpb::Message;

/// A road to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Road {
    /// `POST /raft` (and every `MsgSnap`).
    Pipeline,
    /// The msgappv2 stream.
    MsgAppStream,
    /// The message stream.
    MessageStream,
}

/// etcd's rule: `MsgSnap` by pipeline always; `MsgApp` on the msgappv2
/// stream while it works; anything (a `MsgApp` too) on the message stream
/// while it works; the pipeline otherwise.
pub(crate) fn pick(message: &Message, msgapp_working: bool, message_working: bool) -> Road {
    if message.is_snapshot() {
        Road::Pipeline
    } else if msgapp_working && message.is_append() {
        Road::MsgAppStream
    } else if message_working {
        Road::MessageStream
    } else {
        Road::Pipeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::MessageType;

    // etcd's TestPeerPick.
    #[test]
    fn test_peer_pick() {
        use MessageType::*;
        use Road::*;
        let cases = [
            (true, true, MsgSnap, Pipeline),
            (true, true, MsgApp, MsgAppStream),
            (true, true, MsgProp, MessageStream),
            (true, true, MsgHeartbeat, MessageStream),
            (false, true, MsgApp, MessageStream),
            (false, false, MsgApp, Pipeline),
            (false, false, MsgProp, Pipeline),
            (false, false, MsgSnap, Pipeline),
            (false, false, MsgHeartbeat, Pipeline),
        ];
        for (msgapp, message, kind, want) in cases {
            let m = Message {
                r#type: kind as i32,
                term: 1,
                log_term: 1,
                ..Default::default()
            };
            assert_eq!(
                pick(&m, msgapp, message),
                want,
                "{kind:?} {msgapp} {message}"
            );
        }
    }
}

//! The two kinds of stream (etcd's `streamType`, `rafthttp/stream.go:41-87`):
//! what each carries, its endpoint and its name in logs.

use crate::wire::RAFT_STREAM_PREFIX;

/// Which of a peer's two streams: `msgappv2` carries `MsgApp` only, the
/// `message` stream everything else but `MsgSnap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// etcd's `streamTypeMessage`: `/raft/stream/message/<id>`.
    Message,
    /// etcd's `streamTypeMsgAppV2`: `/raft/stream/msgapp/<id>`.
    MsgAppV2,
}

impl StreamType {
    /// Both types, message stream first.
    pub const ALL: [StreamType; 2] = [StreamType::Message, StreamType::MsgAppV2];

    /// The last path segment before the id (`message` or `msgapp`).
    pub fn path_segment(self) -> &'static str {
        match self {
            StreamType::Message => "message",
            StreamType::MsgAppV2 => "msgapp",
        }
    }

    /// The endpoint, without the id (etcd's `endpoint()`).
    pub fn endpoint(self) -> String {
        format!("{RAFT_STREAM_PREFIX}/{}", self.path_segment())
    }

    /// The type whose path segment is `segment`, if any.
    pub fn from_path_segment(segment: &str) -> Option<StreamType> {
        StreamType::ALL
            .into_iter()
            .find(|t| t.path_segment() == segment)
    }

    /// etcd's `streamType.String()`, used in logs and peer-status texts.
    pub fn name(self) -> &'static str {
        match self {
            StreamType::Message => "stream Message",
            StreamType::MsgAppV2 => "stream MsgApp v2",
        }
    }
}

impl std::fmt::Display for StreamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_names_are_etcds() {
        assert_eq!(StreamType::Message.endpoint(), "/raft/stream/message");
        assert_eq!(StreamType::MsgAppV2.endpoint(), "/raft/stream/msgapp");
        assert_eq!(StreamType::MsgAppV2.to_string(), "stream MsgApp v2");
        assert_eq!(
            StreamType::from_path_segment("msgapp"),
            Some(StreamType::MsgAppV2)
        );
        assert_eq!(StreamType::from_path_segment("msgappv2"), None);
    }
}

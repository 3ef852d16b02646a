//! The counters: messages by type and direction, and transport events,
//! printed as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use rafthttp_pipeline::raftpb::MessageType;
use rafthttp_pipeline::Id;

/// Messages counted by type and direction, plus transport events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Received, by message type.
    pub inbound: BTreeMap<String, u64>,
    /// Handed to a pipeline, by message type.
    pub outbound: BTreeMap<String, u64>,
    /// `ReportUnreachable` callbacks from the pipelines.
    pub unreachable: u64,
    /// `MsgApp`s rejected because they did not fit the log (counted in
    /// `out` as `MsgAppResp` too).
    pub rejected_appends: u64,
    /// Every `X-Server-From` seen on a received message.
    pub senders: BTreeSet<Id>,
}

impl Counts {
    /// `{"in":{"MsgApp":7,...},"out":{...},"unreachable":0,"rejected_appends":0,
    /// "senders":["8e9e05c52164694d",...]}`, the senders' ids in hex as etcd
    /// writes them.
    pub fn to_json(&self) -> String {
        fn object(map: &BTreeMap<String, u64>) -> String {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        let senders: Vec<String> = self.senders.iter().map(|id| format!("\"{id}\"")).collect();
        format!(
            "{{\"in\":{},\"out\":{},\"unreachable\":{},\"rejected_appends\":{},\"senders\":[{}]}}",
            object(&self.inbound),
            object(&self.outbound),
            self.unreachable,
            self.rejected_appends,
            senders.join(",")
        )
    }
}

/// `MsgApp` for a known type, `Unknown(21)` otherwise (only the crate's
/// names, all plain ASCII, so they need no JSON escaping).
pub fn type_name(kind: i32) -> String {
    MessageType::try_from(kind).map_or_else(|_| format!("Unknown({kind})"), |t| format!("{t:?}"))
}

pub(crate) fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use rafthttp_pipeline::raftpb::MessageType;
    use rafthttp_pipeline::Id;

    use super::{type_name, Counts};

    #[test]
    fn counts_print_as_json() {
        let mut c = Counts::default();
        c.inbound.insert(type_name(MessageType::MsgApp as i32), 7);
        c.outbound
            .insert(type_name(MessageType::MsgAppResp as i32), 7);
        c.outbound.insert(type_name(99), 1);
        c.senders.insert(Id(0x8e9e05c52164694d));
        let json = c.to_json();
        assert_eq!(
            json,
            "{\"in\":{\"MsgApp\":7},\"out\":{\"MsgAppResp\":7,\"Unknown(99)\":1},\"unreachable\":0,\"rejected_appends\":0,\"senders\":[\"8e9e05c52164694d\"]}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["in"]["MsgApp"], 7);
        assert_eq!(parsed["out"]["MsgAppResp"], 7);
        assert_eq!(parsed["senders"][0], "8e9e05c52164694d");
    }
}

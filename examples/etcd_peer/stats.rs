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
    /// How many messages of `kind` were received.
    pub fn received(&self, kind: MessageType) -> u64 {
        self.inbound
            .get(&type_name(kind as i32))
            .copied()
            .unwrap_or(0)
    }

    /// How many messages of `kind` were sent.
    pub fn sent(&self, kind: MessageType) -> u64 {
        self.outbound
            .get(&type_name(kind as i32))
            .copied()
            .unwrap_or(0)
    }

    /// `{"in":{"MsgApp":7,...},"out":{...},"unreachable":0,"rejected_appends":0}`.
    pub fn to_json(&self) -> String {
        fn object(map: &BTreeMap<String, u64>) -> String {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        format!(
            "{{\"in\":{},\"out\":{},\"unreachable\":{},\"rejected_appends\":{}}}",
            object(&self.inbound),
            object(&self.outbound),
            self.unreachable,
            self.rejected_appends
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

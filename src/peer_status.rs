//! etcd's `peerStatus` (`rafthttp/peer_status.go`): whether the peer is
//! active, changed on transitions only. Pure: the caller passes the time
//! and turns a transition into logs and notifications.

use std::time::SystemTime;

use crate::id::Id;

/// Where a failure happened (etcd's `failureType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FailureType {
    /// The channel, e.g. `"pipeline"`.
    pub(crate) source: &'static str,
    /// What failed, e.g. `"write"`.
    pub(crate) action: &'static str,
}

impl FailureType {
    /// etcd's text for a failure of this type to `peer` for `reason`
    /// (`failed to write 2 on pipeline (unexpected EOF)`).
    pub(crate) fn describe(&self, peer: Id, reason: &str) -> String {
        format!(
            "failed to {} {} on {} ({})",
            self.action, peer, self.source, reason
        )
    }
}

/// A pipeline POST failed (`rafthttp/pipeline.go:107`).
pub(crate) const PIPELINE_WRITE: FailureType = FailureType {
    source: "pipeline",
    action: "write",
};

/// A streamed snapshot failed (`rafthttp/snapshot_sender.go:123`).
pub(crate) const SNAPSHOT_POST: FailureType = FailureType {
    source: "sendMsgSnap",
    action: "post",
};

/// Whether the peer is active, and since when. Starts inactive.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerStatus {
    since: Option<SystemTime>,
}

impl PeerStatus {
    /// Whether the peer is active.
    pub(crate) fn is_active(&self) -> bool {
        self.since.is_some()
    }

    /// A message was delivered at `now`. Returns whether the peer was
    /// inactive until now (a transition).
    pub(crate) fn activate(&mut self, now: SystemTime) -> bool {
        if self.is_active() {
            return false;
        }
        self.since = Some(now);
        true
    }

    /// A message failed. Returns whether the peer was active until now (a
    /// transition); a repeated failure changes nothing.
    pub(crate) fn deactivate(&mut self) -> bool {
        self.since.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn changes_once_per_transition() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut s = PeerStatus::default();
        assert!(!s.is_active());
        assert!(!s.deactivate(), "starts inactive");
        assert!(s.activate(at), "inactive -> active");
        assert!(s.is_active());
        assert!(!s.activate(at + Duration::from_secs(1)), "already active");
        assert!(s.deactivate(), "active -> inactive");
        assert!(!s.deactivate(), "repeated failure");
        assert!(!s.is_active());
    }

    #[test]
    fn describes_failures_in_etcds_words() {
        assert_eq!(
            PIPELINE_WRITE.describe(Id(2), "unexpected EOF"),
            "failed to write 2 on pipeline (unexpected EOF)"
        );
        assert_eq!(
            SNAPSHOT_POST.describe(Id(0x1a), "stopped"),
            "failed to post 1a on sendMsgSnap (stopped)"
        );
    }
}

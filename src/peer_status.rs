//! etcd's `peerStatus` (`rafthttp/peer_status.go`): whether the peer is
//! active, changed on transitions only.

use std::time::SystemTime;

use crate::id::Id;
use crate::messages::PeerStatusChanged;

/// Where a failure happened (etcd's `failureType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureType {
    /// The channel, e.g. `"pipeline"`.
    pub source: &'static str,
    /// What failed, e.g. `"write"`.
    pub action: &'static str,
}

/// A pipeline POST failed (`rafthttp/pipeline.go:107`).
pub const PIPELINE_WRITE: FailureType = FailureType {
    source: "pipeline",
    action: "write",
};

/// A streamed snapshot failed (`rafthttp/snapshot_sender.go:123`).
pub const SNAPSHOT_POST: FailureType = FailureType {
    source: "sendMsgSnap",
    action: "post",
};

/// Whether the peer is active, and since when. Starts inactive.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    peer: Id,
    active: bool,
    since: Option<SystemTime>,
}

impl PeerStatus {
    /// An inactive peer.
    pub fn new(peer: Id) -> Self {
        PeerStatus {
            peer,
            active: false,
            since: None,
        }
    }

    /// Whether the peer is active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// When the peer became active; `None` while inactive.
    pub fn active_since(&self) -> Option<SystemTime> {
        self.since
    }

    /// A message was delivered. Returns the notification when the peer was
    /// inactive until now, `None` otherwise.
    pub fn activate(&mut self) -> Option<PeerStatusChanged> {
        if self.active {
            return None;
        }
        log::info!("peer {} became active", self.peer);
        self.active = true;
        self.since = Some(SystemTime::now());
        Some(PeerStatusChanged {
            peer: self.peer,
            active: true,
            since: self.since,
            reason: None,
        })
    }

    /// A message failed for `reason`. Returns the notification when the
    /// peer was active until now; a repeated failure only logs at debug.
    pub fn deactivate(&mut self, failure: FailureType, reason: &str) -> Option<PeerStatusChanged> {
        let msg = format!(
            "failed to {} {} on {} ({})",
            failure.action, self.peer, failure.source, reason
        );
        if !self.active {
            log::debug!("peer {} deactivated again: {}", self.peer, msg);
            return None;
        }
        log::warn!(
            "peer {} became inactive (message send to peer failed): {}",
            self.peer,
            msg
        );
        self.active = false;
        self.since = None;
        Some(PeerStatusChanged {
            peer: self.peer,
            active: false,
            since: None,
            reason: Some(msg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_once_per_transition() {
        let mut s = PeerStatus::new(Id(2));
        assert!(!s.is_active());
        assert!(
            s.deactivate(PIPELINE_WRITE, "x").is_none(),
            "starts inactive"
        );
        let up = s.activate().expect("inactive -> active");
        assert!(up.active && up.since.is_some());
        assert!(s.activate().is_none(), "already active");
        let down = s
            .deactivate(PIPELINE_WRITE, "unexpected EOF")
            .expect("active -> inactive");
        assert_eq!(
            down.reason.as_deref(),
            Some("failed to write 2 on pipeline (unexpected EOF)")
        );
        assert!(
            s.deactivate(PIPELINE_WRITE, "again").is_none(),
            "repeated failure"
        );
        assert!(s.active_since().is_none());
    }
}

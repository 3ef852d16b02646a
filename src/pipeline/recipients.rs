//! Where a pipeline sends its raft callbacks and notifications, and how a
//! decision of the per-peer core becomes one of them.

use actix::prelude::*;

use crate::id::Id;
use crate::messages::{CriticalError, PeerStatusChanged, ReportSnapshot, ReportUnreachable};
use crate::peer::Report;

/// Where a pipeline, or a [`Transport`](crate::Transport) for all its
/// pipelines, sends its raft callbacks and notifications.
#[derive(Clone)]
pub struct Recipients {
    pub(crate) unreachable: Recipient<ReportUnreachable>,
    pub(crate) snapshot: Recipient<ReportSnapshot>,
    pub(crate) peer_status: Option<Recipient<PeerStatusChanged>>,
    pub(crate) critical_errors: Option<Recipient<CriticalError>>,
}

impl Recipients {
    /// The two raft callbacks every pipeline needs (etcd's
    /// `Raft.ReportUnreachable` and `Raft.ReportSnapshot`).
    pub fn new(
        unreachable: Recipient<ReportUnreachable>,
        snapshot: Recipient<ReportSnapshot>,
    ) -> Self {
        Recipients {
            unreachable,
            snapshot,
            peer_status: None,
            critical_errors: None,
        }
    }

    /// Both raft callbacks to one actor, usually the user's raft actor.
    pub fn from_addr<A>(addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<ReportUnreachable> + Handler<ReportSnapshot>,
        A::Context: actix::dev::ToEnvelope<A, ReportUnreachable>
            + actix::dev::ToEnvelope<A, ReportSnapshot>,
    {
        Recipients::new(addr.clone().recipient(), addr.clone().recipient())
    }

    /// Also send [`PeerStatusChanged`] on every transition.
    pub fn peer_status(mut self, recipient: Recipient<PeerStatusChanged>) -> Self {
        self.peer_status = Some(recipient);
        self
    }

    /// Also send [`CriticalError`]s (etcd's `Transport.ErrorC`).
    pub fn critical_errors(mut self, recipient: Recipient<CriticalError>) -> Self {
        self.critical_errors = Some(recipient);
        self
    }

    /// The same recipients, with status changes sent to `status` instead
    /// (the transport's tap, which keeps `ActiveSince` and forwards them).
    pub(crate) fn with_status_tap(&self, status: Recipient<PeerStatusChanged>) -> Recipients {
        Recipients {
            peer_status: Some(status),
            ..self.clone()
        }
    }

    /// Carries out `report` about `peer`: logs it when it is a log line,
    /// and sends it to its recipient when it has one.
    pub(crate) fn deliver(&self, peer: Id, report: Report) {
        if let Some(level) = report.log_level() {
            log::log!(level, "{}", report.log_text(peer));
        }
        match report {
            Report::Unreachable {
                to,
                message_type,
                reason,
            } => self.unreachable.do_send(ReportUnreachable {
                to,
                message_type,
                reason,
            }),
            Report::Snapshot { to, status } => self.snapshot.do_send(ReportSnapshot { to, status }),
            Report::Active { since } => self.notify(PeerStatusChanged {
                peer,
                active: true,
                since: Some(since),
                reason: None,
            }),
            Report::Inactive { reason } => self.notify(PeerStatusChanged {
                peer,
                active: false,
                since: None,
                reason: Some(reason),
            }),
            Report::Critical { error } => {
                if let Some(recipient) = &self.critical_errors {
                    recipient.do_send(CriticalError { peer, error });
                }
            }
            Report::StillInactive { .. }
            | Report::BufferFull { .. }
            | Report::DroppedInactive { .. } => {}
        }
    }

    fn notify(&self, change: PeerStatusChanged) {
        if let Some(recipient) = &self.peer_status {
            recipient.do_send(change);
        }
    }
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipients")
            .field("peer_status", &self.peer_status.is_some())
            .field("critical_errors", &self.critical_errors.is_some())
            .finish()
    }
}

//! Where a [`Transport`](super::Transport) and its pipelines report.

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::messages::{
    CriticalError, Inbound, PeerStatusChanged, ReportSnapshot, ReportUnreachable,
};
use crate::pipeline::Recipients;

/// The raft callbacks of a whole member: every pipeline of the transport
/// reports to them, and so does the transport itself for a message it
/// cannot route.
///
/// It mirrors [`Recipients`], which is per pipeline: the transport keeps
/// the two raft callbacks for its own reports and puts itself between the
/// pipelines and [`PeerStatusChanged`], to answer
/// [`ActiveSince`](super::ActiveSince).
#[derive(Clone)]
pub struct TransportRecipients {
    pub(super) unreachable: Recipient<ReportUnreachable>,
    pub(super) snapshot: Recipient<ReportSnapshot>,
    pub(super) peer_status: Option<Recipient<PeerStatusChanged>>,
    pub(super) critical_errors: Option<Recipient<CriticalError>>,
    /// The raft actor stream readers deliver to (streams need it).
    pub(super) inbound: Option<Recipient<Inbound>>,
}

impl TransportRecipients {
    /// The two raft callbacks (etcd's `Raft.ReportUnreachable` and
    /// `Raft.ReportSnapshot`).
    pub fn new(
        unreachable: Recipient<ReportUnreachable>,
        snapshot: Recipient<ReportSnapshot>,
    ) -> Self {
        TransportRecipients {
            unreachable,
            snapshot,
            peer_status: None,
            critical_errors: None,
            inbound: None,
        }
    }

    /// Both raft callbacks to one actor, usually the user's raft actor.
    pub fn from_addr<A>(addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<ReportUnreachable> + Handler<ReportSnapshot>,
        A::Context: ToEnvelope<A, ReportUnreachable> + ToEnvelope<A, ReportSnapshot>,
    {
        TransportRecipients::new(addr.clone().recipient(), addr.clone().recipient())
    }

    /// Also send every peer's [`PeerStatusChanged`] transitions here.
    pub fn peer_status(mut self, recipient: Recipient<PeerStatusChanged>) -> Self {
        self.peer_status = Some(recipient);
        self
    }

    /// Also send [`CriticalError`]s here (etcd's `Transport.ErrorC`).
    pub fn critical_errors(mut self, recipient: Recipient<CriticalError>) -> Self {
        self.critical_errors = Some(recipient);
        self
    }

    /// The recipients of one peer's pipeline: the raft callbacks, critical
    /// errors, and `status` (the transport's tap) for status changes.
    /// Where stream readers deliver what they read; without it, a
    /// transport with streams dials none.
    pub fn inbound(mut self, recipient: Recipient<Inbound>) -> Self {
        self.inbound = Some(recipient);
        self
    }

    pub(super) fn for_pipeline(&self, status: Recipient<PeerStatusChanged>) -> Recipients {
        let recipients = Recipients::new(self.unreachable.clone(), self.snapshot.clone());
        let recipients = recipients.peer_status(status);
        match &self.critical_errors {
            Some(critical) => recipients.critical_errors(critical.clone()),
            None => recipients,
        }
    }
}

impl std::fmt::Debug for TransportRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportRecipients")
            .field("peer_status", &self.peer_status.is_some())
            .field("critical_errors", &self.critical_errors.is_some())
            .finish()
    }
}

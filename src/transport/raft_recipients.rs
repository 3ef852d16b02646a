//! What a member's raft-making closure returns: the raft actor and where
//! the transport's callbacks go.

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::messages::{
    CriticalError, Inbound, PeerStatusChanged, ReportSnapshot, ReportUnreachable,
};
use crate::pipeline::Recipients;

/// What [`MemberBuilder::start`](super::MemberBuilder::start)'s closure returns: the raft actor, which
/// receives every [`Inbound`] and the transport's callbacks, and the
/// optional extra recipients.
pub struct RaftRecipients<R: Actor> {
    pub(super) raft: Addr<R>,
    pub(super) inbound: Recipient<Inbound>,
    pub(super) transport: Recipients,
}

impl<R: Actor> std::fmt::Debug for RaftRecipients<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRecipients")
            .field("transport", &self.transport)
            .finish()
    }
}

impl<R> RaftRecipients<R>
where
    R: Actor + Handler<Inbound> + Handler<ReportUnreachable> + Handler<ReportSnapshot>,
    R::Context:
        ToEnvelope<R, Inbound> + ToEnvelope<R, ReportUnreachable> + ToEnvelope<R, ReportSnapshot>,
{
    /// Everything to `raft`: inbound messages and both raft callbacks.
    pub fn new(raft: Addr<R>) -> Self {
        RaftRecipients {
            inbound: raft.clone().recipient(),
            transport: Recipients::from_addr(&raft).inbound(raft.clone().recipient()),
            raft,
        }
    }

    /// Also send every peer's [`PeerStatusChanged`] to the raft actor.
    pub fn with_peer_status(self) -> Self
    where
        R: Handler<PeerStatusChanged>,
        R::Context: ToEnvelope<R, PeerStatusChanged>,
    {
        let recipient = self.raft.clone().recipient();
        self.peer_status(recipient)
    }

    /// Also send [`CriticalError`]s (this member was removed) to the raft
    /// actor.
    pub fn with_critical_errors(self) -> Self
    where
        R: Handler<CriticalError>,
        R::Context: ToEnvelope<R, CriticalError>,
    {
        let recipient = self.raft.clone().recipient();
        self.critical_errors(recipient)
    }

    /// Also send every peer's [`PeerStatusChanged`] to `recipient`.
    pub fn peer_status(mut self, recipient: Recipient<PeerStatusChanged>) -> Self {
        self.transport = self.transport.peer_status(recipient);
        self
    }

    /// Also send [`CriticalError`]s to `recipient`.
    pub fn critical_errors(mut self, recipient: Recipient<CriticalError>) -> Self {
        self.transport = self.transport.critical_errors(recipient);
        self
    }
}

//! `StatusTap`: tells the transport which pipeline a status change came
//! from.
//!
//! A peer removed and added again has two pipelines for a moment: the old
//! one may still report a transition while the new one runs. Each pipeline
//! reports through its own tap, which adds the pipeline's generation, so
//! the transport applies only the current pipeline's transitions.

use actix::prelude::*;
use actix::WeakAddr;

use super::Transport;
use crate::messages::PeerStatusChanged;

/// A status change of the pipeline of one generation.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct TappedStatus {
    pub(super) generation: u64,
    pub(super) change: PeerStatusChanged,
}

/// Forwards one pipeline's [`PeerStatusChanged`] to the transport with the
/// pipeline's generation. It holds the transport weakly: the pipelines must
/// not keep the transport alive.
pub(super) struct StatusTap {
    generation: u64,
    transport: WeakAddr<Transport>,
}

impl StatusTap {
    /// Starts a tap for the pipeline of `generation`.
    pub(super) fn start(generation: u64, transport: WeakAddr<Transport>) -> Addr<StatusTap> {
        StatusTap {
            generation,
            transport,
        }
        .start()
    }
}

impl Actor for StatusTap {
    type Context = Context<Self>;
}

impl Handler<PeerStatusChanged> for StatusTap {
    type Result = ();

    fn handle(&mut self, change: PeerStatusChanged, _: &mut Context<Self>) {
        if let Some(transport) = self.transport.upgrade() {
            transport.do_send(TappedStatus {
                generation: self.generation,
                change,
            });
        }
    }
}

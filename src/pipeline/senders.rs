//! Starting a pipeline's senders, each under an `actix::Supervisor`, on the
//! arbiters the configuration places them on.

use actix::prelude::*;
use futures::channel::oneshot;

use crate::config::{PipelineConfig, SenderPlacement};
use crate::sender::{SenderActor, SenderSettings};

/// The started senders, and for each a receiver that resolves once that
/// sender has stopped for good.
pub(super) type Senders = (Vec<Addr<SenderActor>>, Vec<oneshot::Receiver<()>>);

/// Starts `config.connections` senders with `settings`, spread over the
/// arbiters of `config.placement`.
pub(super) fn start_senders(config: &PipelineConfig, settings: &SenderSettings) -> Senders {
    let arbiters = match &config.placement {
        SenderPlacement::SharedPool => crate::pool::shared_pool(),
        SenderPlacement::Current => Vec::new(),
        SenderPlacement::Arbiters(handles) => handles.clone(),
    };
    // Spread pipelines over the pool: start at a different arbiter per peer.
    let offset = config.peer_id.0 as usize;
    (0..config.connections)
        .map(|index| {
            let (gone_tx, gone_rx) = oneshot::channel();
            let settings = settings.clone();
            let make =
                move |_: &mut Context<SenderActor>| SenderActor::new(index, settings, gone_tx);
            let addr = match arbiters.len() {
                0 => Supervisor::start(make),
                n => Supervisor::start_in_arbiter(&arbiters[(offset + index) % n], make),
            };
            (addr, gone_rx)
        })
        .unzip()
}

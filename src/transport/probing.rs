//! The transport's prober: like etcd's `Transport`, which adds each peer
//! to its probers in `AddPeer`, re-adds it in `UpdatePeer` and removes it
//! in `RemovePeer` (rafthttp/transport.go), feeding the round-trip
//! histogram. Remotes are not probed, as in etcd. Off unless
//! [`TransportConfig::probe`](super::TransportConfig::probe) turns it on.

use actix::prelude::*;
use futures::future::{BoxFuture, FutureExt};

use crate::config::ClientTls;
use crate::id::Id;
use crate::metrics::Metrics;
use crate::prober::{self, PeerHealth, Prober, ProberConfig};

/// The prober, started with the first peer.
pub(crate) struct Probing {
    config: Option<ProberConfig>,
    metrics: Option<Metrics>,
    /// The pipelines' TLS, for `https://` peer URLs.
    tls: Option<ClientTls>,
    prober: Option<Addr<Prober>>,
}

impl Probing {
    /// Probing with `config` (`None`: off), observing in `metrics`, with
    /// `tls` for `https://` URLs.
    pub(crate) fn new(
        config: Option<ProberConfig>,
        metrics: Option<Metrics>,
        tls: Option<ClientTls>,
    ) -> Self {
        Probing {
            config,
            metrics,
            tls,
            prober: None,
        }
    }

    /// Probes peer `id` at `urls` from now on (anew if it was probed).
    pub(crate) fn add(&mut self, id: Id, urls: &[String]) {
        let Some(config) = &self.config else { return };
        let (metrics, tls) = (&self.metrics, &self.tls);
        let prober = self.prober.get_or_insert_with(|| {
            let prober = Prober::new(config.clone(), metrics.clone());
            prober.with_client_tls(tls.as_ref()).start()
        });
        prober.do_send(prober::AddPeer {
            id,
            urls: urls.to_vec(),
        });
    }

    /// Stops probing peer `id`.
    pub(crate) fn remove(&self, id: Id) {
        if let Some(prober) = &self.prober {
            prober.do_send(prober::RemovePeer(id));
        }
    }

    /// What the probes found about peer `id`; `None` if it is not probed.
    pub(crate) fn health(&self, id: Id) -> BoxFuture<'static, Option<PeerHealth>> {
        let Some(prober) = self.prober.clone() else {
            return async { None }.boxed();
        };
        async move { prober.send(prober::GetHealth(id)).await.ok().flatten() }.boxed()
    }
}

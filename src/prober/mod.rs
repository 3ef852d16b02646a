//! etcd's prober (rafthttp/probing_status.go with xiang90/probing): a
//! periodic `GET <peer URL>/raft/probing` to each peer, giving a health
//! view (healthy, smoothed round-trip time, clock offset), the
//! `etcd_network_peer_round_trip_time_seconds` histogram, and etcd's
//! warnings when a peer is unhealthy or its clock is more than a second
//! off.
//!
//! [`Prober`] is one actor for all peers: send it [`AddPeer`] as peers
//! join and [`RemovePeer`] as they leave, and ask [`GetHealth`]. Each peer
//! is probed once when added, then every [`ProberConfig::interval`]; a
//! failed probe moves to the peer's next URL. Its status is checked first
//! after [`ProberConfig::error_interval`], then every
//! [`ProberConfig::monitoring_interval`] while healthy and every
//! `error_interval` while not, as etcd's monitor does.
//!
//! Two deliberate differences from etcd: each successful probe's own
//! round trip goes into the histogram (etcd observes the smoothed value at
//! each check, and a never-reached peer's zero), and a clock *ahead* of
//! ours warns too (see `health::check`).

mod answer;
mod health;

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use actix_web::http::header;

use crate::config::{ClientTls, DIAL_TIMEOUT};
use crate::id::Id;
use crate::metrics::Metrics;
use crate::wire::PROBING_PREFIX;
use answer::{check_answer, PeerClock, ProbeError, MAX_ANSWER_BYTES};
pub use health::{ClockOffset, PeerHealth, ProberConfig};

/// The name etcd gives the prober of the transport the pipeline uses
/// (`RoundTripperNameSnapshot`, probing_status.go:30), logged with each
/// warning.
pub const ROUND_TRIPPER_NAME: &str = "ROUND_TRIPPER_SNAPSHOT";

/// Start probing a peer at `urls` (its advertised peer URLs); a peer
/// probed already gets the new URLs and a fresh status, as etcd's
/// `UpdatePeer` re-registers it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), AddPeerError>")]
pub struct AddPeer {
    /// The peer.
    pub id: Id,
    /// Its peer URLs, e.g. `http://10.0.0.2:2380`.
    pub urls: Vec<String>,
}

/// Why a peer could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddPeerError {
    /// There is no URL to probe (etcd's "failed to add peer into prober").
    #[error("failed to add peer {0} into prober: no peer URL")]
    NoUrls(Id),
}

/// Stop probing a peer. Answers what the probes found, `None` if it was
/// not probed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<PeerHealth>")]
pub struct RemovePeer(pub Id);

/// What the probes found about a peer; `None` if it is not probed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<PeerHealth>")]
pub struct GetHealth(pub Id);

/// The prober actor; see the module doc.
pub struct Prober {
    config: ProberConfig,
    metrics: Option<Metrics>,
    client: awc::Client,
    peers: HashMap<Id, Target>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("config", &self.config)
            .field("peers", &self.peers)
            .finish()
    }
}

/// One probed peer.
#[derive(Debug)]
struct Target {
    urls: Vec<String>,
    /// The URL probed, moved on at each failure (xiang90's `pinned`).
    pinned: usize,
    health: PeerHealth,
    ticker: SpawnHandle,
    monitor: SpawnHandle,
    /// The probe in flight; a tick while one is skips (as Go's ticker
    /// drops ticks while the probing goroutine is busy).
    probe: Option<SpawnHandle>,
}

/// How one probe ended.
struct Outcome {
    rtt: std::time::Duration,
    at: SystemTime,
    answer: Result<Option<PeerClock>, ProbeError>,
}

impl Prober {
    /// A prober with `config`, observing round trips in `metrics` if
    /// given. Start it with `Actor::start`.
    pub fn new(config: ProberConfig, metrics: Option<Metrics>) -> Prober {
        Prober {
            config,
            metrics,
            client: crate::sender::http_client(DIAL_TIMEOUT),
            peers: HashMap::new(),
        }
    }

    /// Probes `https://` URLs with `tls`'s client certificate (default:
    /// plain HTTP only), as the pipelines dial them
    /// ([`PipelineConfig::tls`](crate::PipelineConfig::tls)).
    #[cfg(feature = "tls")]
    pub fn tls(self, tls: std::sync::Arc<rustls::ClientConfig>) -> Prober {
        self.with_client_tls(Some(&tls))
    }

    /// A fresh client, with `tls` for `https://` URLs if given.
    pub(crate) fn with_client_tls(mut self, tls: Option<&ClientTls>) -> Prober {
        self.client = crate::sender::build_client(DIAL_TIMEOUT, tls);
        self
    }

    fn forget(&mut self, id: Id, ctx: &mut Context<Self>) -> Option<PeerHealth> {
        let target = self.peers.remove(&id)?;
        ctx.cancel_future(target.ticker);
        ctx.cancel_future(target.monitor);
        if let Some(probe) = target.probe {
            ctx.cancel_future(probe);
        }
        Some(target.health)
    }

    fn probe(&mut self, id: Id, ctx: &mut Context<Self>) {
        let Some(target) = self.peers.get_mut(&id) else {
            return;
        };
        if target.probe.is_some() {
            return;
        }
        let base = target.urls[target.pinned].trim_end_matches('/');
        let url = format!("{base}{PROBING_PREFIX}");
        let request = self.client.get(&url).timeout(self.config.timeout);
        let probe = async move {
            let start = Instant::now();
            let answer = match request.send().await {
                Ok(mut response) => {
                    let date = response.headers().get(header::DATE).cloned();
                    let date = date.as_ref().and_then(|d| d.to_str().ok());
                    match response.body().limit(MAX_ANSWER_BYTES).await {
                        Ok(body) => check_answer(&url, response.status().as_u16(), date, &body),
                        Err(e) => Err(request_error(&url, e)),
                    }
                }
                Err(e) => Err(request_error(&url, e)),
            };
            Outcome {
                rtt: start.elapsed(),
                at: SystemTime::now(),
                answer,
            }
        };
        let handle = ctx.spawn(
            probe
                .into_actor(self)
                .map(move |outcome, act, _| act.probed(id, outcome)),
        );
        if let Some(target) = self.peers.get_mut(&id) {
            target.probe = Some(handle);
        }
    }

    fn probed(&mut self, id: Id, outcome: Outcome) {
        let Some(target) = self.peers.get_mut(&id) else {
            return;
        };
        target.probe = None;
        match outcome.answer {
            Ok(clock) => {
                target.health.record(outcome.rtt, clock, outcome.at);
                if let Some(metrics) = &self.metrics {
                    metrics.round_trip(id, outcome.rtt);
                }
            }
            Err(e) => {
                log::debug!("probe of peer {id} failed: {e}");
                target.health.record_failure(e.to_string());
                target.pinned = (target.pinned + 1) % target.urls.len();
            }
        }
    }

    /// etcd's `monitorProbingStatus` step: warn, then schedule the next
    /// check.
    fn monitor(&mut self, id: Id, ctx: &mut Context<Self>) {
        let Some(target) = self.peers.get_mut(&id) else {
            return;
        };
        let health = &target.health;
        let check = health::check(health, &self.config);
        let error = health.error.as_deref().unwrap_or("none");
        if check.unhealthy {
            log::warn!(
                "prober detected unhealthy status round-tripper-name={ROUND_TRIPPER_NAME} remote-peer-id={id} rtt={:?} error={error}",
                health.srtt
            );
        }
        if let Some(drift) = check.drift {
            log::warn!(
                "prober found high clock drift round-tripper-name={ROUND_TRIPPER_NAME} remote-peer-id={id} clock-drift={drift} rtt={:?} error={error}",
                health.srtt
            );
        }
        target.monitor = ctx.run_later(check.next, move |act, ctx| act.monitor(id, ctx));
    }
}

fn request_error(url: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Request {
        reason: e.to_string(),
        url: url.to_owned(),
    }
}

impl Actor for Prober {
    type Context = Context<Self>;
}

impl Handler<AddPeer> for Prober {
    type Result = Result<(), AddPeerError>;

    fn handle(&mut self, msg: AddPeer, ctx: &mut Context<Self>) -> Self::Result {
        let AddPeer { id, urls } = msg;
        if urls.is_empty() {
            log::warn!("failed to add peer into prober remote-peer-id={id}");
            return Err(AddPeerError::NoUrls(id));
        }
        self.forget(id, ctx);
        let ticker = ctx.run_interval(self.config.interval, move |act, ctx| act.probe(id, ctx));
        let monitor = ctx.run_later(self.config.error_interval, move |act, ctx| {
            act.monitor(id, ctx)
        });
        let target = Target {
            urls,
            pinned: 0,
            health: PeerHealth::default(),
            ticker,
            monitor,
            probe: None,
        };
        self.peers.insert(id, target);
        self.probe(id, ctx);
        Ok(())
    }
}

impl Handler<RemovePeer> for Prober {
    type Result = Option<PeerHealth>;

    fn handle(&mut self, RemovePeer(id): RemovePeer, ctx: &mut Context<Self>) -> Self::Result {
        self.forget(id, ctx)
    }
}

impl Handler<GetHealth> for Prober {
    type Result = Option<PeerHealth>;

    fn handle(&mut self, GetHealth(id): GetHealth, _: &mut Context<Self>) -> Self::Result {
        self.peers.get(&id).map(|t| t.health.clone())
    }
}

//! What one HTTP worker shares between its routes: the header checks with
//! their memo, the answers, and the raft actor that takes the messages.

use actix::prelude::*;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::answer::{Answers, Rejection};
use super::checks::{HeaderChecks, PeerHeaders};
use super::ReceiverConfig;
use crate::messages::{Inbound, ProcessError};
use crate::metrics::Metrics;
use crate::wire::name;

/// One worker's copy of the configuration, prepared for checking and
/// answering.
#[derive(Debug)]
pub(crate) struct Worker {
    /// The checks after the method, with this worker's memo.
    pub(crate) checks: HeaderChecks,
    /// How this worker answers.
    pub(crate) answers: Answers,
    /// The largest `/raft` body accepted.
    pub(crate) max_message_bytes: usize,
    raft: Recipient<Inbound>,
    metrics: Option<Metrics>,
}

impl Worker {
    /// A worker for `config`.
    pub(crate) fn new(config: ReceiverConfig) -> Self {
        Worker {
            checks: HeaderChecks::new(config.local.cluster_id),
            answers: Answers::new(config.local.id, config.local.cluster_id),
            max_message_bytes: config.max_message_bytes,
            raft: config.raft,
            metrics: config.metrics,
        }
    }

    /// Counts in the user's metrics, if any.
    pub(crate) fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(metrics) = &self.metrics {
            f(metrics);
        }
    }

    /// The user's metrics, if any.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// Hands the message to the raft actor and maps its answer
    /// (etcd `Process`, `rafthttp/http.go:141-160`).
    pub(crate) async fn deliver(&self, inbound: Inbound) -> Result<(), Rejection> {
        match self.raft.send(inbound).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ProcessError::RemovedMember)) => Err(Rejection::RemovedMember),
            Ok(Err(ProcessError::Other(reason))) => Err(Rejection::Process(reason)),
            Err(mailbox) => Err(Rejection::Process(format!("raft actor: {mailbox}"))),
        }
    }
}

/// The headers the checks read, borrowed from the request.
pub(crate) fn peer_headers(headers: &HeaderMap) -> PeerHeaders<'_> {
    let get = |name: &HeaderName| headers.get(name).map(HeaderValue::as_bytes);
    PeerHeaders {
        server_version: get(&name::SERVER_VERSION),
        min_cluster_version: get(&name::MIN_CLUSTER_VERSION),
        cluster_id: get(&name::CLUSTER_ID),
        server_from: get(&name::SERVER_FROM),
        peer_urls: get(&name::PEER_URLS),
        content_length: get(&header::CONTENT_LENGTH),
    }
}

//! What one HTTP worker shares between its routes: the header checks with
//! their memo, the answers, the bounds on what a request may hold, and
//! the raft actor that takes the messages.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::HttpRequest;
use bytes::Bytes;

use super::answer::{Answers, Rejection};
use super::budget::{Lease, MemoryBudget};
use super::checks::{HeaderChecks, PeerHeaders, Sender};
use super::decode::{decode, DecodeBound, Shape, DECODE_ALLOWANCE_BYTES};
use super::in_flight::{InFlight, Origin, Slot};
use super::ReceiverConfig;
use crate::messages::{Inbound, ProcessError};
use crate::metrics::Metrics;
use crate::raftpb::Message as RaftMessage;
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
    /// The receiver's memory budget, shared by every worker.
    pub(crate) budget: MemoryBudget,
    decode_bound: DecodeBound,
    /// How long a `/raft` body may send nothing.
    pub(crate) read_idle_timeout: Duration,
    in_flight: InFlight,
    max_requests_per_member: usize,
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
            budget: MemoryBudget::new(
                config.shared.memory_used.clone(),
                config.memory_budget_bytes,
            ),
            decode_bound: DecodeBound {
                ratio: config.max_decode_ratio,
                allowance: DECODE_ALLOWANCE_BYTES,
            },
            read_idle_timeout: config.read_idle_timeout,
            in_flight: config.shared.in_flight.clone(),
            max_requests_per_member: config.max_requests_per_member,
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

    /// Counts the request against its sender's cap on requests in flight
    /// (429 over it); the slot is held until the request ends.
    pub(crate) fn admit(&self, req: &HttpRequest, sender: &Sender) -> Result<Slot, Rejection> {
        let origin = sender.from.map_or_else(
            || {
                let ip = req
                    .peer_addr()
                    .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
                Origin::Address(ip)
            },
            Origin::Member,
        );
        let cap = self.max_requests_per_member;
        self.in_flight
            .enter(origin, cap)
            .ok_or(Rejection::TooManyRequests { cap })
    }

    /// Counts what decoding `bytes` would allocate, refuses it over the
    /// decode bound (413) or the memory budget (503), then decodes it;
    /// `unmarshal` words the answer to bytes that are not a raft message,
    /// which differs between the routes.
    pub(crate) fn decode(
        &self,
        bytes: Bytes,
        lease: &mut Lease,
        unmarshal: impl FnOnce(prost::DecodeError) -> Rejection,
    ) -> Result<RaftMessage, Rejection> {
        let shape = Shape::of(&bytes);
        let decoded = self
            .decode_bound
            .check(&shape, bytes.len())
            .map_err(Rejection::OverDecodeBound)?;
        lease.grow(decoded)?;
        decode(bytes, &shape).map_err(unmarshal)
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

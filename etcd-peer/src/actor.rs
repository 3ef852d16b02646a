//! The actor around the logic: [`StandIn`] fed by the receiver, answering
//! through the member's [`Transport`], and counting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use log::{info, warn};
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::transport::{SendMessages, StopTransport};
use rafthttp_pipeline::ReceivedSnapshot;
use rafthttp_pipeline::{
    Id, Inbound, PeerStatusChanged, PipelineStats, ProcessError, ReportSnapshot, ReportUnreachable,
    SnapshotStatus, Transport,
};
use serde_json::json;

use crate::events::{memory, Events};
use crate::standin::StandIn;
use crate::stats::{lock, type_name, Counts};

/// Ask the stand-in to stop its transport; answers with every pipeline's
/// final stats.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(Id, PipelineStats)>")]
pub struct Shutdown;

/// The stand-in as an actor: takes [`Inbound`] messages from the receiver,
/// answers through the [`Transport`] (one pipeline per peer), and counts.
pub struct StandInActor {
    pub(crate) logic: StandIn,
    pub(crate) transport: Addr<Transport>,
    pub(crate) counts: Arc<Mutex<Counts>>,
    pub(crate) stats_every: Option<Duration>,
    pub(crate) events: Events,
}

impl Actor for StandInActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.stats_every {
            ctx.run_interval(every, |act, _| println!("{}", lock(&act.counts).to_json()));
        }
    }
}

impl StandInActor {
    /// Reports what was done with a message, for `--events`.
    fn report(&self, m: &Message, snapshot: Option<&ReceivedSnapshot>, replies: &[Message]) {
        let answer = replies
            .iter()
            .find(|r| r.msg_type() == Some(MessageType::MsgAppResp));
        match m.msg_type() {
            Some(MessageType::MsgApp) => self.events.detail(|| {
                json!({"event": "append", "index": m.index, "log_term": m.log_term,
                       "entries": m.entries.len(), "commit": m.commit,
                       "answer": answer.map(|r| r.index), "reject": answer.map(|r| r.reject),
                       "hint": answer.map(|r| r.reject_hint)})
            }),
            Some(MessageType::MsgSnap) => {
                let meta = &m.snapshot.metadata;
                match snapshot {
                    Some(s) => info!(
                        "restored snapshot at index {} (term {}) from {:?}: {} bytes in {:?}",
                        meta.index, meta.term, s.path, s.size, s.took
                    ),
                    None => info!("inline snapshot at index {}", meta.index),
                }
                self.events.detail(|| {
                    json!({"event": "snapshot_saved", "index": meta.index, "term": meta.term,
                           "message_bytes": m.snapshot.data.as_ref().map_or(0, |d| d.len()),
                           "path": snapshot.map(|s| s.path.display().to_string()),
                           "size": snapshot.map(|s| s.size),
                           "took_ms": snapshot.map(|s| s.took.as_secs_f64() * 1000.0),
                           "answer": answer.map(|r| r.index), "memory": memory()})
                });
            }
            _ => {}
        }
    }
}

impl Handler<Inbound> for StandInActor {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _ctx: &mut Context<Self>) -> Self::Result {
        let m = inbound.message;
        let replies = self.logic.step(&m);
        if self.events.detailed() || m.is_snapshot() {
            self.report(&m, inbound.snapshot.as_ref(), &replies);
        }
        let mut counts = lock(&self.counts);
        *counts.inbound.entry(type_name(m.r#type)).or_default() += 1;
        if let Some(from) = inbound.from {
            counts.senders.insert(from);
        }
        for reply in &replies {
            if reply.reject && reply.msg_type() == Some(MessageType::MsgAppResp) {
                counts.rejected_appends += 1;
            }
            *counts.outbound.entry(type_name(reply.r#type)).or_default() += 1;
        }
        // A reply to a peer the transport does not know comes back as
        // ReportUnreachable, like any message that is not delivered.
        self.transport.do_send(SendMessages(replies));
        Ok(())
    }
}

impl Handler<ReportUnreachable> for StandInActor {
    type Result = ();

    fn handle(&mut self, report: ReportUnreachable, _ctx: &mut Context<Self>) {
        lock(&self.counts).unreachable += 1;
        warn!(
            "{} unreachable for {}: {}",
            report.to,
            type_name(report.message_type),
            report.reason
        );
    }
}

impl Handler<ReportSnapshot> for StandInActor {
    type Result = ();

    fn handle(&mut self, report: ReportSnapshot, _ctx: &mut Context<Self>) {
        if report.status == SnapshotStatus::Failure {
            warn!("snapshot to {} failed", report.to);
        }
    }
}

impl Handler<PeerStatusChanged> for StandInActor {
    type Result = ();

    fn handle(&mut self, change: PeerStatusChanged, _ctx: &mut Context<Self>) {
        match (change.active, change.reason) {
            (true, _) => info!("peer {} became active", change.peer),
            (false, reason) => info!(
                "peer {} became inactive ({})",
                change.peer,
                reason.unwrap_or_default()
            ),
        }
    }
}

impl Handler<Shutdown> for StandInActor {
    type Result = ResponseFuture<Vec<(Id, PipelineStats)>>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let stopped = self.transport.send(StopTransport);
        Box::pin(async move {
            let mut stats: Vec<_> = stopped.await.unwrap_or_default().into_iter().collect();
            stats.sort_by_key(|(peer, _)| *peer);
            stats
        })
    }
}

//! The user's raft actor, recording: it answers every [`Inbound`] the
//! receiver hands it as told ([`Answer`]) and records it, and it records
//! every callback the pipeline sends it ([`Event`]). One actor serves both
//! ends of a test: a member's receiver and its pipelines report to the same
//! raft.

use std::path::Path;

use actix::prelude::*;
use futures::channel::oneshot;
use rafthttp_pipeline::{
    CriticalError, Inbound, PeerStatusChanged, ProcessError, Recipients, ReportSnapshot,
    ReportUnreachable, SnapshotStatus,
};
use tokio::sync::watch;

use super::{wait, WAIT};

/// How the raft actor answers each [`Inbound`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// Takes the message: the receiver answers 204.
    Ok,
    /// [`ProcessError::RemovedMember`]: the sender was removed (403).
    RemovedMember,
    /// [`ProcessError::Other`] with [`STOPPED`]: raft could not take it
    /// (500).
    Other,
}

/// The reason [`Answer::Other`] gives.
pub const STOPPED: &str = "raft: stopped";

impl Answer {
    fn result(self) -> Result<(), ProcessError> {
        match self {
            Answer::Ok => Ok(()),
            Answer::RemovedMember => Err(ProcessError::RemovedMember),
            Answer::Other => Err(ProcessError::Other(STOPPED.into())),
        }
    }
}

/// What a sink that keeps a database in memory returns as its path, so
/// that [`Received::stored_before`] counts it as stored.
pub const IN_MEMORY: &str = "stored in memory";

/// One message the raft actor got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message, its sender and its stored snapshot, if any.
    pub inbound: Inbound,
    /// Whether a streamed snapshot's database was stored (its path exists,
    /// or is [`IN_MEMORY`]) by the time raft heard of it.
    pub stored_before: bool,
}

/// One callback the pipeline sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `ReportUnreachable`.
    Unreachable(ReportUnreachable),
    /// `ReportSnapshot`.
    Snapshot(ReportSnapshot),
    /// `PeerStatusChanged`.
    Status(PeerStatusChanged),
    /// `CriticalError`.
    Critical(CriticalError),
}

/// The actor: records what it is sent into two watched lists. With
/// `hold = n` it answers no [`Inbound`] until `n` wait, then all of them:
/// only a receiver that serves requests concurrently gets answers.
pub struct RecordingRaft {
    answer: Answer,
    hold: usize,
    held: Vec<oneshot::Sender<()>>,
    gone: bool,
    received: watch::Sender<Vec<Received>>,
    events: watch::Sender<Vec<Event>>,
}

impl Actor for RecordingRaft {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.gone {
            ctx.stop();
        }
    }
}

impl Handler<Inbound> for RecordingRaft {
    type Result = ResponseFuture<Result<(), ProcessError>>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        let stored_before = inbound
            .snapshot
            .as_ref()
            .is_some_and(|s| s.path == Path::new(IN_MEMORY) || s.path.exists());
        self.received.send_modify(|r| {
            r.push(Received {
                inbound,
                stored_before,
            })
        });
        let answer = self.answer.result();
        if self.hold == 0 {
            return Box::pin(async move { answer });
        }
        let (tx, rx) = oneshot::channel();
        self.held.push(tx);
        if self.held.len() >= self.hold {
            for tx in self.held.drain(..) {
                let _ = tx.send(());
            }
        }
        Box::pin(async move {
            let _ = rx.await;
            answer
        })
    }
}

macro_rules! record {
    ($msg:ty, $variant:ident) => {
        impl Handler<$msg> for RecordingRaft {
            type Result = ();
            fn handle(&mut self, msg: $msg, _: &mut Context<Self>) {
                self.events
                    .send_modify(|events| events.push(Event::$variant(msg)));
            }
        }
    };
}
record!(ReportUnreachable, Unreachable);
record!(ReportSnapshot, Snapshot);
record!(PeerStatusChanged, Status);
record!(CriticalError, Critical);

/// A started [`RecordingRaft`] and a view of what it recorded.
pub struct Recording {
    addr: Addr<RecordingRaft>,
    received: watch::Receiver<Vec<Received>>,
    events: watch::Receiver<Vec<Event>>,
}

impl Recording {
    /// A raft actor that takes every message, on the current arbiter.
    pub fn start() -> Recording {
        Recording::answering(Answer::Ok)
    }

    /// A raft actor that answers every message with `answer`.
    pub fn answering(answer: Answer) -> Recording {
        Recording::spawn(answer, 0, false)
    }

    /// A raft actor that answers no message until `n` wait (see
    /// [`RecordingRaft`]).
    pub fn holding_until(n: usize) -> Recording {
        Recording::spawn(Answer::Ok, n, false)
    }

    /// A raft actor that has already stopped: its mailbox is closed.
    pub fn gone() -> Recording {
        Recording::spawn(Answer::Ok, 0, true)
    }

    fn spawn(answer: Answer, hold: usize, gone: bool) -> Recording {
        let (received_tx, received) = watch::channel(Vec::new());
        let (events_tx, events) = watch::channel(Vec::new());
        let addr = RecordingRaft {
            answer,
            hold,
            held: Vec::new(),
            gone,
            received: received_tx,
            events: events_tx,
        }
        .start();
        Recording {
            addr,
            received,
            events,
        }
    }

    /// Where a receiver hands this raft the messages it accepts.
    pub fn inbound(&self) -> Recipient<Inbound> {
        self.addr.clone().recipient()
    }

    /// Recipients for every pipeline callback, all to this raft.
    pub fn recipients(&self) -> Recipients {
        Recipients::from_addr(&self.addr)
            .peer_status(self.addr.clone().recipient())
            .critical_errors(self.addr.clone().recipient())
    }

    /// This raft as a member's: every message and callback to it.
    pub fn raft_recipients(&self) -> rafthttp_pipeline::transport::RaftRecipients<RecordingRaft> {
        rafthttp_pipeline::transport::RaftRecipients::new(self.addr.clone())
    }

    /// Where a stream writer reports the messages it could not deliver.
    pub fn unreachable(&self) -> Recipient<ReportUnreachable> {
        self.addr.clone().recipient()
    }

    /// Where a stream reader reports that this member was removed.
    pub fn critical_errors(&self) -> Recipient<CriticalError> {
        self.addr.clone().recipient()
    }

    /// Where a stream reader tells the peer's status.
    pub fn peer_status(&self) -> Recipient<PeerStatusChanged> {
        self.addr.clone().recipient()
    }

    /// Every message received so far. The receiver hands a message over
    /// before it answers its request, so after an answer this is complete.
    pub fn received(&self) -> Vec<Received> {
        self.received.borrow().clone()
    }

    /// Waits until at least `n` messages were received; fails after
    /// `within`.
    pub async fn wait_received(&self, n: usize, within: std::time::Duration) -> Vec<Received> {
        let what = format!("{n} inbound messages");
        wait::until(&self.received, within, &what, |r| r.len() >= n).await
    }

    /// Every callback recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    /// Waits until `done` holds for the recorded callbacks; fails after
    /// [`WAIT`].
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        wait::until(&self.events, WAIT, what, |e| done(e)).await
    }

    /// Waits for at least `n` unreachable reports.
    pub async fn wait_unreachable(&self, n: usize) -> Vec<Event> {
        self.wait_until("unreachable reports", |e| count_unreachable(e) >= n)
            .await
    }
}

/// Number of `ReportUnreachable` events.
pub fn count_unreachable(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Unreachable(_)))
        .count()
}

/// The snapshot statuses reported, in order.
pub fn snapshot_reports(events: &[Event]) -> Vec<SnapshotStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Snapshot(r) => Some(r.status),
            _ => None,
        })
        .collect()
}

/// The peer-status transitions reported, in order (`true` = active).
pub fn status_changes(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(s.active),
            _ => None,
        })
        .collect()
}

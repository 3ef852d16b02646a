//! A message in the per-peer core's hands: what the core knows of it
//! (peer, type, size, channel), with the payload it carries unopened.

use std::time::Instant;

use crate::dispatch::Lane;
use crate::id::Id;
use crate::metrics::InFlight;
use crate::peer_status::{FailureType, PIPELINE_WRITE, SNAPSHOT_POST};
use crate::raftpb::{Message, MessageType};

/// What the core needs of a payload it carries without looking inside.
pub(crate) trait WireLen {
    /// Bytes on the wire (etcd's `sentBytes`: `m.Size()`, or `TotalSize`
    /// for a streamed snapshot).
    fn wire_len(&self) -> u64;
}

/// A message offered to the core: who it is for and what it is, before
/// any payload exists (a refused message is never encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The message's `to`, which reports name.
    pub(crate) to: Id,
    /// The message's raft type, as on the wire.
    pub(crate) message_type: i32,
    /// Whether it is a streamed snapshot (`POST /raft/snapshot`) rather
    /// than a message (`POST /raft`).
    pub(crate) streamed: bool,
}

impl Offer {
    /// A message for `POST /raft`.
    pub(crate) fn message(message: &Message) -> Self {
        Offer {
            to: Id(message.to),
            message_type: message.r#type,
            streamed: false,
        }
    }

    /// A snapshot streamed through `POST /raft/snapshot`, whose head is
    /// `message`.
    pub(crate) fn snapshot(message: &Message) -> Self {
        Offer {
            streamed: true,
            ..Offer::message(message)
        }
    }

    /// Whether the message is a `MsgSnap`.
    pub(crate) fn is_snapshot(&self) -> bool {
        self.message_type == MessageType::MsgSnap as i32
    }

    /// Whether the message is a `MsgApp`, whose latency etcd's
    /// followerStats track.
    pub(crate) fn is_append(&self) -> bool {
        self.message_type == MessageType::MsgApp as i32
    }

    /// Where a failure counts in the peer status (etcd's `failureType`).
    pub(crate) fn failure_type(&self) -> FailureType {
        match self.streamed {
            false => PIPELINE_WRITE,
            true => SNAPSHOT_POST,
        }
    }
}

/// Where and when a message was handed to a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// The handover's number, unique in the core's life, so a late outcome
    /// for an earlier handover is never taken for this one.
    pub(crate) ticket: u64,
    /// The URL generation at the handover: a failure counts against the
    /// picker only while no [`UpdateUrls`](crate::UpdateUrls) came since.
    pub(crate) generation: u64,
    /// The URL's position in the picker's list of that generation.
    pub(crate) url: usize,
    /// When it was handed over, for MsgApp latency.
    pub(crate) at: Instant,
}

/// A message accepted by the core, queued or in flight.
#[derive(Debug)]
pub(crate) struct Outgoing<P> {
    pub(crate) offer: Offer,
    pub(crate) wire_len: u64,
    /// Taken when the message is handed to a sender.
    pub(crate) payload: Option<P>,
    /// Set when the message is handed to a sender.
    pub(crate) sent: Option<Sent>,
    /// A streamed snapshot's place in `snapshot_send_inflights_total`,
    /// from its handover until the message is dropped, whatever its end.
    pub(crate) in_flight: Option<InFlight>,
}

impl<P: WireLen> Outgoing<P> {
    pub(crate) fn new(offer: Offer, payload: P) -> Self {
        Outgoing {
            offer,
            wire_len: payload.wire_len(),
            payload: Some(payload),
            sent: None,
            in_flight: None,
        }
    }
}

impl<P> Lane for Outgoing<P> {
    fn is_snapshot(&self) -> bool {
        self.offer.is_snapshot()
    }
}

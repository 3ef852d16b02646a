//! The [`Transport`](super::Transport)'s operations, etcd's
//! `rafthttp.Transport` methods (`rafthttp/transport.go`) as typed actor
//! messages.

use std::collections::HashMap;
use std::time::SystemTime;

use actix::prelude::*;

use super::error::PeerError;
use crate::id::Id;
use crate::raftpb::Message as RaftMessage;
use crate::stats::PipelineStats;

/// Start a pipeline to a peer (etcd's `AddPeer`). Adding a peer the
/// transport already has changes nothing, as in etcd; a remote of the same
/// id ([`AddRemote`]) is stopped, since the peer now takes its messages.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PeerError>")]
pub struct AddPeer {
    /// The peer's member id.
    pub id: Id,
    /// Its URLs (`http://host:port`).
    pub urls: Vec<String>,
}

/// Start a pipeline to a member that is not (yet) a peer, e.g. a sender
/// whose `X-PeerURLs` came in an [`Inbound`](crate::Inbound) (etcd's
/// `AddRemote`). A remote is used only while no peer of that id exists,
/// and it is stopped when the peer is added. Nothing is added when a peer
/// or remote of that id exists.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PeerError>")]
pub struct AddRemote {
    /// The member's id.
    pub id: Id,
    /// Its URLs (`http://host:port`).
    pub urls: Vec<String>,
}

/// Stop a peer's pipeline and forget the peer (etcd's `RemovePeer`). Its
/// queued and in-flight messages are reported to raft as the pipeline's
/// [`Stop`](crate::Stop) does. Resolves with the pipeline's final counters
/// once it has stopped, or `None` for a peer the transport does not have
/// (where etcd panics).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<PipelineStats>")]
pub struct RemovePeer(pub Id);

/// Replace a peer's URLs (etcd's `UpdatePeer`): its pipeline's picker
/// starts again at the first of the sorted URLs.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), PeerError>")]
pub struct UpdatePeer {
    /// The peer's member id.
    pub id: Id,
    /// Its new URLs.
    pub urls: Vec<String>,
}

/// Remove every peer (etcd's `RemoveAllPeers`); remotes stay. Resolves
/// with each removed peer's final counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "HashMap<Id, PipelineStats>")]
pub struct RemoveAllPeers;

/// Send raft's messages, each to the pipeline of its `to` (etcd's
/// `Transport.Send`).
///
/// A message to a peer the transport does not know, or sent after
/// [`StopTransport`], is reported to raft at once
/// ([`ReportUnreachable`](crate::ReportUnreachable), plus
/// [`ReportSnapshot`](crate::ReportSnapshot) `Failure` for a `MsgSnap`),
/// where etcd only logs it. A message with `to == 0` is skipped, as in
/// etcd: raft's application zeroes `to` to drop a message on purpose
/// (etcd does so for messages to removed members).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SendMessages(pub Vec<RaftMessage>);

/// When did this peer become active (etcd's `ActiveSince`)? `None` while
/// it is inactive, before its first delivered message, and for a peer the
/// transport does not have.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<SystemTime>")]
pub struct ActiveSince(pub Id);

/// Ask for the counters of every peer's and remote's pipeline.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "HashMap<Id, PipelineStats>")]
pub struct GetPeerStats;

/// Stop the transport (etcd's `Transport.Stop`): stop every peer's and
/// remote's pipeline and resolve, once each has stopped, with its final
/// counters. Afterwards the transport adds no peer and reports every
/// message it is given; a second stop resolves with an empty map.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "HashMap<Id, PipelineStats>")]
pub struct StopTransport;

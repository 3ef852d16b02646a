//! A member's transport: every peer behind one address (etcd's
//! `rafthttp.Transport`, `rafthttp/transport.go`).
//!
//! ```text
//!  raft actor ──SendMessages(msgs)──▶ Transport ◀── AddPeer / RemovePeer / UpdatePeer / StopTransport
//!                                       │ routes each message by `to`
//!                                       ├──▶ peer 2: PipelineActor ──▶ SenderActor ×4
//!                                       ├──▶ peer 3: PipelineActor ──▶ SenderActor ×4
//!                                       └──▶ remote 7 (until 7 is added as a peer)
//!  unknown `to` ──▶ ReportUnreachable (+ ReportSnapshot Failure for MsgSnap) to raft
//! ```
//!
//! The [`Transport`] starts one [`PipelineActor`](crate::PipelineActor) per
//! peer and keeps the shape of a single pipeline: each is still a
//! `PipelineActor` supervising its `SenderActor`s and reporting every
//! outcome to raft. etcd's methods are typed messages:
//!
//! | etcd | here | answer |
//! |---|---|---|
//! | `AddPeer(id, urls)` | [`AddPeer`] | `Result<(), PeerError>` |
//! | `AddRemote(id, urls)` | [`AddRemote`] | `Result<(), PeerError>` |
//! | `RemovePeer(id)` | [`RemovePeer`] | the pipeline's final stats |
//! | `UpdatePeer(id, urls)` | [`UpdatePeer`] | `Result<(), PeerError>` |
//! | `RemoveAllPeers()` | [`RemoveAllPeers`] | final stats per peer |
//! | `Send(msgs)` | [`SendMessages`] | — (outcomes go to raft) |
//! | `SendSnapshot(m)` | [`SendSnapshot`](crate::SendSnapshot) | `Result<(), Dropped>` |
//! | `ActiveSince(id)` | [`ActiveSince`] | `Option<SystemTime>` |
//! | `Stop()` | [`StopTransport`] | final stats per peer and remote |
//!
//! Where it differs from etcd, it loses nothing: a message to a peer the
//! transport does not know (or sent after stop) is reported to raft, where
//! etcd only logs it, and a removed peer's queued messages are reported by
//! its pipeline's stop, where etcd drops them. So for every peer,
//! `delivered + reported == offered` once its pipeline has stopped, and
//! every message the transport refuses itself is reported too. A remote's
//! pipeline reports as a peer's does (etcd's remote drops silently), and it
//! is stopped when the peer is added (etcd keeps it until the transport
//! stops).
//!
//! [`MemberBuilder`] starts a whole member, the receiver's HTTP server and
//! the transport, and hands the raft actor the transport's address before
//! the transport runs, so no `Actor::create` is needed to close the cycle.

mod actor;
mod config;
mod error;
mod member;
mod member_server;
mod messages;
mod peers;
mod probing;
mod raft_recipients;
mod refusal;
mod status_tap;

pub use actor::Transport;
pub use config::TransportConfig;
pub use error::PeerError;
pub use member::{Member, MemberBuilder, PEER_SHUTDOWN_TIMEOUT};
pub use messages::*;
pub use raft_recipients::RaftRecipients;

//! The transport glue: everything between raft-rs and the network that is
//! neither the Ready loop (`node.rs`) nor the key-value state machine
//! (`kv.rs`). Starting the member, sending, receiving, the callbacks, and
//! membership changes reaching the transport.

use std::io;
use std::path::Path;

use actix::prelude::{Actor, Context, Handler};
use raft::prelude::{ConfChange, ConfChangeType, Message};
use rafthttp_pipeline::raft_rs;
use rafthttp_pipeline::receiver::{DirSink, SnapshotConfig};
use rafthttp_pipeline::transport::{AddPeer, Member, MemberBuilder, RaftRecipients, RemovePeer};
use rafthttp_pipeline::{
    Id, Inbound, LocalMember, ProcessError, ReportSnapshot, ReportUnreachable, SnapshotStatus,
};

use crate::node::{self, Node};

/// The cluster's id, sent as `X-Etcd-Cluster-ID`.
pub const CLUSTER: Id = Id(0x6b76);

/// Starts member `id`: its raft node (a member of `voters`, or empty), its
/// transport, and its receiver, storing streamed snapshots in `dir`.
pub fn start_member(id: u64, voters: &[u64], dir: &Path) -> io::Result<Member<Node>> {
    let raw = node::raw_node(id, voters).map_err(io::Error::other)?;
    let sink = DirSink::new(dir);
    MemberBuilder::new(LocalMember::new(Id(id), CLUSTER))
        .bind(([127, 0, 0, 1], 0))
        .workers(1)
        .receiver(move |c| c.snapshots(SnapshotConfig::new().sink(sink)))
        .start(move |transport| RaftRecipients::new(Node::new(raw, transport).start()))
}

/// Tells the transport where the other members are.
pub fn join(member: &Member<Node>, peers: &[(u64, String)]) {
    for (id, url) in peers {
        let urls = vec![url.clone()];
        member.transport().do_send(AddPeer { id: Id(*id), urls });
    }
}

impl Node {
    /// Sends what raft-rs wants sent: snapshots streamed, the rest batched.
    pub fn send(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let (batch, snapshots) = raft_rs::outgoing(messages);
        self.transport.do_send(batch);
        for snapshot in snapshots {
            self.transport.do_send(snapshot);
        }
    }

    /// A membership change was applied: the transport follows it. The new
    /// member's URL came as the entry's context.
    pub fn membership_applied(&self, cc: &ConfChange, url: &[u8]) {
        let id = Id(cc.node_id);
        if cc.node_id == self.id {
            return;
        }
        match cc.get_change_type() {
            ConfChangeType::RemoveNode => self.transport.do_send(RemovePeer(id)),
            _ => {
                let urls = vec![String::from_utf8_lossy(url).into_owned()];
                self.transport.do_send(AddPeer { id, urls });
            }
        }
    }
}

impl Handler<Inbound> for Node {
    type Result = Result<(), ProcessError>;

    fn handle(&mut self, inbound: Inbound, _: &mut Context<Self>) -> Self::Result {
        self.snapshots_received += u64::from(inbound.snapshot.is_some());
        let message = raft_rs::inbound_message(inbound)?;
        // raft-rs refusing a message (e.g. from a removed peer) is no
        // transport failure: answering 500 would mark the sender's link down.
        if let Err(e) = self.raw.step(message) {
            log::debug!("raft dropped a message: {e}");
        }
        self.on_ready();
        Ok(())
    }
}

impl Handler<ReportUnreachable> for Node {
    type Result = ();

    fn handle(&mut self, report: ReportUnreachable, _: &mut Context<Self>) {
        self.raw.report_unreachable(report.to.0);
    }
}

impl Handler<ReportSnapshot> for Node {
    type Result = ();

    fn handle(&mut self, report: ReportSnapshot, _: &mut Context<Self>) {
        self.snapshots_sent += u64::from(report.status == SnapshotStatus::Finish);
        let status = raft_rs::snapshot_status(report.status);
        self.raw.report_snapshot(report.to.0, status);
    }
}

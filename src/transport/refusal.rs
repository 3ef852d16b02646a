//! How the transport reports a message it cannot hand to a pipeline: to
//! raft, exactly as a pipeline reports one it cannot deliver.

use crate::error::Error;
use crate::id::Id;
use crate::messages::{Dropped, ReportSnapshot, ReportUnreachable, SnapshotStatus};
use crate::pipeline::Recipients;
use crate::raftpb::Message as RaftMessage;

/// Reports `message` to raft as not delivered ([`ReportUnreachable`], plus
/// [`ReportSnapshot`] `Failure` for a `MsgSnap`) and says why to the
/// caller.
pub(super) fn refuse(recipients: &Recipients, message: &RaftMessage, reason: Error) -> Dropped {
    let to = Id(message.to);
    log::debug!(
        "ignored message {} (sent to unknown peer {to}): {reason}",
        message.r#type
    );
    recipients.unreachable.do_send(ReportUnreachable {
        to,
        message_type: message.r#type,
        reason: reason.clone(),
    });
    if message.is_snapshot() {
        recipients.snapshot.do_send(ReportSnapshot {
            to,
            status: SnapshotStatus::Failure,
        });
    }
    Dropped {
        to,
        message_type: message.r#type,
        reason,
    }
}

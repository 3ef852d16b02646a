//! raft-rs snapshots over the pipeline's streamed snapshot path
//! (`POST /raft/snapshot`), both ways.
//!
//! raft-rs keeps the application's state in `Snapshot.data`. Sent inline,
//! a large state is encoded, posted and decoded in one piece. Streamed, the
//! `MsgSnapshot` travels without its data and the data follows as a
//! stream; the receiver stores it in its sink and [`inbound_message`] puts
//! it back, so raft-rs sees the message it would have got inline.

use std::io;

use bytes::Bytes;
use raft::eraftpb;

use super::convert::ConvertError;
use crate::messages::{Inbound, ReceivedSnapshot, SendSnapshot};
use crate::raftpb;

/// A raft-rs `MsgSnapshot` as a streamed snapshot: the message without its
/// data, and the data streamed after it. Send it to the
/// [`Transport`](crate::Transport) (or a pipeline); the answer comes as
/// [`ReportSnapshot`](crate::ReportSnapshot) for `raw_node.report_snapshot`.
pub fn send_snapshot(message: eraftpb::Message) -> SendSnapshot {
    let mut message = raftpb::Message::from(message);
    let data = message.snapshot.data.take().unwrap_or_default();
    SendSnapshot::from_bytes(message, data)
}

/// Reads a received snapshot's database (the file the receiver's sink
/// stored) into memory, as raft-rs's `Snapshot.data`. It blocks while
/// reading; for a large state, call it on a blocking thread.
pub fn read_received_snapshot(received: &ReceivedSnapshot) -> io::Result<Bytes> {
    std::fs::read(&received.path).map(Bytes::from)
}

/// The raft-rs message a received [`Inbound`] stands for, ready for
/// `raw_node.step`: converted, and for a streamed snapshot with its
/// database read back into `snapshot.data`. The file is left where the
/// sink put it; remove it once raft-rs has applied the snapshot.
pub fn inbound_message(inbound: Inbound) -> Result<eraftpb::Message, ConvertError> {
    let mut message = eraftpb::Message::try_from(inbound.message)?;
    if let Some(received) = &inbound.snapshot {
        let data = read_received_snapshot(received).map_err(|e| ConvertError::ReadSnapshot {
            path: received.path.clone(),
            error: e.to_string(),
        })?;
        message.mut_snapshot().data = data;
    }
    Ok(message)
}

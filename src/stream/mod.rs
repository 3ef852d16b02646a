//! etcd's rafthttp streams (`rafthttp/stream.go`, `msg_codec.go`,
//! `msgappv2_codec.go`): two long-lived HTTP GETs per peer and direction,
//! whose response bodies carry frames.
//!
//! Pure parts (no actix): the stream types, both codecs (push decoders
//! that never panic and never reserve memory from a length prefix), the
//! link heartbeat, etcd's `peer.pick` (`pick`), the handler's checks (`request_checks`) and the reading
//! of a dial's answer (`dial_answer`). The shell:
//! the stream route (`server`), the writer actor (`writer`), the
//! response body it feeds (`conn`) the reader actor (`reader`), and one peer's
//! four of them as the transport holds them (`peer_streams`).

mod codec;
mod conn;
mod decode_error;
mod dial_answer;
mod input;
mod link_heartbeat;
mod message_codec;
mod msgappv2_codec;
mod peer_streams;
mod pick;
mod reader;
mod request_checks;
mod server;
mod stream_type;
mod writer;

use std::time::Duration;

pub use codec::{StreamDecoder, StreamEncoder};
pub use decode_error::StreamDecodeError;
pub use message_codec::READ_BYTES_LIMIT;
pub use reader::{StreamReaderActor, StreamReaderConfig, StreamReaderStatus, DIAL_RETRY_FREQUENCY};
pub use server::{stream_routes, RemovedCheck, StreamRoutes, StreamWriters};
pub use stream_type::StreamType;
pub use writer::{StopStream, StreamSend, StreamWriterActor};

pub(crate) use peer_streams::{PeerStreams, StreamPeer};

/// Capacity of each stream writer's queue (etcd `streamBufSize`,
/// `rafthttp/stream.go:44`).
pub const STREAM_BUF_SIZE: usize = 4096;

/// The read timeout of a stream: a reader that gets no byte for this long
/// gives the connection up (etcd `ConnReadTimeout`, `rafthttp/peer.go:40`).
pub const CONN_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a writer sends a link heartbeat: a third of the read timeout
/// (etcd `ConnReadTimeout/3`, `rafthttp/stream.go:161`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_nanos(1_666_666_666);

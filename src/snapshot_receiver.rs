//! The former home of the snapshot receiver, kept so that existing paths
//! still compile: the sink, [`DirSink`] and [`SnapshotConfig`] are in
//! [`receiver`](crate::receiver), and [`ReceivedSnapshot`] is with the
//! other actor messages at the crate root.

pub use crate::messages::ReceivedSnapshot;
pub use crate::receiver::{
    db_file_name, DirSink, SnapshotConfig, SnapshotSink, SnapshotWriter, WRITE_BATCH_BYTES,
};

//! placeholder crate docs (rewritten at the end)
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod id;
pub mod messages;
pub mod picker;
pub mod raftpb;
pub mod stats;
pub mod version;

pub use config::{PipelineConfig, SenderPlacement};
pub use error::Error;
pub use id::Id;
pub use messages::*;
pub use stats::{FollowerStats, PipelineStats};

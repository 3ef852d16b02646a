//! What the transport holds for each peer, and how it stops them: each
//! pipeline (and its streams) stopped, its final counters collected.

use std::collections::HashMap;
use std::future::Future;
use std::time::SystemTime;

use actix::prelude::*;
use futures::future::{join_all, BoxFuture, FutureExt};

use crate::id::Id;
use crate::messages::{PeerStatusChanged, Stop};
use crate::pipeline::PipelineActor;
use crate::stats::PipelineStats;
use crate::stream::PeerStreams;

/// One peer's (or remote's) pipeline and what the transport knows of it.
pub(super) struct PeerPipeline {
    pub(super) pipeline: Addr<PipelineActor>,
    /// Which pipeline this is, so a status change from a pipeline that was
    /// replaced is not taken for the current one's.
    pub(super) generation: u64,
    pub(super) active_since: Option<SystemTime>,
    /// The peer's streams, when the transport has them (never a remote's).
    pub(super) streams: Option<PeerStreams>,
    /// Where this generation's status changes go (the pipeline's, and the
    /// stream readers').
    pub(super) status: Recipient<PeerStatusChanged>,
}

/// Stops `pipelines` and resolves with each one's final counters.
pub(super) fn stop_all(
    pipelines: Vec<(Id, PeerPipeline)>,
) -> impl Future<Output = HashMap<Id, PipelineStats>> {
    let stops = pipelines.into_iter().map(|(id, entry)| async move {
        let stats = stop_peer(id, entry).await;
        (id, stats)
    });
    join_all(stops).map(|all| all.into_iter().collect())
}

/// Stops a peer's streams and pipeline; resolves with the pipeline's
/// final counters.
pub(super) fn stop_peer(id: Id, entry: PeerPipeline) -> BoxFuture<'static, PipelineStats> {
    if let Some(streams) = entry.streams {
        streams.stop();
    }
    stop_pipeline(id, entry.pipeline)
}

/// Stops one pipeline and resolves with its final counters.
pub(super) fn stop_pipeline(
    id: Id,
    pipeline: Addr<PipelineActor>,
) -> BoxFuture<'static, PipelineStats> {
    async move {
        pipeline.send(Stop).await.unwrap_or_else(|err| {
            log::warn!("pipeline to {id} did not answer stop: {err}");
            PipelineStats::default()
        })
    }
    .boxed()
}

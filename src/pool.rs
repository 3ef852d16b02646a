//! The small pool of arbiters that senders share by default.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use actix::{Arbiter, ArbiterHandle, System};

/// Arbiters per pool: one per CPU, at most one per sender of a pipeline.
fn pool_size() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.clamp(1, crate::config::CONN_PER_PIPELINE)
}

fn pools() -> &'static Mutex<HashMap<usize, Vec<ArbiterHandle>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Vec<ArbiterHandle>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The shared pool of the running actix `System`, created on first use.
/// Each `System` has its own pool, since arbiters belong to a system.
pub(crate) fn shared_pool() -> Vec<ArbiterHandle> {
    let system = System::current().id();
    let mut pools = pools()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    pools
        .entry(system)
        .or_insert_with(|| (0..pool_size()).map(|_| Arbiter::new().handle()).collect())
        .clone()
}

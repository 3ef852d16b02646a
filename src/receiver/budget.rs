//! The one memory budget for every request body in flight on a receiver,
//! across all its connections and HTTP workers.
//!
//! Memory is charged as it is allocated for bytes that arrived (or for
//! what decoding them will allocate), never from a header, and given back
//! when the request ends. A request that would go over the budget is
//! refused with 503 instead. Pure: an atomic counter shared by `Arc`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The receiver's memory budget: what all requests hold now, and the most
/// they may hold together. Clones share the count.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

/// A request would go over the memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory budget of {limit} bytes exhausted")]
pub(crate) struct Exhausted {
    /// The budget in force.
    pub(crate) limit: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes counted in `used`, which every worker of
    /// one receiver shares.
    pub(crate) fn new(used: Arc<AtomicUsize>, limit: usize) -> Self {
        MemoryBudget { used, limit }
    }

    /// What is left now.
    pub(crate) fn available(&self) -> usize {
        self.limit.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    /// An empty lease, for one request.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            budget: self.clone(),
            held: 0,
        }
    }

    /// The error for a request that does not fit.
    pub(crate) fn exhausted(&self) -> Exhausted {
        Exhausted { limit: self.limit }
    }

    fn take(&self, bytes: usize) -> Result<(), Exhausted> {
        let fits = |used: usize| used.checked_add(bytes).filter(|&n| n <= self.limit);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, fits)
            .map(drop)
            .map_err(|_| self.exhausted())
    }

    fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What one request holds of the budget; given back when dropped, however
/// the request ends.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: MemoryBudget,
    held: usize,
}

impl Lease {
    /// Takes `bytes` more, before they are allocated.
    pub(crate) fn grow(&mut self, bytes: usize) -> Result<(), Exhausted> {
        self.budget.take(bytes)?;
        self.held += bytes;
        Ok(())
    }

    /// Gives back `bytes` that were freed.
    pub(crate) fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.budget.give(bytes);
        self.held -= bytes;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_share_one_budget_and_give_back_on_drop() {
        let used = Arc::new(AtomicUsize::new(0));
        let budget = MemoryBudget::new(used.clone(), 100);
        let mut a = budget.lease();
        let mut b = budget.lease();
        a.grow(60).unwrap();
        assert_eq!(b.grow(41), Err(Exhausted { limit: 100 }));
        b.grow(40).unwrap();
        assert_eq!(budget.available(), 0);
        a.shrink(10);
        assert_eq!(budget.available(), 10);
        drop(a);
        assert_eq!(used.load(Ordering::Relaxed), 40);
        drop(b);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn a_huge_request_cannot_overflow_the_count() {
        let budget = MemoryBudget::new(Arc::default(), usize::MAX);
        let mut a = budget.lease();
        a.grow(usize::MAX).unwrap();
        assert!(budget.lease().grow(1).is_err());
    }
}

//! The cap on concurrent requests from one remote member: a peer that
//! holds many connections open cannot take every request slot of the
//! receiver. Pure: a shared map of counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::id::Id;

/// Who a request is counted against: the member its `X-Server-From`
/// names, or its address when the header is missing or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Origin {
    /// A member, by `X-Server-From`.
    Member(Id),
    /// A remote address without a usable `X-Server-From`.
    Address(IpAddr),
}

/// The requests in flight per [`Origin`], shared by every worker of one
/// receiver. Only origins with a request in flight are kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    counts: Arc<Mutex<HashMap<Origin, usize>>>,
}

impl InFlight {
    /// Counts a request from `origin`, unless it already has `cap` in
    /// flight; the slot is given back when dropped.
    pub(crate) fn enter(&self, origin: Origin, cap: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(origin).or_insert(0);
        if *count >= cap {
            if *count == 0 {
                counts.remove(&origin);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            in_flight: self.clone(),
            origin,
        })
    }

    fn leave(&self, origin: Origin) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&origin) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&origin);
            }
        }
    }
}

/// One request's place in [`InFlight`].
#[derive(Debug)]
pub(crate) struct Slot {
    in_flight: InFlight,
    origin: Origin,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.leave(self.origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_origin_has_its_own_cap_and_slots_come_back() {
        let in_flight = InFlight::default();
        let a = Origin::Member(Id(1));
        let b = Origin::Address(IpAddr::from([127, 0, 0, 1]));
        let first = in_flight.enter(a, 2).unwrap();
        let _second = in_flight.enter(a, 2).unwrap();
        assert!(in_flight.enter(a, 2).is_none());
        let _other = in_flight.enter(b, 2).unwrap();
        drop(first);
        assert!(in_flight.enter(a, 2).is_some());
    }

    #[test]
    fn a_cap_of_zero_refuses_and_keeps_nothing() {
        let in_flight = InFlight::default();
        assert!(in_flight.enter(Origin::Member(Id(1)), 0).is_none());
        assert!(in_flight.counts.lock().unwrap().is_empty());
    }
}

//! The pipeline's queue and its dispatch policy, with no I/O: which
//! message goes to which sender next.
//!
//! - At most `buffer` messages wait beside the ones in flight, so with 4
//!   senders and a buffer of 64, 68 are accepted while the peer blocks
//!   (etcd's `connPerPipeline + pipelineBufSize`).
//! - Work goes round-robin to idle senders: the next idle sender after the
//!   one used last. A busy sender never has messages waiting behind it.
//! - Snapshot lane: at most `senders - 1` senders carry a snapshot at
//!   once, so votes and heartbeats always find a free sender. A waiting
//!   snapshot never blocks a waiting heartbeat behind it.

use std::collections::VecDeque;

/// What the dispatcher needs to know of a message.
pub(crate) trait Lane {
    /// Whether the message is a snapshot, which the snapshot lane limits.
    fn is_snapshot(&self) -> bool;
}

/// The queue, the senders' slots and the round-robin cursor.
#[derive(Debug)]
pub(crate) struct Dispatch<T> {
    queue: VecDeque<T>,
    buffer: usize,
    slots: Vec<Option<T>>,
    last: usize,
    snapshot_limit: usize,
}

impl<T: Lane> Dispatch<T> {
    /// A dispatcher for `senders` senders and a queue of `buffer`. With a
    /// single sender the snapshot lane allows one snapshot, or snapshots
    /// could never be sent.
    pub(crate) fn new(senders: usize, buffer: usize) -> Self {
        Dispatch {
            queue: VecDeque::with_capacity(buffer),
            buffer,
            slots: (0..senders).map(|_| None).collect(),
            last: senders.saturating_sub(1),
            snapshot_limit: senders.saturating_sub(1).max(1),
        }
    }

    /// Whether the queue is full, so that [`offer`](Self::offer) would
    /// hand the next message back.
    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= self.buffer
    }

    /// Queues `item`, or hands it back when the queue is full.
    pub(crate) fn offer(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        self.queue.push_back(item);
        Ok(())
    }

    /// Moves the next message that may go into the next idle sender's slot
    /// and returns that sender's index, or `None` when nothing can move.
    pub(crate) fn assign(&mut self) -> Option<usize> {
        let sender = self.next_idle()?;
        let position = self.next_sendable()?;
        let item = self.queue.remove(position)?;
        self.slots[sender] = Some(item);
        self.last = sender;
        Some(sender)
    }

    /// The message `sender` is carrying.
    pub(crate) fn slot_mut(&mut self, sender: usize) -> Option<&mut T> {
        self.slots.get_mut(sender)?.as_mut()
    }

    /// Frees `sender` and returns the message it carried. Each message is
    /// returned once: a second call gives `None`.
    pub(crate) fn finish(&mut self, sender: usize) -> Option<T> {
        self.slots.get_mut(sender)?.take()
    }

    /// Takes every waiting message out of the queue.
    pub(crate) fn drain_queue(&mut self) -> Vec<T> {
        self.queue.drain(..).collect()
    }

    /// Messages waiting.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages being carried by a sender.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn next_idle(&self) -> Option<usize> {
        let n = self.slots.len();
        (1..=n)
            .map(|step| (self.last + step) % n)
            .find(|&i| self.slots[i].is_none())
    }

    fn next_sendable(&self) -> Option<usize> {
        let snapshot_allowed = self.snapshots_in_flight() < self.snapshot_limit;
        self.queue
            .iter()
            .position(|item| snapshot_allowed || !item.is_snapshot())
    }

    fn snapshots_in_flight(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|item| item.is_snapshot())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(u32, bool);

    impl Lane for Item {
        fn is_snapshot(&self) -> bool {
            self.1
        }
    }

    fn msg(n: u32) -> Item {
        Item(n, false)
    }

    fn snap(n: u32) -> Item {
        Item(n, true)
    }

    #[test]
    fn accepts_senders_plus_buffer_while_blocked() {
        let mut d = Dispatch::new(4, 64);
        let mut accepted = 0;
        for n in 0..100 {
            if d.offer(msg(n)).is_ok() {
                accepted += 1;
            }
            while d.assign().is_some() {}
        }
        assert_eq!(accepted, 68);
        assert_eq!((d.in_flight(), d.queued()), (4, 64));
    }

    #[test]
    fn gives_work_round_robin_to_idle_senders() {
        let mut d = Dispatch::new(4, 64);
        let mut order = Vec::new();
        for n in 0..8 {
            d.offer(msg(n)).unwrap();
            let s = d.assign().unwrap();
            order.push(s);
            assert_eq!(d.finish(s), Some(msg(n)));
        }
        assert_eq!(order, [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn skips_busy_senders() {
        let mut d = Dispatch::new(3, 64);
        for n in 0..3 {
            d.offer(msg(n)).unwrap();
        }
        assert_eq!(
            [d.assign(), d.assign(), d.assign()],
            [Some(0), Some(1), Some(2)]
        );
        d.finish(1);
        d.offer(msg(9)).unwrap();
        assert_eq!(d.assign(), Some(1));
        assert_eq!(d.assign(), None);
    }

    #[test]
    fn snapshot_lane_keeps_a_sender_for_heartbeats() {
        let mut d = Dispatch::new(4, 64);
        for n in 0..5 {
            d.offer(snap(n)).unwrap();
        }
        d.offer(msg(100)).unwrap();
        let mut carried = Vec::new();
        while let Some(s) = d.assign() {
            carried.push(d.slot_mut(s).unwrap().0);
        }
        assert_eq!(
            carried,
            [0, 1, 2, 100],
            "the heartbeat passes the waiting snapshots"
        );
        assert_eq!(d.queued(), 2);
    }

    #[test]
    fn single_sender_still_sends_snapshots() {
        let mut d = Dispatch::new(1, 4);
        d.offer(snap(1)).unwrap();
        assert_eq!(d.assign(), Some(0));
    }

    #[test]
    fn finish_returns_each_message_once() {
        let mut d = Dispatch::new(2, 2);
        d.offer(msg(1)).unwrap();
        let s = d.assign().unwrap();
        assert_eq!(d.finish(s), Some(msg(1)));
        assert_eq!(d.finish(s), None);
        assert_eq!(d.finish(99), None);
    }

    #[test]
    fn drain_empties_the_queue() {
        let mut d = Dispatch::new(1, 4);
        for n in 0..3 {
            d.offer(msg(n)).unwrap();
        }
        d.assign();
        assert_eq!(d.drain_queue(), vec![msg(1), msg(2)]);
        assert_eq!(d.queued(), 0);
        assert_eq!(d.in_flight(), 1);
    }
}

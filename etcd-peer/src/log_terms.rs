//! The stand-in's raft log, kept as the terms of its entries: pure, no I/O.

use rafthttp_pipeline::raftpb::{Entry, SnapshotMetadata};

/// The stand-in's raft log without its entries: where each term begins,
/// which is all raft's `matchTerm` and `findConflict` need. Terms never
/// decrease along a raft log, so this holds one pair per term, not per
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTerms {
    /// The index and term the log starts after: `(0, 0)` at bootstrap, the
    /// snapshot's after a restore.
    base: (u64, u64),
    /// `(first index, term)` of each run of one term after `base`, in
    /// order.
    runs: Vec<(u64, u64)>,
    last: u64,
    commit: u64,
}

impl LogTerms {
    /// The log raft's `StartNode` writes for a new cluster: one committed
    /// `ConfChange` entry per initial member, all at term 1.
    pub fn bootstrap(members: u64) -> LogTerms {
        LogTerms {
            base: (0, 0),
            runs: if members > 0 {
                vec![(1, 1)]
            } else {
                Vec::new()
            },
            last: members,
            commit: members,
        }
    }

    /// The index of the last entry.
    pub fn last_index(&self) -> u64 {
        self.last
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last).unwrap_or(0)
    }

    /// The highest index known committed.
    pub fn committed(&self) -> u64 {
        self.commit
    }

    /// The term of the entry at `index`; `None` past the end or before the
    /// snapshot (compacted).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.base.0 {
            return Some(self.base.1);
        }
        if index < self.base.0 || index > self.last {
            return None;
        }
        self.runs
            .iter()
            .rev()
            .find(|(start, _)| *start <= index)
            .map(|&(_, term)| term)
    }

    /// raft's `maybeAppend`: if the entry at `index` has `log_term`, writes
    /// `entries` after it, replacing a conflicting tail, and moves the
    /// commit up to `commit` (at most the last new entry). Returns the last
    /// new index, or `None` when the append does not fit. The entries are
    /// taken as `index + 1, index + 2, ...`, as a correct leader numbers
    /// them. A conflict at or below the commit, which raft answers with a
    /// panic, is refused instead.
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        commit: u64,
        entries: &[Entry],
    ) -> Option<u64> {
        if self.term(index) != Some(log_term) {
            return None;
        }
        let positioned = entries
            .iter()
            .enumerate()
            .map(|(k, e)| (index + 1 + k as u64, e.term));
        let new_last = index + entries.len() as u64;
        let conflict = positioned
            .clone()
            .find(|&(at, term)| self.term(at) != Some(term));
        if let Some((from, _)) = conflict {
            if from <= self.commit {
                return None;
            }
            self.last = from - 1;
            let last = self.last;
            self.runs.retain(|&(start, _)| start <= last);
            for (at, term) in positioned.skip_while(|&(at, _)| at < from) {
                if self.runs.last().map(|&(_, t)| t) != Some(term) {
                    self.runs.push((at, term));
                }
                self.last = at;
            }
        }
        self.commit_to(commit.min(new_last));
        Some(new_last)
    }

    /// raft's `commitTo`, clamped to the last index instead of panicking.
    pub fn commit_to(&mut self, commit: u64) {
        self.commit = self.commit.max(commit.min(self.last));
    }

    /// raft's `restore`: replaces the log with the snapshot unless it is
    /// already committed. A snapshot the log already holds only moves the
    /// commit. Returns whether the log was replaced.
    pub fn restore(&mut self, snapshot: &SnapshotMetadata) -> bool {
        if snapshot.index <= self.commit {
            return false;
        }
        if self.term(snapshot.index) == Some(snapshot.term) {
            self.commit_to(snapshot.index);
            return false;
        }
        self.base = (snapshot.index, snapshot.term);
        self.runs.clear();
        self.last = snapshot.index;
        self.commit = snapshot.index;
        true
    }
}

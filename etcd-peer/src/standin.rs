//! The stand-in's raft logic, [`StandIn::step`]: the answers a raft
//! follower gives etcd. Pure, no I/O.

use std::collections::BTreeSet;

use bytes::Bytes;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::Id;

use crate::log_terms::LogTerms;

/// The context raft puts on a leadership-transfer vote (`campaignTransfer`,
/// `raft/raft.go`): it makes the leader grant it despite its lease.
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// What the stand-in remembers: just enough raft state to answer etcd.
#[derive(Debug, Clone)]
pub struct StandIn {
    id: u64,
    peers: Vec<u64>,
    ack_appends: bool,
    /// The highest term seen.
    term: u64,
    /// Whom we voted for, and in which term.
    vote: Option<(u64, u64)>,
    /// The terms of our log.
    log: LogTerms,
    /// Our leadership-transfer campaign: its term, the grants so far, and
    /// whether it was won.
    campaign: Option<(u64, BTreeSet<u64>, bool)>,
}

impl StandIn {
    /// A stand-in with id `id` in a new cluster with `peers` (the others),
    /// its log holding the bootstrap entries. Without `ack_appends` it never
    /// answers `MsgApp`.
    pub fn new(id: Id, peers: &[Id], ack_appends: bool) -> StandIn {
        StandIn {
            id: id.0,
            peers: peers.iter().map(|p| p.0).collect(),
            ack_appends,
            term: 0,
            vote: None,
            log: LogTerms::bootstrap(peers.len() as u64 + 1),
            campaign: None,
        }
    }

    /// The log's terms, last index and commit, for the tests.
    #[cfg(test)]
    pub fn log(&self) -> &LogTerms {
        &self.log
    }

    /// The messages to send in answer to `m`.
    pub fn step(&mut self, m: &Message) -> Vec<Message> {
        let Some(kind) = m.msg_type() else {
            return Vec::new();
        };
        match kind {
            MessageType::MsgPreVote => {
                vec![self.reply(m, MessageType::MsgPreVoteResp, m.term)]
            }
            MessageType::MsgVote => self.on_vote(m),
            MessageType::MsgApp => {
                self.see_term(m.term);
                let answer = self.on_append(m);
                if self.ack_appends {
                    vec![answer]
                } else {
                    Vec::new()
                }
            }
            MessageType::MsgSnap => {
                self.see_term(m.term);
                // raft's handleSnapshot: the new last index once restored,
                // the commit when the snapshot was ignored.
                let index = if self.log.restore(&m.snapshot.metadata) {
                    self.log.last_index()
                } else {
                    self.log.committed()
                };
                if !self.ack_appends {
                    return Vec::new();
                }
                let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
                resp.index = index;
                vec![resp]
            }
            MessageType::MsgHeartbeat => {
                self.see_term(m.term);
                self.log.commit_to(m.commit);
                let mut resp = self.reply(m, MessageType::MsgHeartbeatResp, m.term);
                resp.context = m.context.clone();
                vec![resp]
            }
            MessageType::MsgTimeoutNow => self.campaign_transfer(m.term),
            MessageType::MsgVoteResp => self.on_vote_resp(m),
            _ => Vec::new(),
        }
    }

    fn see_term(&mut self, term: u64) {
        self.term = self.term.max(term);
    }

    /// raft's `handleAppendEntries`: below the commit, the commit; an
    /// append that fits, its last index; otherwise a rejection with our last
    /// index as the hint.
    fn on_append(&mut self, m: &Message) -> Message {
        let mut resp = self.reply(m, MessageType::MsgAppResp, m.term);
        if m.index < self.log.committed() {
            resp.index = self.log.committed();
            return resp;
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, &m.entries)
        {
            Some(last) => resp.index = last,
            None => {
                resp.index = m.index;
                resp.reject = true;
                resp.reject_hint = self.log.last_index();
            }
        }
        resp
    }

    /// Grants a vote unless we already voted for someone else in that term
    /// or a later one, so that two candidates can never both win a term
    /// with our vote. (etcd is the only member that campaigns on its own,
    /// and its log is never behind ours, so the log check is left out.)
    fn on_vote(&mut self, m: &Message) -> Vec<Message> {
        let grant = match self.vote {
            Some((term, who)) if term == m.term => who == m.from,
            Some((term, _)) => term < m.term,
            None => true,
        };
        self.see_term(m.term);
        if grant {
            self.vote = Some((m.term, m.from));
            vec![self.reply(m, MessageType::MsgVoteResp, m.term)]
        } else {
            let mut resp = self.reply(m, MessageType::MsgVoteResp, self.term);
            resp.reject = true;
            vec![resp]
        }
    }

    /// Raft's transfer campaign: a vote request at the next term with our
    /// last entry and the `CampaignTransfer` context.
    fn campaign_transfer(&mut self, leader_term: u64) -> Vec<Message> {
        let term = self.term.max(leader_term) + 1;
        self.term = term;
        self.vote = Some((term, self.id));
        self.campaign = Some((term, BTreeSet::from([self.id]), false));
        let mut out: Vec<Message> = self
            .peers
            .iter()
            .map(|&to| Message {
                r#type: MessageType::MsgVote as i32,
                to,
                from: self.id,
                term,
                index: self.log.last_index(),
                log_term: self.log.last_term(),
                context: Some(Bytes::from_static(CAMPAIGN_TRANSFER)),
                ..Message::default()
            })
            .collect();
        out.extend(self.maybe_won());
        out
    }

    fn on_vote_resp(&mut self, m: &Message) -> Vec<Message> {
        match &mut self.campaign {
            Some((term, granted, _)) if *term == m.term && !m.reject => {
                granted.insert(m.from);
            }
            _ => return Vec::new(),
        }
        self.maybe_won()
    }

    /// Once a majority granted the campaign: one heartbeat to each peer,
    /// with commit 0, since an etcd follower panics on a commit beyond its
    /// log and we do not track the followers' logs.
    fn maybe_won(&mut self) -> Vec<Message> {
        let members = self.peers.len() + 1;
        let quorum = members / 2 + 1;
        let Some((term, granted, won)) = &mut self.campaign else {
            return Vec::new();
        };
        if *won || granted.len() < quorum {
            return Vec::new();
        }
        *won = true;
        let term = *term;
        self.peers
            .iter()
            .map(|&to| Message {
                r#type: MessageType::MsgHeartbeat as i32,
                to,
                from: self.id,
                term,
                commit: 0,
                ..Message::default()
            })
            .collect()
    }

    fn reply(&self, m: &Message, kind: MessageType, term: u64) -> Message {
        Message {
            r#type: kind as i32,
            to: m.from,
            from: self.id,
            term,
            ..Message::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rafthttp_pipeline::raftpb::{Entry, Message, MessageType, Snapshot, SnapshotMetadata};
    use rafthttp_pipeline::Id;

    use super::{StandIn, CAMPAIGN_TRANSFER};

    const ME: u64 = 0xb;
    const ETCD: u64 = 0xa;

    fn msg(kind: MessageType, term: u64) -> Message {
        Message {
            r#type: kind as i32,
            to: ME,
            from: ETCD,
            term,
            ..Message::default()
        }
    }

    fn standin() -> StandIn {
        StandIn::new(Id(ME), &[Id(ETCD)], true)
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    #[test]
    fn grants_vote_and_prevote_with_the_matching_type_at_the_message_term() {
        let mut s = standin();
        for (ask, answer) in [
            (MessageType::MsgPreVote, MessageType::MsgPreVoteResp),
            (MessageType::MsgVote, MessageType::MsgVoteResp),
        ] {
            let out = s.step(&msg(ask, 7));
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].msg_type(), Some(answer));
            assert_eq!((out[0].to, out[0].from, out[0].term), (ETCD, ME, 7));
            assert!(!out[0].reject);
        }
    }

    #[test]
    fn votes_once_per_term() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc)], true);
        assert!(!s.step(&msg(MessageType::MsgVote, 3))[0].reject);
        assert!(
            !s.step(&msg(MessageType::MsgVote, 3))[0].reject,
            "same candidate again"
        );
        let mut other = msg(MessageType::MsgVote, 3);
        other.from = 0xc;
        let out = s.step(&other);
        assert!(out[0].reject, "second candidate in the same term");
        assert_eq!(out[0].to, 0xc);
        other.term = 4;
        assert!(!s.step(&other)[0].reject, "a later term is a new vote");
    }

    #[test]
    fn acks_append_with_index_plus_entries() {
        let mut s = standin();
        let mut app = msg(MessageType::MsgApp, 2);
        app.index = 2;
        app.log_term = 1;
        app.entries = vec![entry(3, 2), entry(4, 2)];
        let out = s.step(&app);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        assert_eq!((out[0].index, out[0].term, out[0].to), (4, 2, ETCD));
        assert!(!out[0].reject);

        let mut probe = msg(MessageType::MsgApp, 2);
        probe.index = 4;
        probe.log_term = 2;
        assert_eq!(
            s.step(&probe)[0].index,
            4,
            "an empty append acks its own index"
        );
    }

    #[test]
    fn no_append_ack_withholds_only_append_responses() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD)], false);
        let mut app = msg(MessageType::MsgApp, 2);
        app.entries = vec![entry(1, 2)];
        assert!(s.step(&app).is_empty());
        assert_eq!(s.step(&msg(MessageType::MsgVote, 2)).len(), 1);
        assert_eq!(s.step(&msg(MessageType::MsgHeartbeat, 2)).len(), 1);
    }

    #[test]
    fn heartbeat_response_echoes_context() {
        let mut s = standin();
        let mut hb = msg(MessageType::MsgHeartbeat, 5);
        hb.commit = 9;
        hb.context = Some(Bytes::from_static(b"read-index-ctx"));
        let out = s.step(&hb);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgHeartbeatResp));
        assert_eq!(out[0].term, 5);
        assert_eq!(out[0].context.as_deref(), Some(&b"read-index-ctx"[..]));
        assert_eq!(s.step(&msg(MessageType::MsgHeartbeat, 5))[0].context, None);
    }

    #[test]
    fn timeout_now_campaigns_then_sends_one_heartbeat_with_commit_zero() {
        let mut s = standin();
        let mut app = msg(MessageType::MsgApp, 4);
        app.index = 2;
        app.log_term = 1;
        app.entries = vec![entry(3, 3), entry(4, 4)];
        assert!(!s.step(&app)[0].reject);

        let out = s.step(&msg(MessageType::MsgTimeoutNow, 4));
        assert_eq!(out.len(), 1);
        let vote = &out[0];
        assert_eq!(vote.msg_type(), Some(MessageType::MsgVote));
        assert_eq!((vote.to, vote.from, vote.term), (ETCD, ME, 5));
        assert_eq!((vote.index, vote.log_term), (4, 4), "last entry");
        assert_eq!(vote.context.as_deref(), Some(CAMPAIGN_TRANSFER));

        let mut rejected = msg(MessageType::MsgVoteResp, 5);
        rejected.reject = true;
        assert!(s.step(&rejected).is_empty());
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 4)).is_empty(),
            "stale term"
        );

        let out = s.step(&msg(MessageType::MsgVoteResp, 5));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgHeartbeat));
        assert_eq!((out[0].to, out[0].term, out[0].commit), (ETCD, 5, 0));
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 5)).is_empty(),
            "only one heartbeat"
        );
    }

    #[test]
    fn transfer_needs_a_majority_in_a_larger_cluster() {
        let mut s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc), Id(0xd), Id(0xe)], true);
        assert_eq!(s.step(&msg(MessageType::MsgTimeoutNow, 1)).len(), 4);
        assert!(
            s.step(&msg(MessageType::MsgVoteResp, 2)).is_empty(),
            "2 of 5"
        );
        let mut second = msg(MessageType::MsgVoteResp, 2);
        second.from = 0xc;
        assert_eq!(s.step(&second).len(), 4, "3 of 5: heartbeat to every peer");
    }

    #[test]
    fn snapshot_is_acked_at_its_index() {
        let mut s = standin();
        let mut snap = msg(MessageType::MsgSnap, 3);
        snap.snapshot = Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                index: 42,
                term: 3,
                ..SnapshotMetadata::default()
            },
        };
        let out = s.step(&snap);
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        assert_eq!(out[0].index, 42);
    }

    fn append(index: u64, log_term: u64, entries: &[(u64, u64)], commit: u64) -> Message {
        let mut m = msg(MessageType::MsgApp, 2);
        m.index = index;
        m.log_term = log_term;
        m.commit = commit;
        m.entries = entries.iter().map(|&(i, t)| entry(i, t)).collect();
        m
    }

    fn snapshot(index: u64, term: u64) -> Message {
        let mut snap = msg(MessageType::MsgSnap, term);
        snap.snapshot = Snapshot {
            data: None,
            metadata: SnapshotMetadata {
                index,
                term,
                ..SnapshotMetadata::default()
            },
        };
        snap
    }

    /// `(index, reject, reject_hint)` of the one answer.
    fn answer(s: &mut StandIn, m: &Message) -> (u64, bool, u64) {
        let out = s.step(m);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].msg_type(), Some(MessageType::MsgAppResp));
        (out[0].index, out[0].reject, out[0].reject_hint)
    }

    #[test]
    fn starts_with_the_bootstrap_entries_of_a_new_cluster() {
        let s = StandIn::new(Id(ME), &[Id(ETCD), Id(0xc)], true);
        assert_eq!(s.log().last_index(), 3, "one ConfChange per member");
        assert_eq!((s.log().last_term(), s.log().committed()), (1, 3));
        assert_eq!(s.log().term(0), Some(0));
        assert_eq!(s.log().term(4), None);
    }

    #[test]
    fn rejects_an_append_beyond_its_log_with_its_last_index_as_hint() {
        let mut s = standin();
        let gap = append(5, 2, &[(6, 2)], 0);
        assert_eq!(answer(&mut s, &gap), (5, true, 2));
        assert_eq!(s.log().last_index(), 2, "nothing written");
    }

    #[test]
    fn rejects_an_append_whose_previous_term_differs() {
        let mut s = standin();
        assert_eq!(answer(&mut s, &append(2, 1, &[(3, 2)], 0)), (3, false, 0));
        assert_eq!(answer(&mut s, &append(3, 5, &[(4, 5)], 0)), (3, true, 3));
    }

    #[test]
    fn out_of_order_appends_are_rejected_then_accepted_once_they_fit() {
        // etcd's four pipeline connections can deliver MsgApps out of order.
        let mut s = standin();
        let first = append(2, 1, &[(3, 2), (4, 2)], 0);
        let second = append(4, 2, &[(5, 2)], 0);
        assert_eq!(answer(&mut s, &second), (4, true, 2));
        assert_eq!(answer(&mut s, &first), (4, false, 0));
        assert_eq!(
            answer(&mut s, &second),
            (5, false, 0),
            "the leader's resend"
        );
        assert_eq!(
            answer(&mut s, &first),
            (4, false, 0),
            "a stale duplicate matches and changes nothing"
        );
        assert_eq!(s.log().last_index(), 5);
    }

    #[test]
    fn an_append_below_the_commit_is_answered_with_the_commit() {
        let mut s = standin();
        answer(&mut s, &append(2, 1, &[(3, 2), (4, 2), (5, 2)], 4));
        assert_eq!(s.log().committed(), 4);
        assert_eq!(answer(&mut s, &append(3, 2, &[(4, 2)], 4)), (4, false, 0));
    }

    #[test]
    fn a_conflicting_tail_is_replaced() {
        let mut s = standin();
        answer(&mut s, &append(2, 1, &[(3, 2), (4, 2), (5, 2)], 2));
        // A new leader at term 3 overwrites 4 and 5.
        assert_eq!(answer(&mut s, &append(3, 2, &[(4, 3)], 2)), (4, false, 0));
        assert_eq!((s.log().last_index(), s.log().last_term()), (4, 3));
        assert_eq!(s.log().term(3), Some(2));
        // A conflict at or below the commit is refused, not a panic.
        answer(&mut s, &append(4, 3, &[], 4));
        assert_eq!(answer(&mut s, &append(2, 1, &[(3, 9)], 4)), (4, false, 0));
        let mut t = s.log().clone();
        assert_eq!(t.maybe_append(4, 3, 4, &[]), Some(4));
        assert_eq!(t.maybe_append(3, 2, 4, &[entry(4, 9)]), None);
    }

    #[test]
    fn a_snapshot_replaces_the_log_and_appends_continue_after_it() {
        let mut s = standin();
        assert_eq!(answer(&mut s, &snapshot(9_950, 2)), (9_950, false, 0));
        assert_eq!((s.log().last_index(), s.log().committed()), (9_950, 9_950));
        // What etcd sends next: the entries after the snapshot.
        let next = append(9_950, 2, &[(9_951, 2), (9_952, 2)], 9_952);
        assert_eq!(answer(&mut s, &next), (9_952, false, 0));
        // An append from before the snapshot: answered with the commit.
        assert_eq!(
            answer(&mut s, &append(3, 1, &[(4, 2)], 0)),
            (9_952, false, 0)
        );
        // A stale snapshot is ignored and answered with the commit.
        assert_eq!(answer(&mut s, &snapshot(100, 2)), (9_952, false, 0));
        assert_eq!(s.log().last_index(), 9_952);
    }

    #[test]
    fn heartbeats_move_the_commit_no_further_than_the_log() {
        let mut s = standin();
        let mut hb = msg(MessageType::MsgHeartbeat, 2);
        hb.commit = 1_000;
        s.step(&hb);
        assert_eq!(s.log().committed(), 2);
    }
}

//! The stand-in's raft logic, [`StandIn::step`]: the answers a raft
//! follower gives etcd. Pure, no I/O.

use std::collections::BTreeSet;

use bytes::Bytes;
use rafthttp_pipeline::raftpb::{Message, MessageType};
use rafthttp_pipeline::Id;

use super::log_terms::LogTerms;

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

    /// The log's terms, last index and commit.
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

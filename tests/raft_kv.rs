//! A three-node raft-rs key-value cluster (`examples/raft_kv`) over the
//! transport: elect, 2 000 puts applied on every node, a follower replaced
//! by an empty member that catches up by streamed snapshot, the leader
//! stopped and a new one elected, the three maps equal. Every step is
//! bounded; the scenario fails rather than hangs.

#[path = "../examples/raft_kv/api.rs"]
mod api;
#[path = "../examples/raft_kv/glue.rs"]
mod glue;
#[path = "../examples/raft_kv/kv.rs"]
mod kv;
#[path = "../examples/raft_kv/node.rs"]
mod node;
#[path = "../examples/raft_kv/scenario.rs"]
mod scenario;

#[test]
fn a_raft_rs_cluster_replaces_a_member_and_survives_its_leader() {
    let outcome = scenario::run().unwrap_or_else(|e| panic!("{e}"));
    println!("{}", outcome.result_line());
    assert_eq!(outcome.keys, scenario::PUTS);
    assert!(
        outcome.snapshots_received >= 1,
        "caught up by streamed snapshot"
    );
}

//! Fuzz target: an arbitrary `raftpb.Message` encoding, decoded and
//! re-encoded.

fn main() {
    #[cfg(fuzzing)]
    afl::fuzz!(|data: &[u8]| rafthttp_fuzz::raftpb(data));
    #[cfg(not(fuzzing))]
    rafthttp_fuzz::replay_args(rafthttp_fuzz::raftpb);
}

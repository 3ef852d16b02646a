//! Fuzz target: an arbitrary body for a well-formed `POST /raft/snapshot`,
//! reaching the snapshot frame decoder.

fn main() {
    // A panic aborts the process (a crash for AFL++), so no state outlives it.
    let target = std::panic::AssertUnwindSafe(rafthttp_fuzz::Target::new());
    #[cfg(fuzzing)]
    afl::fuzz!(|data: &[u8]| {
        target.snapshot(data);
    });
    #[cfg(not(fuzzing))]
    rafthttp_fuzz::replay_args(|data| target.snapshot(data));
}

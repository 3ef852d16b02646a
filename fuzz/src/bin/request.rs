//! Fuzz target: one arbitrary request through the receiver's real actix-web
//! service (see `Request::parse` for how the bytes are read).

fn main() {
    // A panic aborts the process (a crash for AFL++), so no state outlives it.
    let target = std::panic::AssertUnwindSafe(rafthttp_fuzz::Target::new());
    #[cfg(fuzzing)]
    afl::fuzz!(|data: &[u8]| {
        target.request(data);
    });
    #[cfg(not(fuzzing))]
    rafthttp_fuzz::replay_args(|data| target.request(data));
}

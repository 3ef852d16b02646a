//! What the real-etcd tests share: a real etcd ([`etcd`]) and the stand-in
//! member, this crate's `etcd-peer` binary ([`peer`]), each a child process
//! on ephemeral 127.0.0.1 ports, killed by PID when its test ends; and
//! what etcd's log says of its streams ([`streams`]).

pub mod etcd;
pub mod peer;
pub mod streams;

//! `TCP_NODELAY` on both ends of a pipeline connection, read back from the
//! real loopback sockets: the senders' client sets it on every connection it
//! opens, and `nodelay::on_connect` on every connection the receiver's
//! server accepts. Without it, the last few bytes of a large body wait for
//! the peer's delayed ACK.

mod support;

use std::net::SocketAddr;
use std::sync::mpsc;

use actix::prelude::*;
use actix_web::rt::net::TcpStream;
use rafthttp_pipeline::receiver::ReceiverConfig;
use rafthttp_pipeline::{nodelay, Envelope, LocalMember, PipelineActor, PipelineConfig};
use support::messages::heartbeat;
use support::{ids, member, server, wait_stats, Recording};

/// What the server saw of one accepted connection, after its hooks ran:
/// the client's address and the option on the server's socket.
type Accepted = (SocketAddr, bool);

/// A receiver (member 2) on an ephemeral loopback port, its raft taking
/// every message; with `set`, its server runs `nodelay::on_connect`. Every
/// accepted connection is reported on the returned channel.
fn start_receiver(set: bool) -> (String, mpsc::Receiver<Accepted>) {
    let (_, peer, cluster) = ids();
    let config = ReceiverConfig::new(
        &LocalMember::new(peer, cluster),
        Recording::start().inbound(),
    );
    let (accepted, seen) = mpsc::channel();
    let hook = move |connection: &dyn std::any::Any, extensions: &mut _| {
        if set {
            nodelay::on_connect(connection, extensions);
        }
        let stream = connection
            .downcast_ref::<TcpStream>()
            .expect("a plain TCP connection");
        let seen = (
            stream.peer_addr().expect("peer address"),
            stream.nodelay().expect("TCP_NODELAY readable"),
        );
        accepted.send(seen).expect("the test listens");
    };
    let (addr, _) = server::serve(member::routes(config), 0, hook);
    (format!("http://{addr}"), seen)
}

/// Sends a heartbeat to `url` through a real pipeline and waits (bounded)
/// until it is delivered. Returns the pipeline, whose sender keeps its
/// connection open.
async fn post_heartbeat(url: &str) -> Addr<PipelineActor> {
    let (local, peer, cluster) = ids();
    let config = PipelineConfig::new(
        &LocalMember::new(local, cluster),
        peer,
        vec![url.to_owned()],
    );
    let pipeline =
        PipelineActor::start(config, Recording::start().recipients()).expect("valid configuration");
    pipeline
        .send(Envelope(heartbeat()))
        .await
        .expect("pipeline running")
        .expect("queued");
    let stats = wait_stats(&pipeline, "the heartbeat's outcome", |s| {
        s.delivered + s.reported() == 1
    })
    .await;
    assert_eq!(stats.delivered, 1, "the heartbeat is delivered: {stats:?}");
    pipeline
}

/// `TCP_NODELAY` on this process's TCP socket bound to `local`, read with
/// `getsockopt`; `None` when no open socket has that address.
#[cfg(target_os = "linux")]
fn nodelay_of_socket_at(local: SocketAddr) -> Option<bool> {
    let fds = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    fds.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .find(|&fd| local_addr(fd) == Some(local))
        .map(|fd| {
            let mut on: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `on` and `len` are valid for writes of the sizes given.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&mut on as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
            on != 0
        })
}

/// The IPv4 address `fd` is bound to, if it is an IPv4 socket.
#[cfg(target_os = "linux")]
fn local_addr(fd: libc::c_int) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_in is valid; getsockname writes at most
    // `len` bytes into it.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let rc =
        unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len) };
    if rc != 0 || i32::from(addr.sin_family) != libc::AF_INET {
        return None;
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
}

#[cfg(target_os = "linux")]
#[actix_rt::test]
async fn a_pipeline_post_has_tcp_nodelay_on_both_ends() {
    let (url, accepted) = start_receiver(true);
    let pipeline = post_heartbeat(&url).await;
    // The server's hooks run before the request is read, so the answer
    // comes after the report.
    let (client_addr, server_nodelay) = accepted.try_recv().expect("one connection");
    assert!(server_nodelay, "the accepted socket has TCP_NODELAY");
    assert_eq!(
        nodelay_of_socket_at(client_addr),
        Some(true),
        "the sender's socket {client_addr} has TCP_NODELAY"
    );
    assert!(accepted.try_recv().is_err(), "one connection only");
    drop(pipeline);
}

#[actix_rt::test]
async fn without_the_hook_an_accepted_socket_keeps_nagle_on() {
    // The control: the option is off unless the hook sets it, so the test
    // above sees the hook's work, not a default.
    let (url, accepted) = start_receiver(false);
    let _pipeline = post_heartbeat(&url).await;
    let (_, server_nodelay) = accepted.try_recv().expect("one connection");
    assert!(!server_nodelay);
}

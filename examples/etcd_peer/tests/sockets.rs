//! Reserved sockets.

use std::io;
use std::os::fd::AsRawFd;

use super::super::sockets::{listen, reserve};

#[test]
fn a_reserved_port_refuses_connections_until_it_listens() {
    let socket = reserve("127.0.0.1:0").unwrap();
    // SAFETY: getsockname on a socket we own, into a live local.
    let port = unsafe {
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::getsockname(
            socket.as_raw_fd(),
            (&mut sin as *mut libc::sockaddr_in).cast(),
            &mut len,
        );
        assert_eq!(rc, 0);
        u16::from_be(sin.sin_port)
    };
    let addr = format!("127.0.0.1:{port}");
    let refused = std::net::TcpStream::connect(&addr).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    let listener = listen(socket).unwrap();
    assert_eq!(listener.local_addr().unwrap().port(), port);
    std::net::TcpStream::connect(&addr).unwrap();
}

//! The listening sockets, and the reserved ones of a member held down.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Binds the addresses the flags listen on.
pub fn bind(addrs: &[String]) -> io::Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            TcpListener::bind(a.as_str()).map_err(|e| io::Error::new(e.kind(), format!("{a}: {e}")))
        })
        .collect()
}

/// A TCP socket bound to `addr` that does not listen yet: connections to
/// it are refused, as to a member that is down, and yet the kernel gives
/// the port neither to an outgoing connection nor to a bind of port 0
/// meanwhile. [`listen`] brings it up. `SO_REUSEADDR` is set, as std's
/// `TcpListener::bind` sets it, so a restart is not refused for the
/// connections still in `TIME_WAIT`.
pub fn reserve(addr: &str) -> io::Result<OwnedFd> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{addr}: {e}"));
    let sa = addr
        .to_socket_addrs()
        .map_err(context)?
        .next()
        .ok_or_else(|| context(io::ErrorKind::AddrNotAvailable.into()))?;
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (domain, len) = match sa {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for
            // any socket address.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (libc::AF_INET, std::mem::size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (libc::AF_INET6, std::mem::size_of::<libc::sockaddr_in6>())
        }
    };
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(context(io::Error::last_os_error()))
        } else {
            Ok(rc)
        }
    };
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at
    // once, so it is closed on every path.
    let fd = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt and bind read the given lengths from live locals.
    unsafe {
        check(libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        check(libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        ))?;
    }
    Ok(fd)
}

/// Starts listening on a socket from [`reserve`].
pub fn listen(socket: OwnedFd) -> io::Result<TcpListener> {
    // SAFETY: listen(2) on a socket we own.
    if unsafe { libc::listen(socket.as_raw_fd(), 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(socket))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::fd::AsRawFd;

    use super::{listen, reserve};

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
}

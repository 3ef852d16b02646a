//! A loopback fault proxy: it sits between a pipeline and a real receiver
//! and, as told, passes traffic through or misbehaves the way a network or
//! a sick peer does. Each accepted connection takes the [`Fault`] in force
//! when it was accepted; [`FaultProxy::set`] drops the connections of the
//! fault before (but those answering errors, which follow the change), so
//! a change applies to every request that follows.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{wait, WAIT};

/// What the proxy does with the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards both ways, untouched.
    Pass,
    /// Listens no more: connecting is refused (a partition; [`Fault::Pass`]
    /// heals it on the same port).
    Refuse,
    /// Reads the request's head, then resets the connection (RST).
    Reset,
    /// Accepts and reads, and never answers.
    Blackhole,
    /// Reads the request's head, answers a status line and half a header,
    /// then stalls.
    HeadersThenStall,
    /// Forwards the request at one byte a second.
    Slow,
    /// Forwards the first `n` bytes of the request, then closes both sides
    /// (a snapshot cut mid-stream).
    CutAfter(usize),
    /// Answers every request itself with this status (a 5xx storm, a 403
    /// "member removed", a 412 "cluster ID mismatch"), reading its body
    /// first.
    Answer(u16),
    /// Forwards request by request, and fails every `n`th request of all
    /// (counted across connections) before it reaches the receiver:
    /// alternately a reset and a 500.
    Flaky(usize),
}

struct State {
    fault: Mutex<Fault>,
    /// Bumped by every [`FaultProxy::set`]: connections of an older
    /// generation end.
    generation: watch::Sender<u64>,
    /// Connections open now (client side).
    live: watch::Sender<usize>,
    /// Connections accepted in all.
    accepted: watch::Sender<usize>,
    /// Requests the proxy answered itself with [`Fault::Answer`].
    answered: watch::Sender<usize>,
    /// Requests seen by [`Fault::Flaky`], and those it failed.
    flaky_seen: AtomicUsize,
    flaky_failed: AtomicUsize,
    upstream: SocketAddr,
    addr: SocketAddr,
}

/// The proxy, listening on an ephemeral loopback port.
#[derive(Clone)]
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://<addr>`, the peer URL a pipeline posts to.
    pub url: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`, passing traffic through.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            fault: Mutex::new(Fault::Pass),
            generation: watch::channel(0).0,
            live: watch::channel(0).0,
            accepted: watch::channel(0).0,
            answered: watch::channel(0).0,
            flaky_seen: AtomicUsize::new(0),
            flaky_failed: AtomicUsize::new(0),
            upstream,
            addr,
        });
        actix_rt::spawn(accept_loop(listener, state.clone()));
        FaultProxy {
            addr,
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Puts `fault` in force and ends every connection accepted under the
    /// fault before, except those of a [`Fault::Answer`]: a peer answering
    /// errors keeps its connections, and they follow the fault request by
    /// request.
    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
        self.state.generation.send_modify(|g| *g += 1);
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        *self.state.live.borrow()
    }

    /// Waits, at most [`WAIT`], until no connection is open.
    pub async fn wait_idle(&self) {
        wait::until(
            &self.state.live.subscribe(),
            WAIT,
            "no open connection",
            |&n| n == 0,
        )
        .await;
    }

    /// Waits, at most [`WAIT`], until at least `n` connections were
    /// accepted in all.
    pub async fn wait_accepted(&self, n: usize) {
        let accepted = self.state.accepted.subscribe();
        wait::until(&accepted, WAIT, "accepted connections", |&a| a >= n).await;
    }

    /// Requests [`Fault::Flaky`] saw, and those it failed.
    pub fn flaky_counts(&self) -> (usize, usize) {
        (
            self.state.flaky_seen.load(Ordering::Relaxed),
            self.state.flaky_failed.load(Ordering::Relaxed),
        )
    }

    /// Waits, at most [`WAIT`], until the proxy answered `n` requests
    /// itself.
    pub async fn wait_answered(&self, n: usize) {
        wait::until(&self.state.answered.subscribe(), WAIT, "answers", |&a| {
            a >= n
        })
        .await;
    }
}

/// Accepts until the fault is [`Fault::Refuse`], then closes the listener
/// and binds the same port again once the fault changes.
async fn accept_loop(mut listener: TcpListener, state: Arc<State>) {
    let mut generation = state.generation.subscribe();
    loop {
        if current(&state) == Fault::Refuse {
            drop(listener);
            while current(&state) == Fault::Refuse {
                if generation.changed().await.is_err() {
                    return;
                }
            }
            listener = TcpListener::bind(state.addr).await.expect("bind again");
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let _ = client.set_nodelay(true);
                actix_rt::spawn(connection(client, state.clone()));
            }
            _ = generation.changed() => {}
        }
    }
}

fn current(state: &State) -> Fault {
    *state.fault.lock().unwrap()
}

/// Counts an open connection for as long as it lives.
struct Live(Arc<State>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

/// Serves one client connection under the fault in force, until the fault
/// changes.
async fn connection(client: TcpStream, state: Arc<State>) {
    state.live.send_modify(|n| *n += 1);
    state.accepted.send_modify(|n| *n += 1);
    let _live = Live(state.clone());
    let mut generation = state.generation.subscribe();
    let fault = current(&state);
    if let Fault::Answer(_) = fault {
        // A peer answering errors keeps its connections: the storm's end
        // is seen request by request.
        return answer(client, &state).await;
    }
    tokio::select! {
        _ = misbehave(fault, client, &state) => {}
        _ = generation.changed() => {}
    }
}

async fn misbehave(fault: Fault, mut client: TcpStream, state: &State) {
    match fault {
        Fault::Pass => {
            if let Ok(mut up) = TcpStream::connect(state.upstream).await {
                let _ = up.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            }
        }
        Fault::Refuse => {}
        Fault::Reset => {
            let _ = read_head(&mut client).await;
            let _ = client.set_zero_linger();
        }
        Fault::Blackhole => drain(&mut client).await,
        Fault::HeadersThenStall => {
            if read_head(&mut client).await.is_some() {
                let _ = client
                    .write_all(b"HTTP/1.1 204 No Content\r\nX-Etcd-")
                    .await;
                drain(&mut client).await;
            }
        }
        Fault::Slow => slow(client, state.upstream).await,
        Fault::CutAfter(n) => cut_after(client, state.upstream, n).await,
        Fault::Answer(_) => answer(client, state).await,
        Fault::Flaky(every) => flaky(client, state, every).await,
    }
}

/// Reads and discards until the peer closes.
async fn drain(client: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Reads up to the end of a request head; returns the head and the bytes
/// read after it.
async fn read_head(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Some((head, buf[end + 4..].to_vec()));
        }
        match client.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Forwards the client's bytes one a second, and the answer as it comes.
/// The client's bytes are read as they arrive, so that its closing ends the
/// connection at once, however much is still to drip.
async fn slow(client: TcpStream, upstream: SocketAddr) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut up_rx, mut up_tx) = up.into_split();
    let (bytes_tx, mut bytes_rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            buf[..n].iter().for_each(|&b| {
                let _ = bytes_tx.send(b);
            });
        }
    };
    let drip = async {
        while let Some(byte) = bytes_rx.recv().await {
            if up_tx.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let back = tokio::io::copy(&mut up_rx, &mut client_tx);
    tokio::select! {
        _ = read => {}
        _ = drip => {}
        _ = back => {}
    }
}

/// Forwards the first `n` bytes of the request, then closes both sides.
async fn cut_after(mut client: TcpStream, upstream: SocketAddr, n: usize) {
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    let mut left = n;
    let mut buf = [0u8; 4096];
    while left > 0 {
        let want = left.min(buf.len());
        match client.read(&mut buf[..want]).await {
            Ok(got) if got > 0 => {
                if up.write_all(&buf[..got]).await.is_err() {
                    return;
                }
                left -= got;
            }
            _ => return,
        }
    }
    let _ = client.set_zero_linger();
    let _ = up.set_zero_linger();
}

/// Answers each request on the connection with the status of the
/// [`Fault::Answer`] in force, after reading its body (by `Content-Length`,
/// or chunks up to the last one). Once the fault is [`Fault::Pass`] again,
/// forwards the request and everything after it; any other fault closes
/// the connection.
async fn answer(mut client: TcpStream, state: &State) {
    while let Some((head, mut rest)) = read_head(&mut client).await {
        if !read_body(&mut client, &head, &mut rest).await {
            return;
        }
        match current(state) {
            Fault::Answer(status) => {
                if client.write_all(response(status).as_bytes()).await.is_err() {
                    return;
                }
                state.answered.send_modify(|a| *a += 1);
            }
            Fault::Pass => return forward(client, state.upstream, head, rest).await,
            _ => return,
        }
    }
}

/// Forwards a request already read (`head`, then `body`), and then the
/// connection both ways.
async fn forward(mut client: TcpStream, upstream: SocketAddr, head: String, body: Vec<u8>) {
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    if up.write_all(head.as_bytes()).await.is_ok() && up.write_all(&body).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
    }
}

/// Forwards request by request over one upstream connection, failing
/// every `every`th request of all before it is forwarded.
async fn flaky(mut client: TcpStream, state: &State, every: usize) {
    let Ok(mut up) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    while let Some((head, mut rest)) = read_head(&mut client).await {
        let nth = state.flaky_seen.fetch_add(1, Ordering::Relaxed) + 1;
        let fail = nth % every == 0;
        if fail {
            state.flaky_failed.fetch_add(1, Ordering::Relaxed);
        }
        if fail && (nth / every) % 2 == 0 {
            let _ = client.set_zero_linger();
            return;
        }
        if !read_body(&mut client, &head, &mut rest).await {
            return;
        }
        if fail {
            if client.write_all(response(500).as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        if !relay(&mut client, &mut up, head, rest).await {
            return;
        }
    }
}

/// Sends a request already read to `up`, and its whole answer back to
/// `client`; `false` when either side went away.
async fn relay(client: &mut TcpStream, up: &mut TcpStream, head: String, body: Vec<u8>) -> bool {
    if up.write_all(head.as_bytes()).await.is_err() || up.write_all(&body).await.is_err() {
        return false;
    }
    let Some((answer, mut rest)) = read_head(up).await else {
        return false;
    };
    if !read_body(up, &answer, &mut rest).await {
        return false;
    }
    client.write_all(answer.as_bytes()).await.is_ok() && client.write_all(&rest).await.is_ok()
}

/// Reads the rest of a body whose first bytes are `rest`; `false` when the
/// client went away first. Leftover bytes of a next request are not
/// expected: the pipeline sends one request at a time per connection.
async fn read_body(client: &mut TcpStream, head: &str, rest: &mut Vec<u8>) -> bool {
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let done = |b: &[u8]| match length {
        Some(len) => b.len() >= len,
        None => !lower.contains("chunked") || b.ends_with(b"\r\n0\r\n\r\n") || b == b"0\r\n\r\n",
    };
    let mut chunk = [0u8; 8192];
    while !done(rest) {
        match client.read(&mut chunk).await {
            Ok(n) if n > 0 => rest.extend_from_slice(&chunk[..n]),
            _ => return false,
        }
    }
    true
}

/// An etcd-like answer with `status` and an empty or etcd's body.
fn response(status: u16) -> String {
    let (reason, body) = match status {
        403 => (
            "Forbidden",
            "the member has been permanently removed from the cluster\n",
        ),
        412 => ("Precondition Failed", "cluster ID mismatch\n"),
        500 => ("Internal Server Error", "error processing raft message\n"),
        503 => ("Service Unavailable", ""),
        _ => ("Status", ""),
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

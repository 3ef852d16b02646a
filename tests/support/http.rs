//! One raw HTTP/1.1 client over a plain TCP connection. Requests are exact
//! bytes, so a test can send what no HTTP library would (a body cut short,
//! a chunked body that never ends, headers etcd would not send); answers
//! are parsed and checked to be complete, so that status line, headers and
//! body can be compared with what etcd writes.

use std::net::SocketAddr;

use rafthttp_pipeline::Id;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

// ---------------------------------------------------------------- requests

/// A request's headers, in the order they are written.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// The headers etcd 3.4's senders write, from member `from` of
    /// `cluster`, with `content_type`.
    pub fn etcd(content_type: &str, from: Id, cluster: Id) -> Headers {
        Headers::default()
            .with("Content-Type", content_type)
            .with("X-Server-From", &from.to_string())
            .with("X-Server-Version", "3.4.23")
            .with("X-Min-Cluster-Version", "3.0.0")
            .with("X-Etcd-Cluster-ID", &cluster.to_string())
    }

    /// These headers with `name` set to `value`, or removed for `None`
    /// (names compare without case).
    pub fn set(mut self, name: &str, value: Option<&str>) -> Headers {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            self.0.push((name.to_owned(), v.to_owned()));
        }
        self
    }

    /// These headers with `name` set to `value`.
    pub fn with(self, name: &str, value: &str) -> Headers {
        self.set(name, Some(value))
    }
}

/// The framing header of a chunked body.
pub const CHUNKED: &str = "Transfer-Encoding: chunked";

/// The head of a request, up to and including the empty line: `Host`,
/// `Connection: close` (one request a connection), `headers`, and the
/// body's `framing` header.
pub fn head(method: &str, path: &str, headers: &Headers, framing: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in &headers.0 {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("{framing}\r\n\r\n"));
    out.into_bytes()
}

/// A request with a `Content-Length` body.
pub fn request(method: &str, path: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let framing = format!("Content-Length: {}", body.len());
    let mut out = head(method, path, headers, &framing);
    out.extend_from_slice(body);
    out
}

/// A request with a chunked body of `chunks`, and its last chunk.
pub fn chunked(method: &str, path: &str, headers: &Headers, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = head(method, path, headers, CHUNKED);
    for bytes in chunks {
        out.extend_from_slice(&chunk(bytes));
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// `bytes` as one chunk of a chunked body.
pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------- answers

/// A complete HTTP/1.1 response: a sized body of exactly its
/// `Content-Length`, or a chunked body up to its last chunk.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and headers as sent, without the empty line.
    pub head: String,
    /// The headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, dechunked.
    pub body: Vec<u8>,
}

impl Response {
    /// One header's value; names compare without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    /// The header names, lower case and sorted, without `date` and
    /// `connection`, which every HTTP server adds.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .filter(|n| n != "date" && n != "connection")
            .collect();
        names.sort();
        names
    }

    /// Asserts Go's `http.Error(w, text, status)`: plain text, `nosniff`,
    /// the text and a newline, with a matching `Content-Length`.
    pub fn assert_go_error(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body_text(), format!("{text}\n"), "{}", self.head);
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str())
        );
    }

    /// Asserts the answer names `cluster` in `X-Etcd-Cluster-ID`.
    pub fn assert_cluster_id(&self, cluster: Id) {
        let want = cluster.to_string();
        assert_eq!(
            self.header("x-etcd-cluster-id"),
            Some(want.as_str()),
            "{self:?}"
        );
    }
}

/// Parses the response at the start of `raw`: the response and the bytes
/// it took once complete, `None` while incomplete.
fn parse(raw: &[u8]) -> Option<(Response, usize)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8(raw[..split].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut response = Response {
        status,
        head,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[split + 4..];
    let (body, used) = if response.header("transfer-encoding") == Some("chunked") {
        dechunk(rest)?
    } else {
        let len: usize = response
            .header("content-length")
            .map_or(0, |v| v.parse().expect("content-length"));
        (rest.get(..len)?.to_vec(), len)
    };
    response.body = body;
    Some((response, split + 4 + used))
}

/// A chunked body and the bytes it took, up to its last chunk; `None`
/// while incomplete (etcd's aborted 500 ends before its last chunk).
fn dechunk(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let eol = at + raw[at..].windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[at..eol]).expect("chunk size");
        let size = usize::from_str_radix(size, 16).expect("hex chunk size");
        at = eol + 2;
        if size == 0 {
            let end = raw.get(at..at + 2)?;
            assert_eq!(end, b"\r\n", "no trailers after the last chunk");
            return Some((body, at + 2));
        }
        body.extend_from_slice(raw.get(at..at + size)?);
        at += size + 2;
    }
}

// ---------------------------------------------------------------- the client

/// Connects to `addr` and writes `request`, which may be unfinished; the
/// stream stays open for more.
pub async fn open(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send the request");
    stream
}

/// Reads one answer off `stream`, which stays open; fails after [`WAIT`].
pub async fn read_response(stream: &mut TcpStream) -> Response {
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some((response, _)) = parse(&raw) {
                return response;
            }
            let n = stream.read(&mut buf).await.expect("read the answer");
            assert!(n > 0, "closed before the answer ended: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the answer came in time")
}

/// Reads `stream` to its end and checks that it carried exactly one
/// complete answer and then a clean close: a reset means the server
/// aborted the connection, which is what etcd does and we must not. Fails
/// after [`WAIT`].
pub async fn finish(mut stream: TcpStream) -> Response {
    let read = async {
        let mut raw = Vec::new();
        if let Err(e) = stream.read_to_end(&mut raw).await {
            panic!("connection aborted after {raw:?}: {e}");
        }
        let (response, used) = parse(&raw)
            .unwrap_or_else(|| panic!("incomplete answer: {:?}", String::from_utf8_lossy(&raw)));
        assert_eq!(used, raw.len(), "nothing after the answer: {response:?}");
        response
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the answer came in time")
}

/// Sends `request` on a new connection and reads the whole answer, up to
/// the server closing the connection (requests say `Connection: close`).
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    finish(open(addr, request).await).await
}

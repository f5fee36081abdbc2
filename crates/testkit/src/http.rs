//! A small HTTP/1.1 GET for the forwarder's metrics and health endpoints on loopback.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest body read; a longer one is an error.
pub const MAX_BODY: usize = 64 << 20;
/// The longest status or header line read.
const MAX_HEAD_LINE: u64 = 16 << 10;
/// How long a connection or a read may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// An answer: its status code and its body (UTF-8, lossy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// `GET path` from `addr` with `Connection: close`; the body is read to its
/// `Content-Length`, or to the end of the stream without one. Chunked answers are refused
/// (the forwarder's endpoints always send a length).
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let sock = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    (&sock).write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut reader = BufReader::new(sock);
    let status_line = head_line(&mut reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("GET {path}: no status in {status_line:?}")))?;
    let mut length = None;
    loop {
        let line = head_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("GET {path}: header {line:?}")));
        };
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| bad(format!("GET {path}: Content-Length {value:?}")))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(format!("GET {path}: Transfer-Encoding {value:?}")));
        }
    }
    let mut raw = Vec::new();
    match length {
        Some(n) if n > MAX_BODY => return Err(bad(format!("GET {path}: {n} byte body"))),
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw)?;
        }
        None => {
            reader.take(MAX_BODY as u64 + 1).read_to_end(&mut raw)?;
            if raw.len() > MAX_BODY {
                return Err(bad(format!("GET {path}: body over {MAX_BODY} bytes")));
            }
        }
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&raw).into_owned(),
    })
}

/// [`get`], requiring status 200; the body.
pub fn get_ok(addr: SocketAddr, path: &str) -> io::Result<String> {
    let r = get(addr, path)?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(io::Error::other(format!("GET {path}: status {}", r.status)))
    }
}

/// One CRLF-terminated line of the head, without its terminator.
fn head_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    let n = reader.by_ref().take(MAX_HEAD_LINE).read_line(&mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed in the response head",
        ));
    }
    if !line.ends_with('\n') {
        return Err(bad("a response head line over 16 KiB".to_owned()));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `answer` to one connection, after reading its request head.
    fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                let mut r = BufReader::new(&s);
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = (&s).write_all(answer);
            }
        });
        addr
    }

    #[test]
    fn a_body_is_read_to_its_length_or_to_the_end() {
        let a = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more");
        assert_eq!(
            get(a, "/metrics").expect("get"),
            Response {
                status: 200,
                body: "hello".into()
            }
        );
        let a = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"ready\":false}");
        let r = get(a, "/health").expect("get");
        assert_eq!((r.status, r.body.as_str()), (503, "{\"ready\":false}"));
        let a = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(get_ok(a, "/health").is_err());
        let a = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(
            get(a, "/").map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
    }
}

//! A small RELP client of its own (it shares no code with `mcas-syslog`'s codec), for the
//! cases a real sender cannot be made to produce on demand: a window of any size kept full,
//! a session cut mid-window and resumed, answers checked for order.
//!
//! It keeps what a RELP sender keeps: every message not yet answered, in order. After a
//! broken session, [`Client::into_unanswered`] gives them back to be sent again on a new
//! session, as librelp does.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// The client's software offer.
const SOFTWARE: &str = "mcas-testkit";

/// A RELP session on a stream (TCP, or TLS over TCP).
#[derive(Debug)]
pub struct Client<S: Read + Write> {
    stream: S,
    window: usize,
    next: u32,
    /// Sent and not yet answered: (TXNR, message).
    unanswered: VecDeque<(u32, Vec<u8>)>,
    out: Vec<u8>,
    input: Vec<u8>,
    answered: u64,
    server_closed: bool,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// One answer or hint read from the server.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Rsp { txnr: u32, code: u16 },
    ServerClose,
}

/// Parse one server frame at the front of `buf`: `Ok(None)` when it is incomplete.
fn parse_reply(buf: &[u8]) -> io::Result<Option<(Reply, usize)>> {
    let Some(sp1) = buf.iter().position(|&b| b == b' ') else {
        return if buf.len() > 10 {
            Err(bad("no TXNR"))
        } else {
            Ok(None)
        };
    };
    let txnr: u32 = std::str::from_utf8(&buf[..sp1])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad TXNR"))?;
    let rest = &buf[sp1 + 1..];
    let Some(sp2) = rest.iter().position(|&b| b == b' ') else {
        return if rest.len() > 33 {
            Err(bad("no command"))
        } else {
            Ok(None)
        };
    };
    let command = &rest[..sp2];
    let rest = &rest[sp2 + 1..];
    // DATALEN, then LF (no data) or SP and the data, then LF.
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == rest.len() {
        return Ok(None);
    }
    let len: usize = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad DATALEN"))?;
    let head = sp1 + 1 + sp2 + 1 + digits;
    let total = if len == 0 {
        head + 1
    } else {
        head + 1 + len + 1
    };
    if buf.len() < total {
        return Ok(None);
    }
    if buf[total - 1] != b'\n' {
        return Err(bad("no LF after the frame"));
    }
    let data = if len == 0 {
        &[][..]
    } else {
        &buf[head + 1..head + 1 + len]
    };
    let reply = match command {
        b"rsp" => {
            let code = if data.len() >= 3 {
                std::str::from_utf8(&data[..3])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("bad rsp code"))?
            } else {
                // `N rsp 0`: the answer to close.
                0
            };
            Reply::Rsp { txnr, code }
        }
        b"serverclose" => Reply::ServerClose,
        other => {
            return Err(bad(format!(
                "unexpected command {:?}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    Ok(Some((reply, total)))
}

impl<S: Read + Write> Client<S> {
    /// Open a session on `stream` (`open`, and its `200` answer offering `syslog`), with
    /// at most `window` messages unanswered at a time.
    pub fn open(stream: S, window: usize) -> io::Result<Client<S>> {
        let mut c = Client {
            stream,
            window: window.max(1),
            next: 1,
            unanswered: VecDeque::new(),
            out: Vec::with_capacity(64 * 1024),
            input: Vec::with_capacity(64 * 1024),
            answered: 0,
            server_closed: false,
        };
        let offers = format!("relp_version=0\nrelp_software={SOFTWARE}\ncommands=syslog");
        c.frame("open", offers.as_bytes());
        c.stream.write_all(&c.out)?;
        c.out.clear();
        // The open answer carries offers: read it whole and check it.
        loop {
            if let Some(end) = c.input.iter().position(|&b| b == b'\n') {
                let head = String::from_utf8_lossy(&c.input[..end]).into_owned();
                let parts: Vec<&str> = head.splitn(4, ' ').collect();
                if parts.len() < 4 || parts[0] != "1" || parts[1] != "rsp" {
                    return Err(bad(format!("bad open answer {head:?}")));
                }
                let len: usize = parts[2].parse().map_err(|_| bad("bad open DATALEN"))?;
                let start = parts[0].len() + parts[1].len() + parts[2].len() + 3;
                if c.input.len() < start + len + 1 {
                    c.fill()?;
                    continue;
                }
                let data = String::from_utf8_lossy(&c.input[start..start + len]).into_owned();
                if !data.starts_with("200") || !data.lines().any(|l| l == "commands=syslog") {
                    return Err(bad(format!("open refused: {data:?}")));
                }
                c.input.drain(..start + len + 1);
                return Ok(c);
            }
            c.fill()?;
        }
    }

    fn frame(&mut self, command: &str, data: &[u8]) {
        let txnr = self.next;
        self.next = if txnr >= 999_999_999 { 1 } else { txnr + 1 };
        if data.is_empty() {
            let _ = writeln!(self.out, "{txnr} {command} 0");
        } else {
            let _ = write!(self.out, "{txnr} {command} {} ", data.len());
            self.out.extend_from_slice(data);
            self.out.push(b'\n');
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the session",
            ));
        }
        self.input.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Send one message, first waiting for answers while the window is full.
    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        if self.unanswered.len() >= self.window {
            self.flush()?;
            while self.unanswered.len() >= self.window {
                self.read_answers()?;
            }
        }
        let txnr = self.next;
        self.frame("syslog", message);
        self.unanswered.push_back((txnr, message.to_vec()));
        if self.out.len() >= 32 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    /// Write what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
            self.stream.flush()?;
        }
        Ok(())
    }

    /// Read at least one more batch of answers; each must answer the oldest unanswered
    /// command with `200`.
    fn read_answers(&mut self) -> io::Result<()> {
        loop {
            let mut progressed = false;
            while let Some((reply, len)) = parse_reply(&self.input)? {
                self.input.drain(..len);
                match reply {
                    Reply::ServerClose => {
                        self.server_closed = true;
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "serverclose",
                        ));
                    }
                    Reply::Rsp { txnr, code } => {
                        let Some(&(front, _)) = self.unanswered.front() else {
                            return Err(bad(format!("answer {txnr} to nothing")));
                        };
                        if front != txnr {
                            return Err(bad(format!(
                                "answer {txnr} out of order (expected {front})"
                            )));
                        }
                        if code != 200 {
                            return Err(bad(format!("answer {code} to {txnr}")));
                        }
                        self.unanswered.pop_front();
                        self.answered += 1;
                        progressed = true;
                    }
                }
            }
            if progressed {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// Wait until every message sent has been answered.
    pub fn wait_all(&mut self) -> io::Result<()> {
        self.flush()?;
        while !self.unanswered.is_empty() {
            self.read_answers()?;
        }
        Ok(())
    }

    /// Answer everything, then `close` the session and read its answer.
    pub fn close(mut self) -> io::Result<()> {
        self.wait_all()?;
        let txnr = self.next;
        self.frame("close", b"");
        self.flush()?;
        loop {
            if let Some((reply, len)) = parse_reply(&self.input)? {
                self.input.drain(..len);
                return match reply {
                    Reply::Rsp { txnr: t, .. } if t == txnr => Ok(()),
                    other => Err(bad(format!("unexpected {other:?} after close"))),
                };
            }
            self.fill()?;
        }
    }

    /// Messages answered so far on this session.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Messages sent and not answered.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// Whether the server sent the `serverclose` hint.
    pub fn server_closed(&self) -> bool {
        self.server_closed
    }

    /// The messages never answered, oldest first: what a sender sends again on its next
    /// session. Answers already read from the stream count; nothing more is read.
    pub fn into_unanswered(mut self) -> Vec<Vec<u8>> {
        while let Ok(Some((Reply::Rsp { txnr, code: 200 }, len))) = parse_reply(&self.input) {
            if self.unanswered.front().map(|u| u.0) != Some(txnr) {
                break;
            }
            self.input.drain(..len);
            self.unanswered.pop_front();
        }
        self.unanswered.into_iter().map(|(_, m)| m).collect()
    }

    /// The stream underneath.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_whole_or_not_at_all() {
        let all = b"12 rsp 6 200 OK\n13 rsp 0\n0 serverclose 0\n";
        let (r, n) = parse_reply(all).unwrap().unwrap();
        assert_eq!(
            (r, n),
            (
                Reply::Rsp {
                    txnr: 12,
                    code: 200
                },
                16
            )
        );
        let (r, m) = parse_reply(&all[n..]).unwrap().unwrap();
        assert_eq!((r, m), (Reply::Rsp { txnr: 13, code: 0 }, 9));
        let (r, _) = parse_reply(&all[n + m..]).unwrap().unwrap();
        assert_eq!(r, Reply::ServerClose);
        for cut in 0..n {
            assert!(parse_reply(&all[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert!(parse_reply(b"x rsp 0\n").is_err());
        assert!(parse_reply(b"1 rsp 6 200 OKX").is_err());
    }
}

//! The requests a test connection has sent, read back from the bytes it wrote, so
//! that each response the connection reads can be paired with its request (method
//! and target) for `openapi::check`.
//!
//! Tests write exact bytes: pipelined requests, bodies in pieces, chunked bodies,
//! heads the server must refuse. A request is known once its head is complete; its
//! body is then skipped by `Content-Length` or by chunks. A head whose body length
//! cannot be told (conflicting or bad framing, another coding) is still paired with
//! the server's refusal, and the connection is not followed further: the server
//! closes it after such a refusal.

use std::collections::VecDeque;

/// Method and target (`/path?query`) of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub method: String,
    pub target: String,
}

#[derive(Debug, Default)]
enum Framing {
    /// Waiting for (the rest of) a request head.
    #[default]
    Head,
    /// So many body bytes still to skip.
    Body(usize),
    /// A chunked body: the next chunk-size line.
    ChunkSize,
    /// Chunk data and its CRLF still to skip.
    ChunkData(usize),
    /// After the last chunk: trailer lines up to the empty one.
    Trailers,
    /// The framing cannot be followed: nothing more is paired.
    Lost,
}

/// One connection's requests not answered yet.
#[derive(Debug, Default)]
pub struct Requests {
    unparsed: Vec<u8>,
    framing: Framing,
    pending: VecDeque<Sent>,
}

impl Requests {
    /// Takes the bytes the connection wrote.
    pub fn wrote(&mut self, bytes: &[u8]) {
        if matches!(self.framing, Framing::Lost) {
            return;
        }
        self.unparsed.extend_from_slice(bytes);
        while self.step() {}
    }

    /// The request a final (non-1xx) response answers, if it is known.
    pub fn answered(&mut self) -> Option<Sent> {
        self.pending.pop_front()
    }

    /// Consumes what the current state can; false when it needs more bytes.
    fn step(&mut self) -> bool {
        match self.framing {
            Framing::Head => self.head(),
            Framing::Body(n) => {
                let take = n.min(self.unparsed.len());
                self.unparsed.drain(..take);
                self.framing = if take == n {
                    Framing::Head
                } else {
                    Framing::Body(n - take)
                };
                take == n && !self.unparsed.is_empty()
            }
            Framing::ChunkSize => self.chunk_size(),
            Framing::ChunkData(n) => {
                if self.unparsed.len() < n {
                    return false;
                }
                self.unparsed.drain(..n);
                self.framing = Framing::ChunkSize;
                true
            }
            Framing::Trailers => {
                let Some(line) = self.line() else {
                    return false;
                };
                if line.is_empty() {
                    self.framing = Framing::Head;
                }
                true
            }
            Framing::Lost => false,
        }
    }

    /// The next CRLF-terminated line, consumed.
    fn line(&mut self) -> Option<String> {
        let end = self.unparsed.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&self.unparsed[..end]).into_owned();
        self.unparsed.drain(..end + 2);
        Some(line)
    }

    fn head(&mut self) -> bool {
        let Some(end) = self.unparsed.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&self.unparsed[..end]).into_owned();
        self.unparsed.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut words = lines.next().unwrap_or_default().split(' ');
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            self.framing = Framing::Lost;
            return false;
        };
        self.pending.push_back(Sent {
            method: method.to_string(),
            target: target.to_string(),
        });
        self.framing = framing(lines);
        !matches!(self.framing, Framing::Lost)
    }

    fn chunk_size(&mut self) -> bool {
        let Some(line) = self.line() else {
            return false;
        };
        let size = line.split(';').next().unwrap_or_default().trim();
        self.framing = match usize::from_str_radix(size, 16) {
            Ok(0) => Framing::Trailers,
            Ok(n) => Framing::ChunkData(n + 2),
            Err(_) => Framing::Lost,
        };
        !matches!(self.framing, Framing::Lost)
    }
}

/// How the body after a head is framed, from its header lines.
fn framing<'a>(lines: impl Iterator<Item = &'a str>) -> Framing {
    let (mut lengths, mut codings) = (Vec::new(), Vec::new());
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        if name.eq_ignore_ascii_case("content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.push(value);
        }
    }
    match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Framing::Head,
        ([n], []) => n.parse().map_or(Framing::Lost, |n: usize| {
            if n == 0 {
                Framing::Head
            } else {
                Framing::Body(n)
            }
        }),
        ([], [c]) if c.eq_ignore_ascii_case("chunked") => Framing::ChunkSize,
        _ => Framing::Lost,
    }
}

//! Protocol limits of one worker (gunicorn's flag names and status codes), and the
//! timers and budgets that keep slow or idle clients from holding it.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line in bytes; longer → 414. `0` means unlimited.
    pub request_line: usize,
    /// Most header fields; more → 431.
    pub header_fields: usize,
    /// Largest header field (name + value) in bytes; larger → 431. `0` = unlimited.
    pub header_field_size: usize,
    /// Largest request body; larger → 413 before the body is read.
    pub max_body: u64,
    /// Idle keep-alive timeout; zero disables keep-alive.
    pub keep_alive: Duration,
    /// Most client connections held at once. At the limit, idle and slow
    /// connections make room for new ones.
    pub max_connections: usize,
    /// A worker asks to be recycled after this many requests (0 = never).
    pub max_requests: u64,
    /// How long a request head may take from its first byte (408 then), and how
    /// long a new connection may stay silent.
    pub header_timeout: Duration,
    /// How long a body may take once its head is complete (408 then).
    pub body_timeout: Duration,
    /// How long a client may leave an answer unread before it is dropped.
    pub send_timeout: Duration,
    /// Most bytes of unfinished request bodies held across all connections; a
    /// request that would go past it → 503 with `Retry-After`.
    pub max_buffered: usize,
}

/// Stand-in for "unlimited" so that buffers still have a ceiling.
const UNLIMITED: usize = 64 * 1024;

impl Limits {
    pub fn line(&self) -> usize {
        if self.request_line == 0 {
            UNLIMITED
        } else {
            self.request_line
        }
    }

    pub fn field_size(&self) -> usize {
        if self.header_field_size == 0 {
            UNLIMITED
        } else {
            self.header_field_size
        }
    }

    /// The most bytes a request head may occupy before it is complete: the request
    /// line plus every allowed field with its CRLF, plus the final CRLF.
    pub fn max_head(&self) -> usize {
        let fields = self
            .header_fields
            .saturating_mul(self.field_size().saturating_add(4));
        self.line()
            .saturating_add(fields)
            .saturating_add(4)
            .min(16 * 1024 * 1024)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            header_fields: 100,
            header_field_size: 8190,
            max_body: 1024 * 1024,
            keep_alive: Duration::from_secs(2),
            max_connections: 1000,
            max_requests: 0,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            max_buffered: 64 * 1024 * 1024,
        }
    }
}

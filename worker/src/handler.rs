//! What the application plugs into the runtime.

use crate::request::Request;
use crate::response::Response;

/// A request the runtime refused before the application saw it. Each of these is
/// answered and then the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 400: malformed request (the reason is for logs).
    BadRequest(&'static str),
    /// 408: the head or the body did not arrive in time.
    RequestTimeout,
    /// 413: declared or decoded body larger than the limit.
    PayloadTooLarge,
    /// 414: request line over the limit.
    UriTooLong,
    /// 431: too many header fields, or one too large.
    HeaderFieldsTooLarge,
    /// 501: a transfer coding we do not implement.
    NotImplemented,
    /// 505: an HTTP version other than 1.0/1.1.
    VersionNotSupported,
    /// 500: the handler panicked.
    InternalError,
    /// 503: the worker holds as many unfinished bodies as it may; try again soon.
    Overloaded,
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest(_) => 400,
            Rejection::RequestTimeout => 408,
            Rejection::PayloadTooLarge => 413,
            Rejection::UriTooLong => 414,
            Rejection::HeaderFieldsTooLarge => 431,
            Rejection::NotImplemented => 501,
            Rejection::VersionNotSupported => 505,
            Rejection::InternalError => 500,
            Rejection::Overloaded => 503,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Rejection::BadRequest(why) => why,
            Rejection::RequestTimeout => "Request not received in time",
            Rejection::PayloadTooLarge => "Request body too large",
            Rejection::UriTooLong => "Request line too long",
            Rejection::HeaderFieldsTooLarge => "Request header fields too large",
            Rejection::NotImplemented => "Transfer coding not implemented",
            Rejection::VersionNotSupported => "HTTP version not supported",
            Rejection::InternalError => "Internal server error",
            Rejection::Overloaded => "Server busy, retry later",
        }
    }

    /// Seconds a client should wait before trying again, sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<&'static str> {
        match self {
            Rejection::Overloaded => Some("1"),
            _ => None,
        }
    }
}

/// The application's request handler. Called for one request at a time.
pub trait Handler {
    /// Produces the response to a complete request.
    fn handle(&mut self, req: &Request<'_>) -> Response;

    /// Produces the response to a refused request; `head` is present when the
    /// request head was parsed (e.g. 413 on a declared body size).
    fn reject(&mut self, rejection: Rejection, head: Option<&Request<'_>>) -> Response;

    /// `Name: value\r\n` lines added to every response, rejections included (the
    /// security headers). Rendered once by the application.
    fn common_headers(&self) -> &[u8] {
        b""
    }

    /// Called once per event-loop turn, before the worker waits for events: the
    /// place to write out what the turn's requests buffered (access log lines).
    fn flush(&mut self) {}
}

/// Process-level hooks: readiness, heartbeats, recycling and log reopening.
pub trait Lifecycle {
    /// The worker is accepting connections.
    fn ready(&mut self) {}
    /// Called at least once per `heartbeat` interval while the worker is healthy.
    fn heartbeat(&mut self) {}
    /// `max_requests` was reached: ask for a replacement, keep serving until
    /// told to stop (SIGTERM).
    fn retire(&mut self) {}
    /// The worker stopped accepting and is finishing what it holds.
    fn draining(&mut self) {}
    /// SIGUSR1: reopen log files.
    fn reopen_logs(&mut self) {}
}

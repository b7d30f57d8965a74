//! `blitz-worker`: the HTTP/1.1 runtime of one synchronous pre-fork worker.
//!
//! A mio event loop over inherited listeners holds up to `max_connections` client
//! connections; complete requests are handed, one at a time, to the application's
//! [`Handler`]. The crate enforces the protocol limits (request line, header count and
//! size, body size) before anything grows, times out slow heads and bodies (408),
//! makes room for new connections by closing idle and slow ones, caps the memory of
//! unfinished bodies (503), and knows nothing of routes, users or bots.

mod chunked;
mod conn;
mod date;
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod head;
mod limits;
mod request;
mod response;
mod server;
mod signals;
mod token;

pub use date::http_date;
pub use handler::{Handler, Lifecycle, Rejection};
pub use limits::Limits;
pub use request::{Peer, Request, Version};
pub use response::{Body, Response};
pub use server::{serve, Listener, ServeError};
pub use token::{trim_ows, trim_ows_str};

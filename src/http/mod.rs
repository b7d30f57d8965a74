//! The HTTP application: routing table, middleware and handlers.

mod app;
mod client_ip;
mod health;
mod reply;
mod request_id;
mod router;
mod security;

pub use app::WebApp;
pub use router::{Match, RouteId, ROUTES};

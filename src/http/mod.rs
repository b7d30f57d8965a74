//! The HTTP application: routing table, middleware and handlers.

mod api;
mod app;
mod client_ip;
mod ctx;
mod guard;
mod guard_table;
mod health;
mod input;
mod notice;
mod pages;
mod reply;
mod request_id;
mod router;
mod security;

pub use app::WebApp;
pub use guard_table::CELLS as GUARD_CELLS;
pub use router::{Access, Kind, Match, RouteId, ROUTES};

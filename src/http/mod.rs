//! The HTTP application: routing table, middleware and handlers.

mod api;
mod app;
mod client_ip;
mod ctx;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod hash_budget;
mod health;
mod input;
mod limits;
mod notice;
mod pages;
mod reply;
mod request_id;
mod router;
mod routes;
mod security;

pub use app::WebApp;
pub use router::Match;
pub use routes::{Access, Kind, Route, ROUTES};

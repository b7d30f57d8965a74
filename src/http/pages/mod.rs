//! Server-rendered HTML pages (C7).

pub mod account;
pub mod html;

pub use html::error_page;

//! Accounts and authentication: passwords, sessions, API tokens, CSRF, the
//! failed-login limit, and the request's identity.
//! See docs/http-api.md, Accounts.

pub mod accounts;
pub mod admin_seed;
pub mod cache;
pub mod cookie;
pub mod csrf;
pub mod identity;
pub mod login_limit;
pub mod password;
pub mod token;
pub mod totp;
pub mod two_factor;

pub use accounts::AccountError;
pub use identity::{Identity, Principal, Via};

/// Lower-cased, trimmed e-mail if it is a plausible address (≤ 254 bytes).
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = crate::config::parse::email(raw).ok()?;
    (e.len() <= 254).then(|| e.to_lowercase())
}

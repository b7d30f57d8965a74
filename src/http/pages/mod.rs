//! Server-rendered HTML pages. Templates live in `pages/templates/` and are checked
//! at compile time; the stylesheet and scripts in `pages/static/` are compiled in.
//! See docs/http-api.md, Pages.

pub mod account;
pub mod admin;
pub mod assets;
pub mod chart;
pub mod chosen_bot;
pub mod dashboard;
pub mod exchange_accounts;
pub mod frame;
pub mod html;
pub mod login;
pub mod pnl;
pub mod qr;
pub mod settings;
pub mod two_factor;
pub mod view;
pub mod words;

use blitz_worker::Response;

pub use html::error_page;

use super::api::ApiError;
use crate::store::settings::Notice;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not found")]
    NotFound,
    /// Anything else that is not the visitor's fault (e.g. the secrets key).
    #[error("{0}")]
    Internal(String),
}

impl From<crate::store::SqlError> for PageError {
    fn from(e: crate::store::SqlError) -> Self {
        PageError::Store(e.into())
    }
}

impl From<ApiError> for PageError {
    /// API helpers reused by pages fail only on storage or a missing row.
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Store(e) => PageError::Store(e),
            _ => PageError::NotFound,
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// The response for a page handler's result: internal errors are logged and shown
/// as an HTML error page.
pub fn respond(result: PageResult, log: &slog::Logger, notice: &Notice) -> Response {
    match result {
        Ok(r) => r,
        Err(PageError::NotFound) => not_found(notice),
        Err(e @ (PageError::Store(_) | PageError::Internal(_))) => {
            slog::error!(log, "page failed"; "error" => %e);
            server_error(notice)
        }
    }
}

pub fn not_found(notice: &Notice) -> Response {
    error_page(
        404,
        "Page not found",
        "There is no page at this address.",
        notice,
    )
}

pub fn server_error(notice: &Notice) -> Response {
    error_page(
        500,
        "Something went wrong",
        "The server could not show this page. Please try again in a moment.",
        notice,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_become_html_error_pages() {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let failed = respond(
            Err(crate::store::SqlError::NoRows.into()),
            &log,
            &Notice::default(),
        );
        assert_eq!(failed.status, 500);
        let body = String::from_utf8_lossy(failed.body.as_slice()).into_owned();
        assert!(
            body.contains("<title>Something went wrong · Blitz</title>"),
            "{body}"
        );
        assert!(!body.contains("QueryReturnedNoRows"), "no internals shown");
        assert_eq!(
            respond(Err(PageError::NotFound), &log, &Notice::default()).status,
            404
        );
    }
}

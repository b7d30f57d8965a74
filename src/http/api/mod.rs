//! JSON API handlers, and the one place where their errors become responses.

pub mod admin_bots;
pub mod admin_user_bots;
pub mod admin_users;
pub mod auth;
pub mod bot;
pub mod bot_config;
pub mod bot_keys;
pub mod bots;
pub mod exchange_accounts;
pub mod key_check;
pub mod maintenance;
pub mod markets;
pub mod openapi;
pub mod owned;
pub mod paper;
pub mod per_bot;
pub mod pnl;
pub mod preview;
pub mod tokens;
pub mod trades_csv;
pub mod two_factor;

use blitz_worker::Response;
use serde_json::{json, Value};
use slog::{error, Logger};

use super::reply;
use crate::auth::AccountError;
use crate::store::{users::User, StoreError};

pub enum ApiError {
    /// An answer already built (input errors, refusals).
    Reply(Response),
    Account(AccountError),
    Store(StoreError),
}

pub type ApiResult = Result<Response, ApiError>;

impl From<Response> for ApiError {
    fn from(r: Response) -> Self {
        ApiError::Reply(r)
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        ApiError::Account(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<crate::store::SqlError> for ApiError {
    fn from(e: crate::store::SqlError) -> Self {
        ApiError::Store(e.into())
    }
}

/// The response for a handler's result; internal errors are logged, not shown.
pub fn respond(result: ApiResult, log: &Logger) -> Response {
    match result {
        Ok(r) | Err(ApiError::Reply(r)) => r,
        Err(ApiError::Account(e)) => account_error(e, log),
        Err(ApiError::Store(e)) => internal(&e.to_string(), log),
    }
}

fn internal(detail: &str, log: &Logger) -> Response {
    error!(log, "request failed"; "error" => detail);
    reply::error(500, "Internal server error")
}

/// The documented status and message for each account outcome.
pub fn account_error(e: AccountError, log: &Logger) -> Response {
    match e {
        AccountError::Invalid(fields) => reply::invalid_fields(&fields),
        AccountError::EmailTaken => reply::error(409, "Email already registered"),
        AccountError::BadCredentials => reply::error(401, "Invalid email or password"),
        AccountError::NotVerified => reply::error(403, "Email not verified"),
        AccountError::Disabled => reply::error(403, "Account disabled"),
        AccountError::TooManyAttempts { retry_after_s } => reply::too_many(
            "Too many failed login attempts; try again later",
            retry_after_s,
        ),
        AccountError::InvalidToken => reply::error(400, "Invalid or expired token"),
        AccountError::WrongPassword => reply::json(
            400,
            &json!({"error": "Current password is incorrect",
                    "fields": {"current_password": "is incorrect"}}),
        ),
        AccountError::NotFound => reply::error(404, "Not found"),
        AccountError::TooManyTokens => reply::json(
            409,
            &json!({"error": format!(
                "Too many API tokens: at most {} per user; delete one first",
                crate::auth::accounts::TOKENS_PER_USER
            )}),
        ),
        AccountError::Internal(detail) => internal(&detail, log),
    }
}

/// The user as the API shows it.
pub fn user_json(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "is_admin": u.is_admin})
}

//! JSON responses and the documented error shapes, built in one place.

use std::borrow::Cow;

use blitz_worker::Response;
use serde::Serialize;

pub const JSON: &str = "application/json";

/// A JSON response with `Cache-Control: no-store` (API answers are per-user and live).
pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => raw_json(status, body),
        Err(_) => error(500, "Internal server error"),
    }
}

/// A response with an already-serialised JSON body.
pub fn raw_json(status: u16, body: Vec<u8>) -> Response {
    Response::new(status)
        .header("Content-Type", JSON)
        .header("Cache-Control", "no-store")
        .body(body)
}

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: impl Into<Cow<'static, str>>) -> Response {
    #[derive(Serialize)]
    struct E<'a> {
        error: &'a str,
    }
    let message = message.into();
    let body = serde_json::to_vec(&E { error: &message }).unwrap_or_else(|_| b"{}".to_vec());
    raw_json(status, body)
}

/// 400 `{"error": "Invalid input", "fields": {...}}`.
pub fn invalid_fields<K: Serialize + Ord, V: Serialize>(
    fields: &std::collections::BTreeMap<K, V>,
) -> Response {
    json(
        400,
        &serde_json::json!({"error": "Invalid input", "fields": fields}),
    )
}

/// 429 with `Retry-After`.
pub fn too_many(message: &'static str, retry_after_s: u64) -> Response {
    error(429, message).header("Retry-After", retry_after_s.to_string())
}

/// `{"success": true, "message": ...}` with `status`.
pub fn success(status: u16, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"success": true, "message": message}),
    )
}

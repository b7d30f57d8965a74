//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the JSON API (CONTRACT
//! C14), kept in the repository as `docs/openapi.json` and compiled into the binary,
//! so the served document is the very file every integration test checks real
//! answers against (`tests/common/openapi.rs`).
//!
//! Public: it describes what any caller may send and get, and holds nothing of
//! anyone's. It changes only with the binary, so unlike the API's live answers it
//! may be cached.

use blitz_worker::Response;

use super::ApiResult;
use crate::http::ctx::Ctx;
use crate::http::reply::JSON;

/// The document, as `docs/openapi.json` holds it.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// An hour: a client sees a new binary's document within that.
const CACHE_CONTROL: &str = "public, max-age=3600";

pub fn document(_: &mut Ctx<'_, '_>) -> ApiResult {
    Ok(Response::new(200)
        .header("Content-Type", JSON)
        .header("Cache-Control", CACHE_CONTROL)
        .body(DOCUMENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value =
            serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1.")),
            "{}",
            doc["openapi"]
        );
        assert!(doc["paths"]["/api/openapi.json"]["get"].is_object());
    }
}

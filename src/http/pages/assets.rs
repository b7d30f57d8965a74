//! The stylesheet and script of the pages, compiled into the binary and served under
//! a content-hash path (`/static/<hash>/app.css`): a page always names the exact
//! bytes it was built with, so browsers may cache them for a year.

use std::sync::OnceLock;

use blitz_worker::Response;
use sha2::{Digest, Sha256};

use super::html;
use crate::http::ctx::Ctx;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The price chart: TradingView's lightweight-charts (Apache-2.0), fetched by
/// build.rs into `OUT_DIR` at the version and sha512 pinned in
/// `vendor/package-lock.json` and embedded here; never copied into the repository.
pub const CHART_LIB: &str = "lightweight-charts.js";

/// In the order the pages load them; the scripts run in this order (`defer`).
const ASSETS: [Asset; 9] = [
    asset("app.css", CSS, include_bytes!("static/app.css")),
    asset("api.js", JS, include_bytes!("static/api.js")),
    asset("forms.js", JS, include_bytes!("static/forms.js")),
    asset("ladder.js", JS, include_bytes!("static/ladder.js")),
    asset(
        "price_chart.js",
        JS,
        include_bytes!("static/price_chart.js"),
    ),
    asset("dashboard.js", JS, include_bytes!("static/dashboard.js")),
    asset("favicon.svg", SVG, include_bytes!("static/favicon.svg")),
    asset("theme.js", JS, include_bytes!("static/theme.js")),
    asset(
        CHART_LIB,
        JS,
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/lightweight-charts.standalone.production.js"
        )),
    ),
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

const fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// The scripts every page loads, in order.
pub const SCRIPTS: [&str; 6] = [
    "theme.js",
    "api.js",
    "forms.js",
    "ladder.js",
    "price_chart.js",
    "dashboard.js",
];

/// A year: the longest lifetime caches honour; the path changes with the content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The first 16 hex digits of each asset's SHA-256, in `ASSETS` order.
fn hashes() -> &'static [String; 9] {
    static HASHES: OnceLock<[String; 9]> = OnceLock::new();
    HASHES.get_or_init(|| {
        ASSETS.map(|a| {
            let digest = Sha256::digest(a.body);
            hex::encode(&digest[..8])
        })
    })
}

/// The URL of an asset, e.g. `/static/3f2a…/app.css`.
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("/static/{}/{}", hashes()[i], name),
        None => format!("/static/missing/{name}"),
    }
}

/// `GET /static/<hash>/<name>`.
pub fn serve(ctx: &Ctx<'_, '_>) -> Response {
    let p = ctx.params;
    let etag = ctx.req.header_str("if-none-match");
    let name = p.get("name").unwrap_or("");
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => answer(i, p.get("hash").unwrap_or(""), etag),
        None => html::error_page(404, "Not found", "There is no such page.", &ctx.page_notice),
    }
}

/// Asset `i` of `ASSETS`. A stale hash (a page from before an upgrade) still gets
/// the current file, but revalidated rather than cached for a year.
fn answer(i: usize, hash: &str, if_none_match: Option<&str>) -> Response {
    let asset = &ASSETS[i];
    let current = &hashes()[i];
    let etag = format!("\"{current}\"");
    let cache = if hash == current {
        IMMUTABLE
    } else {
        "no-cache"
    };
    if if_none_match.is_some_and(|v| v.split(',').any(|t| blitz_worker::trim_ows_str(t) == etag)) {
        return Response::new(304)
            .header("ETag", etag)
            .header("Cache-Control", cache);
    }
    Response::new(200)
        .header("Content-Type", asset.content_type)
        .header("Cache-Control", cache)
        .header("ETag", etag)
        .body(asset.body.to_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_carry_the_content_hash() {
        let css = super::url("app.css");
        assert!(css.starts_with("/static/") && css.ends_with("/app.css"));
        assert_eq!(css.len(), "/static/".len() + 16 + "/app.css".len());
        assert_ne!(super::url("api.js"), super::url("forms.js"));
        for name in super::SCRIPTS {
            assert!(!super::url(name).contains("missing"), "{name}");
        }
    }
}

//! Authorization middleware: the route's access rule, then CSRF (C4, C4.6).

use blitz_worker::{Request, Response};

use super::client_ip::forwarded_https;
use super::input;
use super::pages::error_page;
use super::reply;
use super::router::{Access, Kind, Route};
use crate::auth::{csrf, Identity, Via};
use crate::config::Config;

/// Admits the request or returns the refusal: 401/403 JSON for the API; a redirect
/// to `/login` or an HTML 403 for pages.
pub fn check(
    route: &Route,
    identity: &Identity,
    req: &Request<'_>,
    config: &Config,
) -> Result<(), Response> {
    let needs_user = matches!(route.access, Access::User | Access::Admin);
    let Some(p) = identity.principal() else {
        return if needs_user {
            Err(unauthenticated(route.kind, req))
        } else {
            Ok(())
        };
    };
    if route.access == Access::Admin && !p.user.is_admin {
        return Err(match route.kind {
            Kind::Api => reply::error(403, "Admin access required"),
            Kind::Page => error_page(403, "Forbidden", "Admin access required."),
        });
    }
    match &p.via {
        Via::Session { csrf_secret, .. } if route.csrf && is_unsafe(req.method) => {
            check_csrf(req, csrf_secret, config)
        }
        _ => Ok(()),
    }
}

fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

fn unauthenticated(kind: Kind, req: &Request<'_>) -> Response {
    match kind {
        Kind::Api => reply::error(401, "Authentication required"),
        Kind::Page => {
            let next: String = form_urlencoded::byte_serialize(req.path.as_bytes()).collect();
            Response::new(303)
                .header("Location", format!("/login?next={next}"))
                .header("Cache-Control", "no-store")
        }
    }
}

fn check_csrf(req: &Request<'_>, secret: &str, config: &Config) -> Result<(), Response> {
    let refuse = || reply::error(403, "CSRF token missing or invalid");
    let presented = match req.header_str("x-csrf-token") {
        Some(t) => Some(t.trim().to_string()),
        None if input::is_form(req) => input::form_field(req.body, "csrf_token"),
        None => None,
    };
    if !presented.is_some_and(|t| csrf::matches(&t, secret)) {
        return Err(refuse());
    }
    if config.csrf_ssl_strict && forwarded_https(req, &config.forwarded_allow_ips) {
        let host = req.header_str("host").unwrap_or("");
        if !csrf::same_origin(host, req.header_str("origin"), req.header_str("referer")) {
            return Err(refuse());
        }
    }
    Ok(())
}

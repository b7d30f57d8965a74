//! Authorization middleware: the route's access rule, then CSRF.

use blitz_worker::{Request, Response};

use super::client_ip::forwarded_https;
use super::input;
use super::pages::error_page;
use super::pages::html::page;
use super::reply;
use super::routes::{Access, Kind, Route};
use crate::auth::{csrf, Identity, Via};
use crate::config::Config;
use crate::store::settings::Notice;

/// Admits the request or returns the refusal: 401/403 JSON for the API; a redirect
/// to `/login` or an HTML 403 for pages.
pub fn check(
    route: &Route,
    identity: &Identity,
    req: &Request<'_>,
    config: &Config,
    notice: &Notice,
) -> Result<(), Response> {
    let needs_user = matches!(route.access, Access::User | Access::Admin);
    let Some(p) = identity.principal() else {
        return if needs_user {
            Err(unauthenticated(route.kind(), req))
        } else {
            Ok(())
        };
    };
    if route.access == Access::Admin && !p.user.is_admin {
        return Err(match route.kind() {
            Kind::Api => reply::error(403, "Admin access required"),
            Kind::Page => error_page(403, "Forbidden", "Admin access required.", notice),
        });
    }
    if route.access == Access::Admin && config.admin_require_2fa && !p.user.two_factor {
        return Err(two_factor_required(route.kind(), notice));
    }
    match &p.via {
        Via::Session { csrf_secret, .. } if route.csrf && is_unsafe(req.method) => {
            check_csrf(req, csrf_secret, config)
        }
        _ => Ok(()),
    }
}

/// How an admin turns two-factor login on (docs/operations.md, ADMIN_REQUIRE_2FA).
const ENROL: &str = "Turn on two-factor login on the Settings page (/settings), or with \
    POST /api/auth/2fa/setup and POST /api/auth/2fa/enable, then try again.";

/// `ADMIN_REQUIRE_2FA` refuses an admin without two-factor login, saying how to
/// turn it on (the enrolment routes are user routes, so they stay open).
fn two_factor_required(kind: Kind, notice: &Notice) -> Response {
    match kind {
        Kind::Api => reply::json(
            403,
            &serde_json::json!({"error": "Two-factor login required for admin access",
                                "message": ENROL}),
        ),
        Kind::Page => page(
            403,
            "Two-factor login required",
            "<h1>Two-factor login required</h1>\
             <p>Admin pages are open only to admins who log in with a second factor.</p>\
             <p><a href=\"/settings#two-factor\">Turn on two-factor login in Settings</a>: \
             scan the QR code with an authenticator app, confirm with a code, keep the \
             recovery codes. Then come back.</p>",
            notice,
        ),
    }
}

fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

fn unauthenticated(kind: Kind, req: &Request<'_>) -> Response {
    match kind {
        Kind::Api => reply::error(401, "Authentication required"),
        Kind::Page => {
            // Back to the same page, with its query (`/pnl?days=90`).
            let here = if req.query.is_empty() {
                req.path.to_string()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            Response::new(303)
                .header("Location", format!("/login?next={next}"))
                .header("Cache-Control", "no-store")
        }
    }
}

fn check_csrf(req: &Request<'_>, secret: &str, config: &Config) -> Result<(), Response> {
    let refuse = || reply::error(403, "CSRF token missing or invalid");
    let presented = match req.header_str("x-csrf-token") {
        Some(t) => Some(blitz_worker::trim_ows_str(t).to_string()),
        None if input::is_form(req) => input::form_field(req.body, "csrf_token"),
        None => None,
    };
    if !presented.is_some_and(|t| csrf::matches(&t, secret)) {
        return Err(refuse());
    }
    if config.csrf_ssl_strict && forwarded_https(req, &config.forwarded_allow_ips) {
        let host = req.header_str("host").unwrap_or("");
        // Browsers mark their own same-origin requests (`Sec-Fetch-Site`, which
        // no page script can set); with `Referrer-Policy: no-referrer` a form
        // post otherwise carries only `Origin: null`.
        let same_site = req.header_str("sec-fetch-site") == Some("same-origin");
        if !same_site
            && !csrf::same_origin(host, req.header_str("origin"), req.header_str("referer"))
        {
            return Err(refuse());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use blitz_worker::{Peer, Version};

    use super::*;
    use crate::auth::Principal;
    use crate::store::users::User;

    fn req(method: &'static str, path: &'static str) -> Request<'static> {
        Request {
            method,
            path,
            query: "",
            version: Version::Http11,
            headers: &[],
            body: b"",
            peer: Peer::Unix,
        }
    }

    fn route(access: Access, kind: Kind) -> Route {
        use super::super::routes::{api, page};
        let mut route = match kind {
            Kind::Api => api("GET", "/admin/users/<id>", |_| Ok(Response::new(204))),
            Kind::Page => page("/admin/users/<id>", |_| Ok(Response::new(204))),
        };
        route.access = access;
        route
    }

    fn user(is_admin: bool) -> Identity {
        user_with(is_admin, false)
    }

    fn user_with(is_admin: bool, two_factor: bool) -> Identity {
        Identity::User(Principal {
            user: User {
                id: 1,
                email: "u@x.io".into(),
                password_hash: String::new(),
                is_admin,
                disabled: false,
                verified: true,
                created_at: 0,
                two_factor,
            },
            via: Via::Bearer { token_id: 1 },
        })
    }

    #[test]
    fn pages_redirect_to_login_and_api_answers_401() {
        let c = Config::for_tests();
        let n = Notice::default();
        let r = req("GET", "/admin/users/7");
        let page = check(
            &route(Access::User, Kind::Page),
            &Identity::Anonymous,
            &r,
            &c,
            &n,
        )
        .unwrap_err();
        assert_eq!(page.status, 303);
        let location = page.headers.iter().find(|(k, _)| *k == "Location").unwrap();
        assert_eq!(location.1, "/login?next=%2Fadmin%2Fusers%2F7");
        let api = check(
            &route(Access::User, Kind::Api),
            &Identity::Anonymous,
            &r,
            &c,
            &n,
        )
        .unwrap_err();
        assert_eq!(api.status, 401);
    }

    #[test]
    fn admin_routes_need_the_role() {
        let c = Config::for_tests();
        let n = Notice::default();
        let r = req("GET", "/admin/users/7");
        let page = check(&route(Access::Admin, Kind::Page), &user(false), &r, &c, &n).unwrap_err();
        assert_eq!(page.status, 403);
        assert!(page.body.as_slice().starts_with(b"<!doctype html>"));
        assert!(check(&route(Access::Admin, Kind::Api), &user(true), &r, &c, &n).is_ok());
        assert!(check(
            &route(Access::Optional, Kind::Page),
            &Identity::Anonymous,
            &r,
            &c,
            &n
        )
        .is_ok());
    }

    #[test]
    fn admin_require_2fa_refuses_admins_without_it_and_says_how() {
        let mut c = Config::for_tests();
        let n = Notice::default();
        let r = req("GET", "/admin/users/7");
        let (plain, enrolled) = (user_with(true, false), user_with(true, true));
        assert!(check(&route(Access::Admin, Kind::Api), &plain, &r, &c, &n).is_ok());
        c.admin_require_2fa = true;
        let api = check(&route(Access::Admin, Kind::Api), &plain, &r, &c, &n).unwrap_err();
        assert_eq!(api.status, 403);
        let body = String::from_utf8_lossy(api.body.as_slice()).into_owned();
        assert!(body.contains("/api/auth/2fa/setup"), "{body}");
        let page = check(&route(Access::Admin, Kind::Page), &plain, &r, &c, &n).unwrap_err();
        assert_eq!(page.status, 403);
        let body = String::from_utf8_lossy(page.body.as_slice()).into_owned();
        assert!(body.contains("href=\"/settings#two-factor\""), "{body}");
        for kind in [Kind::Api, Kind::Page] {
            assert!(check(&route(Access::Admin, kind), &enrolled, &r, &c, &n).is_ok());
            // Their own pages and the enrolment routes stay open.
            assert!(check(&route(Access::User, kind), &plain, &r, &c, &n).is_ok());
        }
    }
}

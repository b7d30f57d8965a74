//! Matching a request to the routing table (`routes`): path templates with
//! `<name>` segments, `HEAD` served by `GET`, and the `Allow` list of a 405.

use super::routes::{Route, ROUTES};

/// Paths whose last segment is a one-time secret (the links in our mails).
const SECRET_PATHS: [(&str, &str); 2] = [
    ("/verify/", "/verify/<token>"),
    ("/reset/", "/reset/<token>"),
];

/// The path as logs and worker slots may show it: one-time tokens are replaced by
/// `<token>`, since anyone reading logs could otherwise use a live reset link.
pub fn loggable_path(path: &str) -> &str {
    SECRET_PATHS
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or(path, |(_, template)| template)
}

/// Up to four `<name>` captures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Params<'p> {
    items: [(&'static str, &'p str); 4],
    len: usize,
}

impl<'p> Params<'p> {
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.items[..self.len]
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

#[derive(Debug)]
pub enum Match<'p> {
    Found {
        route: &'static Route,
        params: Params<'p>,
    },
    /// The path exists with other methods; `allow` is the `Allow` header value.
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Finds the route for `method` and `path`. `HEAD` is served by `GET` routes.
pub fn route<'p>(method: &str, path: &'p str) -> Match<'p> {
    let lookup = if method == "HEAD" { "GET" } else { method };
    let mut allowed: Vec<&'static str> = Vec::new();
    for r in &ROUTES {
        let Some(params) = match_template(r.path, r.fixed_len, path) else {
            continue;
        };
        if r.method == lookup {
            return Match::Found { route: r, params };
        }
        allowed.push(r.method);
        if r.method == "GET" {
            allowed.push("HEAD");
        }
    }
    if allowed.is_empty() {
        return Match::NotFound;
    }
    allowed.sort_unstable();
    allowed.dedup();
    Match::MethodNotAllowed {
        allow: allowed.join(", "),
    }
}

/// The length of `template`'s fixed start: up to its first `<name>` segment, or
/// all of it. Computed once per route (`Route::fixed_len`), so that matching a
/// request does not search every template of the table for `<` again.
pub const fn fixed_len(template: &str) -> usize {
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// `template` (whose fixed start is `fixed` bytes long) against `path`. Most
/// templates are rejected by their fixed start alone; the segments after it are
/// compared one by one (a `<name>` starts a segment, so both rests split alike).
fn match_template<'p>(template: &'static str, fixed: usize, path: &'p str) -> Option<Params<'p>> {
    if fixed == template.len() {
        return (template == path).then(Params::default);
    }
    if !path.starts_with(&template[..fixed]) {
        return None;
    }
    let mut params = Params::default();
    let mut t = template[fixed..].split('/');
    let mut p = path[fixed..].split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if let Some(name) = ts.strip_prefix('<').and_then(|n| n.strip_suffix('>')) {
                    if ps.is_empty() || params.len == params.items.len() {
                        return None;
                    }
                    params.items[params.len] = (name, ps);
                    params.len += 1;
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_static_routes_and_head() {
        let id = |m: Match<'_>| match m {
            Match::Found { route, .. } => Some((route.method, route.path)),
            _ => None,
        };
        assert_eq!(id(route("GET", "/healthz")), Some(("GET", "/healthz")));
        assert_eq!(id(route("HEAD", "/livez")), Some(("GET", "/livez")));
        assert_eq!(
            id(route("DELETE", "/api/auth/tokens/7")),
            Some(("DELETE", "/api/auth/tokens/<id>"))
        );
        assert!(matches!(route("GET", "/nope"), Match::NotFound));
        match route("POST", "/readyz") {
            Match::MethodNotAllowed { allow } => assert_eq!(allow, "GET, HEAD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn templates_capture_segments() {
        let m = |t: &'static str, p: &'static str| match_template(t, fixed_len(t), p);
        let p = m(
            "/api/admin/users/<id>/bot/<op>",
            "/api/admin/users/7/bot/start",
        )
        .unwrap();
        assert_eq!((p.get("id"), p.get("op")), (Some("7"), Some("start")));
        assert!(m("/a/<id>", "/a/").is_none());
        assert!(m("/a/<id>", "/a/1/2").is_none());
        assert!(m("/a/<id>", "/b/1").is_none());
        assert!(m("/a/b", "/a/b").is_some());
        assert!(m("/a/b", "/a/bc").is_none());
        assert!(m("/a/<id>/b", "/a/1/c").is_none());
        assert!(m("/a/<id>/b", "/a/1/b").is_some());
    }

    /// Matching splits the rests after the fixed start: it must end a segment.
    #[test]
    fn every_name_starts_a_segment() {
        for r in &ROUTES {
            assert_eq!(r.fixed_len, fixed_len(r.path), "{}", r.path);
            if r.fixed_len < r.path.len() {
                assert!(r.path[..r.fixed_len].ends_with('/'), "{}", r.path);
            }
        }
    }

    /// `POST /login` has no session yet: it checks the login form's own token.
    #[test]
    fn only_the_logged_out_account_routes_skip_csrf() {
        let exempt: Vec<&str> = ROUTES
            .iter()
            .filter(|r| !r.csrf && r.method != "GET")
            .map(|r| r.path)
            .collect();
        assert_eq!(
            exempt,
            [
                "/api/auth/register",
                "/api/auth/verify",
                "/api/auth/login",
                "/api/auth/forgot",
                "/api/auth/reset",
                "/reset/<token>",
                "/api/auth/2fa/verify",
                "/login",
                "/login/2fa"
            ]
        );
    }

    #[test]
    fn one_time_tokens_never_reach_logs() {
        assert_eq!(loggable_path("/reset/abcdef"), "/reset/<token>");
        assert_eq!(loggable_path("/verify/abcdef"), "/verify/<token>");
        assert_eq!(loggable_path("/api/auth/me"), "/api/auth/me");
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}

//! The one routing table: every route path of the product appears here once.

/// What a route is; handlers are chosen by this, metrics label by the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Healthz,
    Livez,
    Readyz,
}

pub struct Route {
    pub method: &'static str,
    /// Path template; `<name>` matches one non-empty segment.
    pub path: &'static str,
    pub id: RouteId,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/healthz",
        id: RouteId::Healthz,
    },
    Route {
        method: "GET",
        path: "/livez",
        id: RouteId::Livez,
    },
    Route {
        method: "GET",
        path: "/readyz",
        id: RouteId::Readyz,
    },
];

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
        id: RouteId,
        template: &'static str,
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
    for r in ROUTES {
        let Some(params) = match_template(r.path, path) else {
            continue;
        };
        if r.method == lookup {
            return Match::Found {
                id: r.id,
                template: r.path,
                params,
            };
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

fn match_template<'p>(template: &'static str, path: &'p str) -> Option<Params<'p>> {
    if !template.contains('<') {
        return (template == path).then(Params::default);
    }
    let mut params = Params::default();
    let mut t = template.split('/');
    let mut p = path.split('/');
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
        assert!(matches!(
            route("GET", "/healthz"),
            Match::Found {
                id: RouteId::Healthz,
                ..
            }
        ));
        assert!(matches!(
            route("HEAD", "/livez"),
            Match::Found {
                id: RouteId::Livez,
                ..
            }
        ));
        assert!(matches!(route("GET", "/nope"), Match::NotFound));
        match route("POST", "/readyz") {
            Match::MethodNotAllowed { allow } => assert_eq!(allow, "GET, HEAD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn templates_capture_segments() {
        let p = match_template(
            "/api/admin/users/<id>/bot/<op>",
            "/api/admin/users/7/bot/start",
        )
        .unwrap();
        assert_eq!((p.get("id"), p.get("op")), (Some("7"), Some("start")));
        assert!(match_template("/a/<id>", "/a/").is_none());
        assert!(match_template("/a/<id>", "/a/1/2").is_none());
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

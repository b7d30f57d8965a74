//! The one routing table: every route path of the product appears here once.

/// What a route is; handlers are chosen by this, metrics label by the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Healthz,
    Livez,
    Readyz,
    Metrics,
    Register,
    VerifyApi,
    VerifyPage,
    Login,
    Logout,
    Me,
    ChangePassword,
    Forgot,
    Reset,
    ResetPage,
    ResetSubmit,
    CreateToken,
    ListTokens,
    DeleteToken,
    AdminUpdateUser,
    BotStart,
    BotStop,
    BotStatus,
    BotRecover,
    BotEvents,
    BotConfigGet,
    BotConfigPut,
    Trades,
    PnlSummary,
    AdminOverview,
    AdminUsers,
    AdminBotStart,
    AdminBotStop,
    AdminBotRecover,
    AdminBotStatus,
    AdminPnl,
    Status,
    MaintenanceOn,
    MaintenanceOff,
    Banner,
    BannerClear,
    DashboardPage,
    LoginPage,
    RegisterPage,
    ForgotPage,
    SettingsPage,
    PnlPage,
    AdminPage,
    AdminUserPage,
    Asset,
}

/// Who may call a route. `Public` routes never look at credentials (no database
/// read); `Optional` resolves the identity but admits anonymous callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Optional,
    User,
    Admin,
}

/// How refusals are answered: JSON errors for the API, a redirect to `/login` or an
/// HTML error page for pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Api,
    Page,
}

#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    /// Path template; `<name>` matches one non-empty segment.
    pub path: &'static str,
    pub id: RouteId,
    pub access: Access,
    pub kind: Kind,
    /// Whether session-authenticated unsafe requests need the CSRF token (false for
    /// login, register, verify, forgot and reset).
    pub csrf: bool,
}

const fn r(
    method: &'static str,
    path: &'static str,
    id: RouteId,
    access: Access,
    kind: Kind,
    csrf: bool,
) -> Route {
    Route {
        method,
        path,
        id,
        access,
        kind,
        csrf,
    }
}

use Access::{Admin, Optional, Public, User};
use Kind::{Api, Page};

#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    r("GET",    "/healthz",                 RouteId::Healthz,         Public,   Api,  true),
    r("GET",    "/livez",                   RouteId::Livez,           Public,   Api,  true),
    r("GET",    "/readyz",                  RouteId::Readyz,          Public,   Api,  true),
    r("GET",    "/metrics",                 RouteId::Metrics,         Public,   Api,  true),
    r("POST",   "/api/auth/register",       RouteId::Register,        Public,   Api,  false),
    r("POST",   "/api/auth/verify",         RouteId::VerifyApi,       Public,   Api,  false),
    r("GET",    "/verify/<token>",          RouteId::VerifyPage,      Public,   Page, false),
    r("POST",   "/api/auth/login",          RouteId::Login,           Public,   Api,  false),
    r("POST",   "/api/auth/logout",         RouteId::Logout,          User,     Api,  true),
    r("GET",    "/api/auth/me",             RouteId::Me,              User,     Api,  true),
    r("POST",   "/api/auth/password",       RouteId::ChangePassword,  User,     Api,  true),
    r("POST",   "/api/auth/forgot",         RouteId::Forgot,          Public,   Api,  false),
    r("POST",   "/api/auth/reset",          RouteId::Reset,           Public,   Api,  false),
    r("GET",    "/reset/<token>",           RouteId::ResetPage,       Public,   Page, false),
    r("POST",   "/reset/<token>",           RouteId::ResetSubmit,     Public,   Page, false),
    r("POST",   "/api/auth/tokens",         RouteId::CreateToken,     User,     Api,  true),
    r("GET",    "/api/auth/tokens",         RouteId::ListTokens,      User,     Api,  true),
    r("DELETE", "/api/auth/tokens/<id>",    RouteId::DeleteToken,     User,     Api,  true),
    r("PATCH",  "/api/admin/users/<id>",    RouteId::AdminUpdateUser, Admin,    Api,  true),
    r("POST",   "/api/bot/start",           RouteId::BotStart,        User,     Api,  true),
    r("POST",   "/api/bot/stop",            RouteId::BotStop,         User,     Api,  true),
    r("GET",    "/api/bot/status",          RouteId::BotStatus,       User,     Api,  true),
    r("POST",   "/api/bot/recover",         RouteId::BotRecover,      User,     Api,  true),
    r("GET",    "/api/bot/events",          RouteId::BotEvents,       User,     Api,  true),
    r("GET",    "/api/bot/config",          RouteId::BotConfigGet,    User,     Api,  true),
    r("PUT",    "/api/bot/config",          RouteId::BotConfigPut,    User,     Api,  true),
    r("GET",    "/api/trades",              RouteId::Trades,          User,     Api,  true),
    r("GET",    "/api/pnl/summary",         RouteId::PnlSummary,      User,     Api,  true),
    r("GET",    "/admin/simple/status",     RouteId::AdminOverview,   Admin,    Api,  true),
    r("GET",    "/api/admin/users",         RouteId::AdminUsers,      Admin,    Api,  true),
    r("POST",   "/api/admin/users/<id>/bot/start",   RouteId::AdminBotStart,   Admin, Api, true),
    r("POST",   "/api/admin/users/<id>/bot/stop",    RouteId::AdminBotStop,    Admin, Api, true),
    r("POST",   "/api/admin/users/<id>/bot/recover", RouteId::AdminBotRecover, Admin, Api, true),
    r("GET",    "/api/admin/users/<id>/bot/status",  RouteId::AdminBotStatus,  Admin, Api, true),
    r("GET",    "/api/admin/pnl/summary",   RouteId::AdminPnl,        Admin,    Api,  true),
    r("GET",    "/api/status",              RouteId::Status,          Public,   Api,  true),
    r("POST",   "/admin/maintenance/enable",  RouteId::MaintenanceOn,  Admin,  Api,  true),
    r("POST",   "/admin/maintenance/disable", RouteId::MaintenanceOff, Admin,  Api,  true),
    r("POST",   "/admin/banner",            RouteId::Banner,          Admin,    Api,  true),
    r("POST",   "/admin/banner/clear",      RouteId::BannerClear,     Admin,    Api,  true),
    r("GET",    "/",                        RouteId::DashboardPage,   User,     Page, true),
    r("GET",    "/login",                   RouteId::LoginPage,       Optional, Page, true),
    r("GET",    "/register",                RouteId::RegisterPage,    Public,   Page, true),
    r("GET",    "/forgot",                  RouteId::ForgotPage,      Public,   Page, true),
    r("GET",    "/settings",                RouteId::SettingsPage,    User,     Page, true),
    r("GET",    "/pnl",                     RouteId::PnlPage,         User,     Page, true),
    r("GET",    "/admin",                   RouteId::AdminPage,       Admin,    Page, true),
    r("GET",    "/admin/users/<id>",        RouteId::AdminUserPage,   Admin,    Page, true),
    r("GET",    "/static/<hash>/<name>",    RouteId::Asset,           Public,   Page, true),
];

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
    for r in ROUTES {
        let Some(params) = match_template(r.path, path) else {
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
        let id = |m: Match<'_>| match m {
            Match::Found { route, .. } => Some(route.id),
            _ => None,
        };
        assert_eq!(id(route("GET", "/healthz")), Some(RouteId::Healthz));
        assert_eq!(id(route("HEAD", "/livez")), Some(RouteId::Livez));
        assert_eq!(
            id(route("DELETE", "/api/auth/tokens/7")),
            Some(RouteId::DeleteToken)
        );
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
    fn only_the_c46_exemptions_skip_csrf() {
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
                "/reset/<token>"
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

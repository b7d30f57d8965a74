//! The one routing table: every route of the product appears here once, with all
//! that applies to it — handler, who may call it, CSRF, rate-limit group, whether
//! maintenance pauses it, whether its success revokes cached credentials. Adding a
//! route touches this table only; `WebApp` applies the policies in a fixed order.

use blitz_worker::Response;

use super::api::{
    admin_bots, admin_user_bots, admin_users, auth, bot, bot_config, bots, exchange_accounts,
    maintenance, markets, openapi, paper, per_bot, pnl, preview, tokens, trades_csv, two_factor,
    ApiResult,
};
use super::ctx::Ctx;
use super::pages::{
    account, admin as admin_page, assets, dashboard, exchange_accounts as exchange_accounts_page,
    login, pnl as pnl_page, settings, two_factor as two_factor_page, PageResult,
};
use super::router;
use crate::coord::Group;

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

/// Endpoints answered before credentials, limits or the database are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Healthz,
    Livez,
    Readyz,
    Metrics,
}

/// What answers a route.
#[derive(Clone, Copy)]
pub enum Answer {
    Probe(Probe),
    /// A JSON handler; its errors become the API's JSON errors.
    Api(fn(&mut Ctx<'_, '_>) -> ApiResult),
    /// A page; its errors become HTML error pages.
    Page(fn(&mut Ctx<'_, '_>) -> PageResult),
    /// A page that builds its whole response (mail links, login forms, assets).
    Raw(fn(&mut Ctx<'_, '_>) -> Response),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Probe(p) => write!(f, "Probe({p:?})"),
            Answer::Api(_) => f.write_str("Api"),
            Answer::Page(_) => f.write_str("Page"),
            Answer::Raw(_) => f.write_str("Raw"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Path template; `<name>` matches one non-empty segment.
    pub path: &'static str,
    /// `router::fixed_len(path)`: where the first `<name>` segment starts.
    pub fixed_len: usize,
    pub handler: Answer,
    pub access: Access,
    /// Whether session-authenticated unsafe requests need the CSRF token. Only the
    /// account routes a logged-out browser uses (login, register, verify, forgot,
    /// reset) are exempt.
    pub csrf: bool,
    /// The rate-limit group counted before the access check, so anonymous callers
    /// count by address.
    pub limit: Option<Group>,
    /// While maintenance is on, non-admin callers get 503.
    pub paused_by_maintenance: bool,
    /// Success may end sessions or tokens, or change a user's role or state: cached
    /// identities must not outlive it.
    pub revokes_credentials: bool,
    /// The handler hashes or checks a password: it runs only within the worker's
    /// hashing budget (`hash_budget`), else 503.
    pub hashes_passwords: bool,
}

impl Route {
    pub fn kind(&self) -> Kind {
        match self.handler {
            Answer::Probe(_) | Answer::Api(_) => Kind::Api,
            Answer::Page(_) | Answer::Raw(_) => Kind::Page,
        }
    }

    const fn new(method: &'static str, path: &'static str, handler: Answer) -> Route {
        Route {
            method,
            path,
            fixed_len: router::fixed_len(path),
            handler,
            access: Access::Public,
            csrf: true,
            limit: None,
            paused_by_maintenance: false,
            revokes_credentials: false,
            hashes_passwords: false,
        }
    }

    const fn user(mut self) -> Route {
        self.access = Access::User;
        self
    }

    const fn admin(mut self) -> Route {
        self.access = Access::Admin;
        self
    }

    const fn optional(mut self) -> Route {
        self.access = Access::Optional;
        self
    }

    const fn no_csrf(mut self) -> Route {
        self.csrf = false;
        self
    }

    const fn limit(mut self, group: Group) -> Route {
        self.limit = Some(group);
        self
    }

    const fn paused_by_maintenance(mut self) -> Route {
        self.paused_by_maintenance = true;
        self
    }

    const fn revokes(mut self) -> Route {
        self.revokes_credentials = true;
        self
    }

    const fn hashes(mut self) -> Route {
        self.hashes_passwords = true;
        self
    }
}

const fn probe(path: &'static str, p: Probe) -> Route {
    Route::new("GET", path, Answer::Probe(p))
}

pub const fn api(
    method: &'static str,
    path: &'static str,
    f: fn(&mut Ctx<'_, '_>) -> ApiResult,
) -> Route {
    Route::new(method, path, Answer::Api(f))
}

pub const fn page(path: &'static str, f: fn(&mut Ctx<'_, '_>) -> PageResult) -> Route {
    Route::new("GET", path, Answer::Page(f))
}

const fn raw(
    method: &'static str,
    path: &'static str,
    f: fn(&mut Ctx<'_, '_>) -> Response,
) -> Route {
    Route::new(method, path, Answer::Raw(f))
}

#[rustfmt::skip]
pub static ROUTES: [Route; 90] = [
    probe("/healthz", Probe::Healthz),
    probe("/livez", Probe::Livez),
    probe("/readyz", Probe::Readyz),
    probe("/metrics", Probe::Metrics),

    // Accounts
    api("POST",   "/api/auth/register",    auth::register).no_csrf().limit(Group::Register).hashes(),
    api("POST",   "/api/auth/verify",      auth::verify).no_csrf(),
    raw("GET",    "/verify/<token>",       account::verify).no_csrf(),
    api("POST",   "/api/auth/login",       auth::login).no_csrf().hashes(),
    api("POST",   "/api/auth/logout",      auth::logout).user().revokes(),
    api("GET",    "/api/auth/me",          auth::me).user(),
    api("POST",   "/api/auth/password",    auth::change_password).user().revokes().hashes(),
    api("POST",   "/api/auth/forgot",      auth::forgot).no_csrf(),
    api("POST",   "/api/auth/reset",       auth::reset).no_csrf().revokes().hashes(),
    raw("GET",    "/reset/<token>",        account::reset_page).no_csrf(),
    raw("POST",   "/reset/<token>",        account::reset_submit).no_csrf().revokes().hashes(),
    api("POST",   "/api/auth/tokens",      tokens::create).user(),
    api("GET",    "/api/auth/tokens",      tokens::list).user(),
    api("DELETE", "/api/auth/tokens/<id>", tokens::delete).user().revokes(),
    api("POST",   "/api/auth/2fa/setup",   two_factor::setup).user(),
    api("POST",   "/api/auth/2fa/enable",  two_factor::enable).user().revokes(),
    api("POST",   "/api/auth/2fa/verify",  two_factor::verify).no_csrf(),
    api("POST",   "/api/auth/2fa/disable", two_factor::disable).user().revokes().hashes(),
    api("PATCH",  "/api/admin/users/<id>", admin_users::update).admin().revokes(),

    // Bot control, configuration, trades
    api("POST", "/api/bot/start",   bot::start).user().limit(Group::Start).paused_by_maintenance(),
    api("POST", "/api/bot/stop",    bot::stop).user().limit(Group::Stop).paused_by_maintenance(),
    api("GET",  "/api/bot/status",  bot::status).user().limit(Group::Status),
    api("GET",  "/api/paper/account", paper::account).user().limit(Group::Status),
    api("POST", "/api/paper/account/reset", paper::reset).user().limit(Group::Stop),
    api("POST", "/api/bot/recover", bot::recover).user().limit(Group::Recover).paused_by_maintenance(),
    api("GET",  "/api/bot/orders",  bot::orders).user().limit(Group::Status),
    api("GET",  "/api/bot/events",  bot::events).user(),
    api("GET",  "/api/bot/config",  bot_config::get).user(),
    api("PUT",  "/api/bot/config",  bot_config::put).user(),
    api("GET",  "/api/trades",      pnl::list).user(),
    api("GET",  "/api/trades.csv",  trades_csv::export).user(),
    api("GET",  "/api/pnl/summary", pnl::summary).user(),

    // Several bots (C14): the same policies per bot as their `/api/bot/*` twins;
    // limits and the guard stay the user's, across all their bots.
    api("GET",    "/api/bots",                   bots::list).user().limit(Group::Status),
    api("POST",   "/api/bots",                   bots::create).user(),
    api("GET",    "/api/bots/<id>",              bots::get).user().limit(Group::Status),
    api("PUT",    "/api/bots/<id>",              bots::update).user(),
    api("DELETE", "/api/bots/<id>",              bots::delete).user(),
    api("POST",   "/api/bots/<id>/start",        per_bot::start).user().limit(Group::Start).paused_by_maintenance(),
    api("POST",   "/api/bots/<id>/stop",         per_bot::stop).user().limit(Group::Stop).paused_by_maintenance(),
    api("POST",   "/api/bots/<id>/recover",      per_bot::recover).user().limit(Group::Recover).paused_by_maintenance(),
    api("GET",    "/api/bots/<id>/status",       per_bot::status).user().limit(Group::Status),
    api("GET",    "/api/bots/<id>/config",       per_bot::config).user(),
    api("PUT",    "/api/bots/<id>/config",       per_bot::put_config).user(),
    api("GET",    "/api/bots/<id>/orders",       per_bot::orders).user().limit(Group::Status),
    api("GET",    "/api/bots/<id>/events",       per_bot::events).user(),
    api("GET",    "/api/bots/<id>/trades",       per_bot::trades).user(),
    api("GET",    "/api/bots/<id>/pnl/summary",  per_bot::pnl_summary).user(),
    api("POST",   "/api/bots/<id>/preview",      preview::preview).user(),
    api("GET",    "/api/exchange-accounts",      exchange_accounts::list).user(),
    api("POST",   "/api/exchange-accounts",      exchange_accounts::create).user(),
    api("DELETE", "/api/exchange-accounts/<id>", exchange_accounts::delete).user(),
    api("PUT",    "/api/exchange-accounts/<id>", exchange_accounts::update).user(),

    // Market data: public, but each miss costs exchange budget, so signed-in only.
    api("GET",  "/api/markets",         markets::list).user().limit(Group::Status),
    api("GET",  "/api/markets/candles", markets::candles).user().limit(Group::Status),

    // Admin
    api("GET",  "/admin/simple/status",                admin_bots::overview).admin(),
    api("GET",  "/api/admin/users",                    admin_bots::list).admin(),
    api("POST", "/api/admin/users/<id>/bot/start",     admin_bots::start).admin(),
    api("POST", "/api/admin/users/<id>/bot/stop",      admin_bots::stop).admin(),
    api("POST", "/api/admin/users/<id>/bot/recover",   admin_bots::recover).admin(),
    api("GET",  "/api/admin/users/<id>/bot/status",    admin_bots::status).admin(),
    api("GET",  "/api/admin/pnl/summary",              pnl::admin_summary).admin(),
    api("GET",  "/api/admin/users/<id>",               admin_user_bots::user).admin(),
    api("POST", "/api/admin/bots/<id>/start",          admin_user_bots::start).admin(),
    api("POST", "/api/admin/bots/<id>/stop",           admin_user_bots::stop).admin(),
    api("POST", "/api/admin/bots/<id>/recover",        admin_user_bots::recover).admin(),

    // Status, maintenance and banner
    api("GET",  "/api/status",                 maintenance::status),
    // The API's description: static, public, no database.
    api("GET",  "/api/openapi.json",           openapi::document),
    api("POST", "/admin/maintenance/enable",   maintenance::enable).admin(),
    api("POST", "/admin/maintenance/disable",  maintenance::disable).admin(),
    api("POST", "/admin/banner",               maintenance::banner).admin(),
    api("POST", "/admin/banner/clear",         maintenance::clear_banner).admin(),

    // Pages
    page("/",                 dashboard::dashboard).user(),
    raw("GET", "/login",      login::login).optional(),
    raw("POST", "/login",     login::submit).no_csrf().hashes(),
    raw("POST", "/login/2fa", login::submit_code).no_csrf(),
    raw("GET", "/register",   login::register),
    raw("GET", "/forgot",     login::forgot),
    page("/settings",         settings::settings).user(),
    page("/accounts",         exchange_accounts_page::accounts).user(),
    raw("POST", "/settings/2fa/setup",   two_factor_page::setup).user(),
    raw("POST", "/settings/2fa/enable",  two_factor_page::enable).user().revokes(),
    raw("POST", "/settings/2fa/disable", two_factor_page::disable).user().revokes().hashes(),
    page("/pnl",              pnl_page::pnl_page).user(),
    page("/admin",            admin_page::admin_page).admin(),
    page("/admin/users/<id>", admin_page::user_page).admin(),
    raw("GET", "/static/<hash>/<name>", |ctx| assets::serve(ctx)),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(keep: impl Fn(&Route) -> bool) -> Vec<(&'static str, &'static str)> {
        ROUTES
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.method, r.path))
            .collect()
    }

    #[test]
    fn maintenance_pauses_only_the_bot_commands() {
        assert_eq!(
            paths(|r| r.paused_by_maintenance),
            [
                ("POST", "/api/bot/start"),
                ("POST", "/api/bot/stop"),
                ("POST", "/api/bot/recover"),
                ("POST", "/api/bots/<id>/start"),
                ("POST", "/api/bots/<id>/stop"),
                ("POST", "/api/bots/<id>/recover"),
            ]
        );
    }

    #[test]
    fn the_bot_routes_and_registration_are_rate_limited_by_their_group() {
        // A bot's route counts in the group of its `/api/bot/*` twin (per user,
        // across all their bots); reading the bot objects counts as a status read.
        let limited: Vec<_> = ROUTES
            .iter()
            .filter_map(|r| r.limit.map(|g| (r.path, g)))
            .collect();
        assert_eq!(
            limited,
            [
                ("/api/auth/register", Group::Register),
                ("/api/bot/start", Group::Start),
                ("/api/bot/stop", Group::Stop),
                ("/api/bot/status", Group::Status),
                ("/api/paper/account", Group::Status),
                ("/api/paper/account/reset", Group::Stop),
                ("/api/bot/recover", Group::Recover),
                ("/api/bot/orders", Group::Status),
                ("/api/bots", Group::Status),
                ("/api/bots/<id>", Group::Status),
                ("/api/bots/<id>/start", Group::Start),
                ("/api/bots/<id>/stop", Group::Stop),
                ("/api/bots/<id>/recover", Group::Recover),
                ("/api/bots/<id>/status", Group::Status),
                ("/api/bots/<id>/orders", Group::Status),
                ("/api/markets", Group::Status),
                ("/api/markets/candles", Group::Status),
            ]
        );
    }

    #[test]
    fn credential_changes_revoke_cached_identities() {
        assert_eq!(
            paths(|r| r.revokes_credentials),
            [
                ("POST", "/api/auth/logout"),
                ("POST", "/api/auth/password"),
                ("POST", "/api/auth/reset"),
                ("POST", "/reset/<token>"),
                ("DELETE", "/api/auth/tokens/<id>"),
                ("POST", "/api/auth/2fa/enable"),
                ("POST", "/api/auth/2fa/disable"),
                ("PATCH", "/api/admin/users/<id>"),
                ("POST", "/settings/2fa/enable"),
                ("POST", "/settings/2fa/disable"),
            ]
        );
    }

    #[test]
    fn password_hashing_routes_run_within_the_budget() {
        assert_eq!(
            paths(|r| r.hashes_passwords),
            [
                ("POST", "/api/auth/register"),
                ("POST", "/api/auth/login"),
                ("POST", "/api/auth/password"),
                ("POST", "/api/auth/reset"),
                ("POST", "/reset/<token>"),
                ("POST", "/api/auth/2fa/disable"),
                ("POST", "/login"),
                ("POST", "/settings/2fa/disable"),
            ]
        );
    }

    #[test]
    fn probes_are_public_api_routes() {
        for r in ROUTES
            .iter()
            .filter(|r| matches!(r.handler, Answer::Probe(_)))
        {
            assert_eq!(
                (r.access, r.kind(), r.limit),
                (Access::Public, Kind::Api, None)
            );
        }
        let pages: Vec<_> = ROUTES.iter().filter(|r| r.kind() == Kind::Page).collect();
        assert!(pages.iter().all(|r| !r.path.starts_with("/api/")));
    }
}

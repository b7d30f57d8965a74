//! `WebApp`: the worker's `Handler`. Middleware runs in this order:
//! request id → security headers (the runtime's common block) → client IP → route →
//! auth (session or bearer) → CSRF → handler → access log and slot bookkeeping.

use std::time::Instant;

use blitz_master::{Scoreboard, SlotHandle};
use blitz_worker::{Handler, Rejection, Request, Response, Version};
use slog::{error, Logger};

use super::api;
use super::client_ip::client_ip;
use super::ctx::Ctx;
use super::guard;
use super::hash_budget::HashBudget;
use super::health::Health;
use super::limits::{self, Verdict};
use super::notice::{NoticeCache, DEFAULT_MESSAGE};
use super::pages;
use super::reply;
use super::request_id::RequestIds;
use super::router::{self, Match};
use super::routes::{Access, Answer, Kind, Probe, Route};
use super::security;
use crate::auth::cache::IdentityCache;
use crate::auth::identity::{self, Credentials, IdentityError};
use crate::auth::Identity;
use crate::config::Config;
use crate::coord::bus::Bus;
use crate::coord::Coordinator;
use crate::log::{AccessLog, AccessRecord};
use crate::metrics;
use crate::store::settings::Notice;

/// The `endpoint` label of requests that matched no route.
const OTHER: &str = "other";
use crate::store::Db;

pub struct WebApp {
    config: Config,
    log: Logger,
    access: Option<AccessLog>,
    common: Vec<u8>,
    ids: RequestIds,
    health: Health,
    notice: NoticeCache,
    identities: IdentityCache,
    coord: Coordinator,
    /// The cluster's change counters, read at most every `bus::POLL`.
    bus: Bus,
    prices: crate::market::Board,
    /// The share of this worker's time that password hashing may take.
    hashing: HashBudget,
    db: Db,
    scoreboard: Scoreboard,
    slot: SlotHandle,
    /// Scratch for the slot's "METHOD PATH ID" text, reused across requests.
    current: Vec<u8>,
    /// The route template of the request being served (`other` if none), for
    /// metrics.
    endpoint: &'static str,
}

impl WebApp {
    pub fn new(
        config: Config,
        log: Logger,
        access: Option<AccessLog>,
        scoreboard: Scoreboard,
        slot: SlotHandle,
    ) -> WebApp {
        WebApp {
            common: security::header_block(&config.security_csp),
            health: match config.database {
                crate::store::Engine::Postgres(_) => Health::new(&config.app_version)
                    .in_cluster(&config.instance_name, config.bot_lease_seconds),
                crate::store::Engine::Sqlite(_) => Health::new(&config.app_version),
            },
            notice: NoticeCache::new(&scoreboard),
            identities: IdentityCache::new(&scoreboard),
            coord: Coordinator::new(&scoreboard, &config, &log),
            bus: Bus::new(),
            prices: crate::market::Board::of(&scoreboard),
            hashing: HashBudget::default(),
            db: Db::new(&config.database, 4),
            ids: RequestIds::new(),
            current: Vec::with_capacity(256),
            endpoint: OTHER,
            config,
            log,
            access,
            scoreboard,
            slot,
        }
    }

    pub fn access_log(&self) -> Option<&AccessLog> {
        self.access.as_ref()
    }

    /// Routes and runs the request; returns the response and the caller's user id
    /// (for the access log).
    fn dispatch(&mut self, req: &Request<'_>) -> (Response, Option<i64>) {
        self.endpoint = OTHER;
        let (route, params) = match router::route(req.method, req.path) {
            Match::Found { route, params } => {
                self.endpoint = route.path;
                (route, params)
            }
            Match::MethodNotAllowed { allow } => {
                let refusal = if wants_html(req) {
                    let notice = self.page_notice();
                    let why = "This page cannot do that.";
                    pages::error_page(405, "Method not allowed", why, &notice)
                } else {
                    reply::error(405, "Method not allowed")
                };
                return (refusal.header("Allow", allow), None);
            }
            Match::NotFound if wants_html(req) => {
                return (pages::not_found(&self.page_notice()), None)
            }
            Match::NotFound => return (reply::error(404, "Not found"), None),
        };
        // Health checks touch neither credentials nor (for /healthz) the database.
        if let Answer::Probe(probe) = route.handler {
            return (self.probe(probe), None);
        }
        self.observe_cluster();
        let identity = match route.access {
            Access::Public => Identity::Anonymous,
            _ => match self.identify(req) {
                Ok(i) => i,
                // Page routes answer in HTML, whatever went wrong.
                Err(resp) if route.kind() == Kind::Page => {
                    let notice = self.page_notice();
                    let page = match resp.status {
                        401 => pages::error_page(
                            401,
                            "Not logged in",
                            "Your credentials were not accepted. Please log in again.",
                            &notice,
                        ),
                        _ => pages::error_page(
                            503,
                            "Service unavailable",
                            "The service cannot read its data right now. Please try again shortly.",
                            &notice,
                        ),
                    };
                    return (page, None);
                }
                Err(resp) => return (resp, None),
            },
        };
        let user_id = identity.user_id();
        // Before the rate limits: a request refused for want of CPU must not use up
        // the caller's registrations.
        if route.hashes_passwords {
            if let Err(retry_s) = self.hashing.admit() {
                return (self.busy(route, retry_s), user_id);
            }
        }
        let client = client_ip(req, &self.config.forwarded_allow_ips);
        // Rate limits: before the access check, so anonymous callers count by address.
        let limited = route
            .limit
            .map(|g| limits::admit(&self.coord, &self.config.rate_limits, g, &identity, &client));
        let resp = match limited {
            Some(Verdict::Refused(resp)) => return (resp, user_id),
            _ => self.authorized(route, params, identity, &client, req),
        };
        match limited {
            Some(Verdict::Allowed { limit, room }) => (limits::headers(resp, limit, room), user_id),
            _ => (resp, user_id),
        }
    }

    /// The access check, the maintenance rule, then the handler.
    fn authorized(
        &mut self,
        route: &'static Route,
        params: router::Params<'_>,
        identity: Identity,
        client: &str,
        req: &Request<'_>,
    ) -> Response {
        // Every page shows the notice; the API never reads it here.
        let page_notice = match route.kind() {
            Kind::Page => self.page_notice(),
            Kind::Api => Notice::default(),
        };
        if let Err(refusal) = guard::check(route, &identity, req, &self.config, &page_notice) {
            return refusal;
        }
        if route.paused_by_maintenance && !identity.is_admin() {
            if let Some(resp) = self.maintenance_refusal() {
                return resp;
            }
        }
        let mut ctx = Ctx {
            config: &self.config,
            db: &mut self.db,
            log: &self.log,
            notice: &mut self.notice,
            coord: &self.coord,
            prices: &self.prices,
            identity,
            client_ip: client,
            req,
            params,
            page_notice,
        };
        let hashed_before = crate::auth::password::hashing_time();
        let resp = match route.handler {
            Answer::Api(f) => api::respond(f(&mut ctx), ctx.log),
            Answer::Page(f) => {
                let page = f(&mut ctx);
                pages::respond(page, ctx.log, &ctx.page_notice)
            }
            Answer::Raw(f) => f(&mut ctx),
            // Answered in `dispatch` before credentials.
            Answer::Probe(_) => reply::error(404, "Not found"),
        };
        if route.hashes_passwords {
            // Only the hashing: a wait for the database lock is not the worker
            // hashing, and must not use up the budget of the requests behind it.
            let hashed = crate::auth::password::hashing_time().saturating_sub(hashed_before);
            self.hashing.spent(hashed);
        }
        if route.revokes_credentials && resp.status < 400 {
            self.identities.invalidate_all(&self.coord);
        }
        resp
    }

    /// 503 for a password route while this worker's hashing budget is spent.
    fn busy(&mut self, route: &Route, retry_s: u64) -> Response {
        let resp = match route.kind() {
            Kind::Page => pages::error_page(
                503,
                "Busy",
                "The server is checking many passwords right now. Please try again in a moment.",
                &self.page_notice(),
            ),
            Kind::Api => reply::json(
                503,
                &serde_json::json!({"error": "Server busy checking passwords; try again shortly",
                    "retry_after": retry_s}),
            ),
        };
        resp.header("Retry-After", retry_s.to_string())
    }

    /// Health and metrics: no credentials, and no database except for `/readyz`.
    fn probe(&mut self, probe: Probe) -> Response {
        match probe {
            Probe::Healthz => self.health.healthz(),
            Probe::Livez => self.health.livez(),
            Probe::Metrics => self.metrics(),
            Probe::Readyz => {
                let redis = self.coord.redis_state();
                self.health.readyz(&mut self.db, &self.scoreboard, redis)
            }
        }
    }

    /// `/metrics`: only with `ENABLE_METRICS`.
    fn metrics(&self) -> Response {
        if !self.config.enable_metrics {
            return reply::error(404, "Not found");
        }
        let info = metrics::AppInfo {
            version: &self.config.app_version,
            environment: &self.config.environment,
        };
        Response::new(200)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(metrics::render(&self.scoreboard, &info).into_bytes())
    }

    /// The maintenance notice and banner for a page (cached: a database read only
    /// when an admin changed them or the copy is a second old). A page that cannot
    /// read them is still served, without them.
    fn page_notice(&mut self) -> Notice {
        self.observe_cluster();
        self.notice
            .current(&mut self.db)
            .map_or_else(|_| Notice::default(), Notice::clone)
    }

    /// While maintenance is on, non-admin bot commands get 503 (reads,
    /// health and admins are unaffected).
    fn maintenance_refusal(&mut self) -> Option<Response> {
        let notice = match self.notice.current(&mut self.db) {
            Ok(n) => n,
            Err(e) => {
                error!(self.log, "cannot read the maintenance setting"; "error" => %e);
                return Some(reply::error(503, "Database unavailable"));
            }
        };
        if !notice.maintenance {
            return None;
        }
        let message = if notice.banner.is_empty() {
            DEFAULT_MESSAGE
        } else {
            &notice.banner
        };
        let body = serde_json::json!({"success": false, "error": "Service under maintenance",
            "message": message, "retry_after": 60});
        Some(reply::json(503, &body).header("Retry-After", "60"))
    }

    fn identify(&mut self, req: &Request<'_>) -> Result<Identity, Response> {
        let creds = Credentials {
            authorization: req.header("authorization"),
            cookies: req.header_all("cookie").collect(),
        };
        let key = identity::cache_key(&creds);
        if let Some(found) = key.as_deref().and_then(|k| self.identities.get(k)) {
            return Ok(found);
        }
        let stamp = self.identities.stamp();
        let conn = self.db.conn().map_err(|e| {
            error!(self.log, "cannot read sessions"; "error" => %e);
            reply::error(503, "Database unavailable")
        })?;
        let resolved =
            identity::resolve(&conn, &creds, crate::store::now()).map_err(|e| match e {
                IdentityError::BadBearer => reply::error(401, "Authentication required"),
                IdentityError::Store(e) => {
                    error!(self.log, "cannot read sessions"; "error" => %e);
                    reply::error(503, "Database unavailable")
                }
            })?;
        if let Some(k) = key {
            self.identities.put(k, &resolved, stamp);
        }
        Ok(resolved)
    }

    /// Brings the caches up to the cluster's changes (`coord::bus`): before
    /// anything of this request reads them.
    fn observe_cluster(&mut self) {
        let view = self.bus.view(&self.coord);
        self.identities.observe(view);
        self.notice.observe(view);
    }

    /// Publishes what this worker is serving, for `WORKER TIMEOUT` reports, as
    /// "REQUEST-ID METHOD PATH": the id first, so a long path cannot push it out
    /// of the slot's fixed space.
    fn mark_current(&mut self, req: &Request<'_>, id: &str) {
        self.current.clear();
        self.current.extend_from_slice(id.as_bytes());
        self.current.push(b' ');
        self.current.extend_from_slice(req.method.as_bytes());
        self.current.push(b' ');
        self.current
            .extend_from_slice(router::loggable_path(req.path).as_bytes());
        self.slot.set_request(&self.current);
    }

    fn log_access(
        &mut self,
        req: Option<&Request<'_>>,
        resp: &Response,
        id: &str,
        user_id: Option<i64>,
        started: Instant,
    ) {
        let Some(access) = self.access.as_mut() else {
            return;
        };
        let client = req.map_or_else(
            || "-".to_string(),
            |r| client_ip(r, &self.config.forwarded_allow_ips),
        );
        let header = |name: &str| req.and_then(|r| r.header_str(name)).unwrap_or("");
        access.log(&AccessRecord {
            client: &client,
            method: req.map_or("-", |r| r.method),
            path: req.map_or("-", |r| router::loggable_path(r.path)),
            query: req.map_or("", |r| r.query),
            version: match req.map(|r| r.version) {
                Some(Version::Http10) => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            status: resp.status,
            bytes: resp.body.as_slice().len(),
            duration_us: started.elapsed().as_micros() as u64,
            request_id: id,
            user_id,
            referer: header("referer"),
            user_agent: header("user-agent"),
        });
    }
}

impl Handler for WebApp {
    fn handle(&mut self, req: &Request<'_>) -> Response {
        let started = Instant::now();
        let id = self.ids.for_request(req.header("x-request-id"));
        self.mark_current(req, &id);
        let (mut resp, user_id) = self.dispatch(req);
        self.log_access(Some(req), &resp, &id, user_id, started);
        metrics::http_request(
            req.method,
            self.endpoint,
            resp.status,
            started.elapsed().as_secs_f64(),
        );
        if resp.status >= 500 {
            metrics::error(metrics::ErrorKind::Http5xx);
        }
        resp.headers.push(("X-Request-Id", id.into()));
        self.slot.set_request(b"");
        self.slot.add_request();
        resp
    }

    fn reject(&mut self, rejection: Rejection, head: Option<&Request<'_>>) -> Response {
        let started = Instant::now();
        let id = self
            .ids
            .for_request(head.and_then(|r| r.header("x-request-id")));
        if rejection == Rejection::InternalError {
            error!(self.log, "handler panicked"; "request_id" => &id,
                "path" => head.map_or("-", |r| router::loggable_path(r.path)));
        }
        // After a handler panic, the slot still names the failed request.
        self.slot.set_request(b"");
        if rejection == Rejection::InternalError {
            metrics::error(metrics::ErrorKind::WorkerPanic);
        }
        // A page route that panicked answers with the HTML error page.
        let page = rejection == Rejection::InternalError
            && super::routes::ROUTES
                .iter()
                .any(|r| r.path == self.endpoint && r.kind() == Kind::Page);
        let mut resp = if page {
            pages::server_error(&self.page_notice())
        } else {
            reply::error(rejection.status(), rejection.message())
        };
        self.log_access(head, &resp, &id, None, started);
        // After a panic `endpoint` still names the failed route; otherwise the
        // request never reached routing.
        let endpoint = if rejection == Rejection::InternalError {
            self.endpoint
        } else {
            OTHER
        };
        // Protocol-level refusals (501, 505) and panics are 5xx answers too: the
        // error-rate query must see them like a handler's 5xx.
        if resp.status >= 500 {
            metrics::error(metrics::ErrorKind::Http5xx);
        }
        let method = head.map_or("other", |r| r.method);
        metrics::http_request(
            method,
            endpoint,
            resp.status,
            started.elapsed().as_secs_f64(),
        );
        resp.headers.push(("X-Request-Id", id.into()));
        resp
    }

    fn common_headers(&self) -> &[u8] {
        &self.common
    }

    fn flush(&mut self) {
        if let Some(a) = self.access.as_mut() {
            a.flush();
        }
    }
}

/// Whether an unknown path or method gets an HTML error page: browsers asking for
/// a page (`Accept: text/html`) outside the JSON API.
fn wants_html(req: &Request<'_>) -> bool {
    !req.path.starts_with("/api/")
        && req
            .header_str("accept")
            .is_some_and(|a| a.contains("text/html"))
}

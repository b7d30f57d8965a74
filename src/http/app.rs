//! `WebApp`: the worker's `Handler`. Middleware runs in the order of ARCHITECTURE §3:
//! request id → security headers (the runtime's common block) → client IP → route →
//! handler → access log and slot bookkeeping.

use std::time::Instant;

use blitz_master::{Scoreboard, SlotHandle};
use blitz_worker::{Handler, Rejection, Request, Response, Version};
use slog::{error, Logger};

use super::client_ip::client_ip;
use super::health::Health;
use super::reply;
use super::request_id::RequestIds;
use super::router::{self, Match, RouteId};
use super::security;
use crate::config::Config;
use crate::log::{AccessLog, AccessRecord};
use crate::store::Db;

pub struct WebApp {
    config: Config,
    log: Logger,
    access: Option<AccessLog>,
    common: Vec<u8>,
    ids: RequestIds,
    health: Health,
    db: Db,
    scoreboard: Scoreboard,
    slot: SlotHandle,
    /// Scratch for the slot's "METHOD PATH ID" text, reused across requests.
    current: Vec<u8>,
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
            health: Health::new(&config.app_version),
            db: Db::new(&config.database, 4),
            ids: RequestIds::new(),
            current: Vec::with_capacity(256),
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

    fn dispatch(&mut self, req: &Request<'_>) -> Response {
        match router::route(req.method, req.path) {
            Match::Found { id, .. } => match id {
                RouteId::Healthz => self.health.healthz(),
                RouteId::Livez => self.health.livez(),
                RouteId::Readyz => self.health.readyz(&mut self.db, &self.scoreboard),
            },
            Match::MethodNotAllowed { allow } => {
                reply::error(405, "Method not allowed").header("Allow", allow)
            }
            Match::NotFound => reply::error(404, "Not found"),
        }
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
        self.current.extend_from_slice(req.path.as_bytes());
        self.slot.set_request(&self.current);
    }

    fn log_access(
        &mut self,
        req: Option<&Request<'_>>,
        resp: &Response,
        id: &str,
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
            path: req.map_or("-", |r| r.path),
            query: req.map_or("", |r| r.query),
            version: match req.map(|r| r.version) {
                Some(Version::Http10) => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            status: resp.status,
            bytes: resp.body.as_slice().len(),
            duration_us: started.elapsed().as_micros() as u64,
            request_id: id,
            user_id: None,
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
        let mut resp = self.dispatch(req);
        self.log_access(Some(req), &resp, &id, started);
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
                "path" => head.map_or("-", |r| r.path));
        }
        // After a handler panic, the slot still names the failed request.
        self.slot.set_request(b"");
        let mut resp = reply::error(rejection.status(), rejection.message());
        self.log_access(head, &resp, &id, started);
        resp.headers.push(("X-Request-Id", id.into()));
        resp
    }

    fn common_headers(&self) -> &[u8] {
        &self.common
    }
}

//! Bot commands across instances (CONTRACT C18): a worker whose own runner does
//! not drive the user's bots sends the command to the runner that does, through
//! Redis, and answers with that runner's real outcome.
//!
//! Each runner of a cluster subscribes to `blitz:runner:<INSTANCE_NAME>`. A
//! worker publishes `{"reply": key, "line": request}` there and waits on the
//! list `key` with `BLPOP`, bounded by the RPC's own timeout; the runner runs
//! the request as if it came through its socket and `RPUSH`es the answer line
//! (the list expires after a minute if nobody took it).
//!
//! Why Redis pub/sub rather than PostgreSQL `LISTEN/NOTIFY`: Redis is already
//! required in a cluster and already carries the cluster bus; a reply list fits
//! a request and its answer (the worker blocks on one key, the answer waits if
//! the worker is late); `LISTEN` needs a dedicated connection per listener,
//! taken from the database's connection budget.

use std::path::Path;
use std::time::Duration;

use redis::Commands;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use slog::{info, warn, Logger};

use super::client::{self, RpcError};
use super::protocol::Redirect;

/// The channel the runner of `instance` listens on.
pub fn channel(instance: &str) -> String {
    format!("blitz:runner:{instance}")
}

/// How long an unread answer stays in Redis.
const REPLY_TTL_SECONDS: i64 = 60;

#[derive(Serialize, Deserialize)]
struct Envelope {
    reply: String,
    line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no runner of instance {0} listens")]
    NobodyListens(String),
    #[error("the runner of instance {0} did not answer in time")]
    Timeout(String),
    #[error("the answer is not understood: {0}")]
    Protocol(String),
}

/// This instance in a cluster, for `call`.
#[derive(Debug, Clone, Copy)]
pub struct Here<'a> {
    pub redis_url: &'a str,
    /// `INSTANCE_NAME`; `None` from a command line, which places nobody.
    pub instance: Option<&'a str>,
}

/// Asks this instance's runner (through `socket`); in a cluster (`here`), a
/// refusal that names another instance sends the request to that instance's
/// runner and answers with its outcome. When a user nobody drove was placed on
/// an instance whose runner no longer listens (it died since its last
/// heartbeat), the request goes to this instance's own runner through the same
/// channel, which takes the user (a routed request is never placed again). If
/// routing fails otherwise, the local refusal stands.
pub fn call<Q: Serialize, A: DeserializeOwned + Redirect>(
    socket: &Path,
    here: Option<Here<'_>>,
    req: &Q,
    timeout: Duration,
    log: &Logger,
) -> Result<A, RpcError> {
    let local: A = client::call_as(socket, req, timeout)?;
    let (Some(here), Some(to)) = (here, local.elsewhere()) else {
        return Ok(local);
    };
    let again = match forward(here.redis_url, &to.instance, req, timeout) {
        Ok(answer) => return Ok(answer),
        Err(e) => {
            warn!(log, "cannot route a command to its instance";
                "instance" => &to.instance, "error" => %e);
            // Only when the chosen instance's runner is gone: one that got
            // the request may still be taking the user.
            let gone = matches!(e, RouteError::NobodyListens(_));
            here.instance
                .filter(|me| gone && to.placed && *me != to.instance)
        }
    };
    let Some(me) = again else {
        return Ok(local);
    };
    match forward(here.redis_url, me, req, timeout) {
        Ok(answer) => Ok(answer),
        Err(e) => {
            warn!(log, "cannot route a command to this instance's runner"; "error" => %e);
            Ok(local)
        }
    }
}

/// Sends `req` (a bot or paper-account command) to the runner of `instance` and
/// waits up to `timeout` for its outcome.
pub fn forward<Q: Serialize, A: DeserializeOwned>(
    url: &str,
    instance: &str,
    req: &Q,
    timeout: Duration,
) -> Result<A, RouteError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout + Duration::from_secs(1)))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| RouteError::Protocol(e.to_string()))?;
    let reply = format!("blitz:reply:{:016x}", u64::from_le_bytes(nonce));
    let line = serde_json::to_string(req).map_err(|e| RouteError::Protocol(e.to_string()))?;
    let envelope = serde_json::to_string(&Envelope {
        reply: reply.clone(),
        line,
    })
    .map_err(|e| RouteError::Protocol(e.to_string()))?;
    let listeners: i64 = conn.publish(channel(instance), envelope)?;
    if listeners == 0 {
        return Err(RouteError::NobodyListens(instance.to_string()));
    }
    let got: Option<(String, String)> = conn.blpop(&reply, timeout.as_secs_f64())?;
    let (_, answer) = got.ok_or_else(|| RouteError::Timeout(instance.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| RouteError::Protocol(e.to_string()))
}

/// The runner's side: listens on its channel for ever (reconnecting after a
/// pause when Redis fails), answering each request with `answer`. Runs on a
/// thread of its own in the runner process.
pub fn listen(url: String, instance: String, log: Logger, answer: impl Fn(&str) -> Vec<u8>) {
    loop {
        if let Err(e) = listen_once(&url, &instance, &log, &answer) {
            warn!(log, "runner command channel failed; reconnecting"; "error" => %e);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn listen_once(
    url: &str,
    instance: &str,
    log: &Logger,
    answer: &impl Fn(&str) -> Vec<u8>,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut replies = client.get_connection()?;
    let mut conn = client.get_connection()?;
    let mut sub = conn.as_pubsub();
    sub.subscribe(channel(instance))?;
    info!(log, "runner listens for commands from other instances"; "channel" => channel(instance));
    loop {
        let msg = sub.get_message()?;
        let payload: String = msg.get_payload()?;
        let Ok(env) = serde_json::from_str::<Envelope>(&payload) else {
            warn!(log, "ignored a malformed routed command");
            continue;
        };
        let out = answer(&env.line);
        let text = String::from_utf8_lossy(&out).to_string();
        let _: i64 = replies.rpush(&env.reply, text)?;
        let _: bool = replies.expire(&env.reply, REPLY_TTL_SECONDS)?;
    }
}

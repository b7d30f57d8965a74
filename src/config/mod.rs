//! The server's configuration: flags over environment over defaults (README, Flags).
//!
//! `Config::load` is the only place that decides what a setting's value is. It either
//! returns a complete, validated `Config` or the first error, so a bad configuration
//! never starts a half-working server. Nothing here reads files other than the
//! env file, opens sockets or resolves names: `check-config` must be side-effect free.

pub mod cli;
pub mod env;
pub mod error;
pub mod parse;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cli::{Cli, Command, DbArgs, LoadtestArgs, ServeArgs, TokenCommand, UserCommand};
pub use env::{EnvLookup, LayeredEnv, ProcessEnv};
pub use error::{ConfigError, Expected};
pub use parse::{
    AccessLogFormat, BindAddr, LogLevel, LogTarget, Rate, TrustedProxies, WorkerClass,
};

pub const DEFAULT_DATABASE: &str = "instance/database.db";
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// Upper bound for every seconds setting: beyond any real deployment, and small enough
/// that `Instant + timeout` can never overflow.
const MAX_SECONDS: u64 = 86_400;
const MAX_WORKERS: usize = 256;
/// `--max-requests` and its jitter: far beyond any real use, and small enough that
/// `max_requests + jitter + 1` cannot overflow a u64.
const MAX_REQUESTS: u64 = u32::MAX as u64;
/// Bot and paper ticks: at least 10 ms so a typo cannot spin a core, at most a day.
const MIN_TICK_MS: u64 = 10;
const MAX_TICK_MS: u64 = 86_400_000;
const MAX_BANNER_CHARS: usize = 500;

/// Per-user limits (start, stop, recover, status) and the all-users ceiling per group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub start: Rate,
    pub stop: Rate,
    pub recover: Rate,
    pub status: Rate,
    pub global: Rate,
}

/// The effective configuration. Every field is valid by construction.
///
/// `Debug` is written by hand (as the `describe` rows) so that a `{:?}` in a log line
/// cannot leak the admin password, the secret key or URL passwords.
#[derive(Clone)]
pub struct Config {
    // --- serve flags; env fallbacks noted where they exist
    /// `--bind` (repeatable) / `BLITZ_BIND`. Never empty.
    pub binds: Vec<BindAddr>,
    /// `--workers` / `WEB_CONCURRENCY`, 1..=256.
    pub workers: usize,
    pub worker_class: WorkerClass,
    pub worker_connections: usize,
    /// 0 = workers are never recycled.
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    /// `--max-worker-memory` in bytes; `None` = off.
    pub max_worker_memory: Option<u64>,
    /// `BLITZ_TEST_BOOT_DELAY_MS`: workers wait this long before accepting. Only for
    /// tests of readiness-gated reloads ("a slow-booting release").
    pub test_boot_delay_ms: u64,
    /// Heartbeat age after which a worker is killed; at least 1 s.
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    /// Zero disables keep-alive.
    pub keep_alive: Duration,
    pub backlog: i32,
    /// None = no access log.
    pub access_log: Option<LogTarget>,
    pub access_log_format: AccessLogFormat,
    pub error_log: LogTarget,
    /// `--log-level` / `LOG_LEVEL`.
    pub log_level: LogLevel,
    pub pidfile: Option<PathBuf>,
    /// `--database` / `BLITZ_DB_PATH`. Its directory is the instance dir.
    pub database: PathBuf,
    /// 0 = unlimited (gunicorn).
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    /// 0 = unlimited (gunicorn).
    pub limit_request_field_size: usize,
    /// `--forwarded-allow-ips` / `FORWARDED_ALLOW_IPS`.
    pub forwarded_allow_ips: TrustedProxies,
    pub reuse_port: bool,
    pub env_file: Option<PathBuf>,

    // --- environment only
    /// `FLASK_ENV`, else `APP_ENV`.
    pub environment: String,
    pub app_version: String,
    pub enable_metrics: bool,
    pub prometheus_multiproc_dir: Option<PathBuf>,
    pub rate_limit_redis_url: Option<String>,
    /// `REDIS_URL`, else `RATE_LIMIT_REDIS_URL`. Some = Redis is used.
    pub redis_url: Option<String>,
    pub rate_limits: RateLimits,
    /// Safe to send as a header value.
    pub security_csp: String,
    pub max_request_bytes: u64,
    pub session_secure: bool,
    pub csrf_ssl_strict: bool,
    pub maintenance_mode_default: bool,
    pub broadcast_banner: String,
    pub admin_email: String,
    /// None = generate one when the admin is first created.
    pub admin_password: Option<String>,
    /// None = generate one into `<instance dir>/secret_key` on first start.
    pub secret_key: Option<Vec<u8>>,
    /// None = write mail to `<instance dir>/outbox`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// No trailing slash.
    pub public_url: String,
    pub bot_tick_ms: u64,
    pub paper_tick_ms: u64,
    /// Strictly between 0 and 1.
    pub paper_volatility: f64,
    /// None = seed from the OS.
    pub paper_seed: Option<u64>,
    /// `TELEGRAM_API_URL`: the Bot API base (no trailing slash).
    pub telegram_api_url: String,
    /// `BYBIT_BASE_URL`, `BINGX_BASE_URL`, `EXCHANGE_TIMEOUT_MS`,
    /// `EXCHANGE_RECV_WINDOW_MS`: where the real exchanges are and how long to wait.
    pub exchanges: crate::exchange::rest::RestSettings,
}

impl Config {
    /// Builds the configuration from flags, then `env`, then defaults. The first bad
    /// value stops the load with an error naming its flag or variable.
    pub fn load(args: &ServeArgs, env: &dyn EnvLookup) -> Result<Config, ConfigError> {
        let src = Sources { env };
        let binds = load_binds(args, &src)?;

        // binds[0] exists: load_binds returns the default or at least one parsed item.
        let public_url = parse_or(src.env("PUBLIC_URL"), parse::http_url, || {
            default_public_url(&binds[0])
        })?;
        let rate_limit_redis_url = secret_url(src.env("RATE_LIMIT_REDIS_URL"), parse::redis_url)?;
        let redis_url = secret_url(src.env("REDIS_URL"), parse::redis_url)?
            .or_else(|| rate_limit_redis_url.clone());

        Ok(Config {
            binds,
            workers: parse_or(
                flag("--workers", &args.workers).or_else(|| src.env("WEB_CONCURRENCY")),
                |s| parse::usize_in(s, 1, MAX_WORKERS),
                default_workers,
            )?,
            worker_class: load_worker_class(args)?,
            worker_connections: parse_or(
                flag("--worker-connections", &args.worker_connections),
                |s| parse::usize_in(s, 1, 1_000_000),
                || 1000,
            )?,
            max_requests: parse_or(
                flag("--max-requests", &args.max_requests),
                |s| parse::uint_in(s, 0, MAX_REQUESTS),
                || 0,
            )?,
            max_requests_jitter: parse_or(
                flag("--max-requests-jitter", &args.max_requests_jitter),
                |s| parse::uint_in(s, 0, MAX_REQUESTS),
                || 0,
            )?,
            max_worker_memory: parse_opt(
                flag("--max-worker-memory", &args.max_worker_memory),
                |s| parse::uint_in(s, 1, 1 << 20),
            )?
            .map(|mb| mb << 20),
            test_boot_delay_ms: parse_or(
                src.env("BLITZ_TEST_BOOT_DELAY_MS"),
                |s| parse::uint_in(s, 0, 600_000),
                || 0,
            )?,
            timeout: parse_or(
                flag("--timeout", &args.timeout),
                |s| parse::seconds(s, 1, MAX_SECONDS),
                || Duration::from_secs(30),
            )?,
            graceful_timeout: parse_or(
                flag("--graceful-timeout", &args.graceful_timeout),
                |s| parse::seconds(s, 0, MAX_SECONDS),
                || Duration::from_secs(30),
            )?,
            keep_alive: parse_or(
                flag("--keep-alive", &args.keep_alive),
                |s| parse::seconds(s, 0, MAX_SECONDS),
                || Duration::from_secs(2),
            )?,
            backlog: parse_or(
                flag("--backlog", &args.backlog),
                // At most 65535, so the cast is exact.
                |s| parse::uint_in(s, 1, 65_535).map(|n| n as i32),
                || 2048,
            )?,
            access_log: parse_opt(flag("--access-logfile", &args.access_logfile), |s| {
                parse::log_target(s, LogTarget::Stdout)
            })?,
            access_log_format: parse_or(
                flag("--access-logformat", &args.access_logformat),
                parse::access_log_format,
                AccessLogFormat::default,
            )?,
            error_log: parse_or(
                flag("--error-logfile", &args.error_logfile),
                |s| parse::log_target(s, LogTarget::Stderr),
                || LogTarget::Stderr,
            )?,
            log_level: parse_or(
                flag("--log-level", &args.log_level).or_else(|| src.env("LOG_LEVEL")),
                parse::log_level,
                || LogLevel::Info,
            )?,
            pidfile: path_flag("--pid", &args.pid)?,
            database: match path_flag("--database", &args.database)? {
                Some(path) => path,
                None => src
                    .env("BLITZ_DB_PATH")
                    .map_or_else(|| PathBuf::from(DEFAULT_DATABASE), |raw| raw.value.into()),
            },
            limit_request_line: parse_or(
                flag("--limit-request-line", &args.limit_request_line),
                |s| parse::usize_in(s, 0, 8190),
                || 4094,
            )?,
            limit_request_fields: parse_or(
                flag("--limit-request-fields", &args.limit_request_fields),
                |s| parse::usize_in(s, 1, 32_768),
                || 100,
            )?,
            limit_request_field_size: parse_or(
                flag("--limit-request-field_size", &args.limit_request_field_size),
                |s| parse::usize_in(s, 0, usize::MAX),
                || 8190,
            )?,
            forwarded_allow_ips: parse_or(
                flag("--forwarded-allow-ips", &args.forwarded_allow_ips)
                    .or_else(|| src.env("FORWARDED_ALLOW_IPS")),
                parse::trusted_proxies,
                || {
                    TrustedProxies::List(vec![
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ])
                },
            )?,
            reuse_port: args.reuse_port,
            env_file: path_flag("--env-file", &args.env_file)?,

            environment: src
                .env("FLASK_ENV")
                .or_else(|| src.env("APP_ENV"))
                .map_or_else(
                    || "production".to_string(),
                    |raw| raw.value.trim().to_string(),
                ),
            app_version: src
                .env("APP_VERSION")
                .map_or_else(|| "unknown".to_string(), |raw| raw.value.trim().to_string()),
            enable_metrics: parse_or(src.env("ENABLE_METRICS"), parse::boolean, || false)?,
            prometheus_multiproc_dir: src
                .env("PROMETHEUS_MULTIPROC_DIR")
                .map(|raw| raw.value.into()),
            rate_limit_redis_url,
            redis_url,
            rate_limits: RateLimits {
                start: rate(&src, "RATE_LIMITS_START", 10)?,
                stop: rate(&src, "RATE_LIMITS_STOP", 10)?,
                recover: rate(&src, "RATE_LIMITS_RECOVER", 10)?,
                status: rate(&src, "RATE_LIMITS_STATUS", 30)?,
                global: rate(&src, "RATE_LIMITS_GLOBAL", 200)?,
            },
            security_csp: parse_or(src.env("SECURITY_CSP"), parse::header_value, || {
                DEFAULT_CSP.to_string()
            })?,
            max_request_bytes: parse_or(src.env("MAX_REQUEST_BYTES"), parse::size, || 1_048_576)?,
            session_secure: parse_or(src.env("SESSION_SECURE"), parse::boolean, || false)?,
            csrf_ssl_strict: parse_or(src.env("CSRF_SSL_STRICT"), parse::boolean, || false)?,
            maintenance_mode_default: parse_or(
                src.env("MAINTENANCE_MODE_DEFAULT"),
                parse::boolean,
                || false,
            )?,
            broadcast_banner: parse_or(
                src.env("BROADCAST_BANNER"),
                |s| parse::short_text(s, MAX_BANNER_CHARS),
                String::new,
            )?,
            admin_email: parse_or(src.env("ADMIN_EMAIL"), parse::email, || {
                "admin@admin.com".to_string()
            })?,
            admin_password: src
                .env("ADMIN_PASSWORD")
                .map(|raw| raw.parse_masked(parse::password, hide))
                .transpose()?,
            secret_key: src
                .env("SECRET_KEY")
                .map(|raw| raw.parse_masked(parse::secret_key, hide))
                .transpose()?,
            smtp_url: secret_url(src.env("SMTP_URL"), parse::smtp_url)?,
            mail_from: parse_or(src.env("MAIL_FROM"), parse::mailbox, || {
                "blitz@localhost".to_string()
            })?,
            public_url,
            bot_tick_ms: parse_or(src.env("BOT_TICK_MS"), tick_ms, || 1000)?,
            paper_tick_ms: parse_or(src.env("PAPER_TICK_MS"), tick_ms, || 1000)?,
            paper_volatility: parse_or(
                src.env("PAPER_VOLATILITY"),
                parse::open_unit_fraction,
                || 0.001,
            )?,
            paper_seed: parse_opt(src.env("PAPER_SEED"), |s| parse::uint_in(s, 0, u64::MAX))?,
            telegram_api_url: parse_or(src.env("TELEGRAM_API_URL"), parse::http_url, || {
                "https://api.telegram.org".to_string()
            })?,
            exchanges: load_exchanges(&src)?,
        })
    }

    /// Defaults only: no flags, empty environment. For unit tests elsewhere in the crate.
    #[cfg(test)]
    pub fn for_tests() -> Config {
        let empty = std::collections::HashMap::new();
        Config::load(&ServeArgs::default(), &empty).expect("the defaults are valid")
    }

    /// The directory holding the database; secret key and outbox live there.
    pub fn instance_dir(&self) -> &Path {
        match self.database.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// The effective configuration for `blitz check-config`: flag names for flags,
    /// variable names for environment-only settings. Secrets are never shown: keys
    /// and passwords print as `***`, URL passwords are replaced by `***`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let none = || "none".to_string();
        let path = |p: &Option<PathBuf>| p.as_ref().map_or_else(none, |p| p.display().to_string());
        let url = |u: &Option<String>| u.as_deref().map_or_else(none, parse::mask_url_password);
        let secret = |set: bool| if set { "***" } else { "none" }.to_string();
        let binds: Vec<String> = self.binds.iter().map(BindAddr::to_string).collect();
        vec![
            ("bind", binds.join(",")),
            ("workers", self.workers.to_string()),
            ("worker-class", self.worker_class.to_string()),
            ("worker-connections", self.worker_connections.to_string()),
            ("max-requests", self.max_requests.to_string()),
            ("max-requests-jitter", self.max_requests_jitter.to_string()),
            (
                "max-worker-memory",
                self.max_worker_memory
                    .map_or_else(|| "off".to_string(), |b| format!("{} MB", b >> 20)),
            ),
            ("timeout", self.timeout.as_secs().to_string()),
            (
                "graceful-timeout",
                self.graceful_timeout.as_secs().to_string(),
            ),
            ("keep-alive", self.keep_alive.as_secs().to_string()),
            ("backlog", self.backlog.to_string()),
            (
                "access-logfile",
                self.access_log
                    .as_ref()
                    .map_or_else(none, LogTarget::to_string),
            ),
            ("access-logformat", self.access_log_format.to_string()),
            ("error-logfile", self.error_log.to_string()),
            ("log-level", self.log_level.to_string()),
            ("pid", path(&self.pidfile)),
            ("database", self.database.display().to_string()),
            ("limit-request-line", self.limit_request_line.to_string()),
            (
                "limit-request-fields",
                self.limit_request_fields.to_string(),
            ),
            (
                "limit-request-field_size",
                self.limit_request_field_size.to_string(),
            ),
            ("forwarded-allow-ips", self.forwarded_allow_ips.to_string()),
            ("reuse-port", self.reuse_port.to_string()),
            ("env-file", path(&self.env_file)),
            ("FLASK_ENV", self.environment.clone()),
            ("APP_VERSION", self.app_version.clone()),
            ("ENABLE_METRICS", self.enable_metrics.to_string()),
            (
                "PROMETHEUS_MULTIPROC_DIR",
                path(&self.prometheus_multiproc_dir),
            ),
            ("RATE_LIMIT_REDIS_URL", url(&self.rate_limit_redis_url)),
            ("REDIS_URL", url(&self.redis_url)),
            ("RATE_LIMITS_START", self.rate_limits.start.to_string()),
            ("RATE_LIMITS_STOP", self.rate_limits.stop.to_string()),
            ("RATE_LIMITS_RECOVER", self.rate_limits.recover.to_string()),
            ("RATE_LIMITS_STATUS", self.rate_limits.status.to_string()),
            ("RATE_LIMITS_GLOBAL", self.rate_limits.global.to_string()),
            ("SECURITY_CSP", self.security_csp.clone()),
            ("MAX_REQUEST_BYTES", self.max_request_bytes.to_string()),
            ("SESSION_SECURE", self.session_secure.to_string()),
            ("CSRF_SSL_STRICT", self.csrf_ssl_strict.to_string()),
            (
                "MAINTENANCE_MODE_DEFAULT",
                self.maintenance_mode_default.to_string(),
            ),
            ("BROADCAST_BANNER", self.broadcast_banner.clone()),
            ("ADMIN_EMAIL", self.admin_email.clone()),
            ("ADMIN_PASSWORD", secret(self.admin_password.is_some())),
            ("SECRET_KEY", secret(self.secret_key.is_some())),
            ("SMTP_URL", url(&self.smtp_url)),
            ("MAIL_FROM", self.mail_from.clone()),
            ("PUBLIC_URL", self.public_url.clone()),
            ("BOT_TICK_MS", self.bot_tick_ms.to_string()),
            ("PAPER_TICK_MS", self.paper_tick_ms.to_string()),
            ("PAPER_VOLATILITY", self.paper_volatility.to_string()),
            (
                "PAPER_SEED",
                self.paper_seed
                    .map_or_else(|| "random".to_string(), |s| s.to_string()),
            ),
            ("TELEGRAM_API_URL", self.telegram_api_url.clone()),
            ("BYBIT_BASE_URL", self.exchanges.bybit_url.clone()),
            ("BINGX_BASE_URL", self.exchanges.bingx_url.clone()),
            ("EXCHANGE_TIMEOUT_MS", self.exchanges.timeout_ms.to_string()),
            (
                "EXCHANGE_RECV_WINDOW_MS",
                self.exchanges.recv_window_ms.to_string(),
            ),
        ]
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.describe()).finish()
    }
}

/// `Config::load` over the process environment, with the `--env-file` (if given) on
/// top. Call again on `SIGHUP` to re-read the file.
pub fn load_from_env(args: &ServeArgs) -> Result<Config, ConfigError> {
    let env = match &args.env_file {
        Some(path) => LayeredEnv::from_file(path)?,
        None => LayeredEnv::none(),
    };
    Config::load(args, &env)
}

// ---------------------------------------------------------------------------
// Loading helpers

/// A setting's text and the flag or variable it came from, so errors can name it.
struct Raw {
    name: &'static str,
    value: String,
}

impl Raw {
    fn parse<T>(self, parser: impl FnOnce(&str) -> Result<T, Expected>) -> Result<T, ConfigError> {
        self.parse_masked(parser, str::to_string)
    }

    /// As `parse`, but the error shows `mask(value)`: error messages end up in logs,
    /// where secrets must never appear.
    fn parse_masked<T>(
        self,
        parser: impl FnOnce(&str) -> Result<T, Expected>,
        mask: fn(&str) -> String,
    ) -> Result<T, ConfigError> {
        parser(&self.value).map_err(|expected| ConfigError::Invalid {
            name: self.name,
            value: mask(&self.value),
            expected,
        })
    }
}

fn hide(_: &str) -> String {
    "***".to_string()
}

struct Sources<'a> {
    env: &'a dyn EnvLookup,
}

impl Sources<'_> {
    /// A variable, if set to something other than blanks: systemd files often carry
    /// `KEY=` lines meaning "not set".
    fn env(&self, name: &'static str) -> Option<Raw> {
        self.env
            .get(name)
            .filter(|value| !value.trim().is_empty())
            .map(|value| Raw { name, value })
    }
}

/// A flag's text. An empty flag value is not "unset" (unlike a variable): the operator
/// typed it, so it is parsed and, for most settings, refused.
fn flag(name: &'static str, value: &Option<String>) -> Option<Raw> {
    value.as_ref().map(|value| Raw {
        name,
        value: value.clone(),
    })
}

fn path_flag(name: &'static str, value: &Option<PathBuf>) -> Result<Option<PathBuf>, ConfigError> {
    match value {
        Some(path) if path.as_os_str().is_empty() => Err(ConfigError::Invalid {
            name,
            value: String::new(),
            expected: Expected::new("a file path"),
        }),
        other => Ok(other.clone()),
    }
}

fn parse_or<T>(
    raw: Option<Raw>,
    parser: impl FnOnce(&str) -> Result<T, Expected>,
    default: impl FnOnce() -> T,
) -> Result<T, ConfigError> {
    match raw {
        Some(raw) => raw.parse(parser),
        None => Ok(default()),
    }
}

fn parse_opt<T>(
    raw: Option<Raw>,
    parser: impl FnOnce(&str) -> Result<T, Expected>,
) -> Result<Option<T>, ConfigError> {
    raw.map(|raw| raw.parse(parser)).transpose()
}

/// An optional URL that may carry a password; the error shows it masked.
fn secret_url(
    raw: Option<Raw>,
    parser: impl FnOnce(&str) -> Result<String, Expected>,
) -> Result<Option<String>, ConfigError> {
    raw.map(|raw| raw.parse_masked(parser, parse::mask_url_password))
        .transpose()
}

fn rate(src: &Sources<'_>, name: &'static str, per_minute: u32) -> Result<Rate, ConfigError> {
    parse_or(src.env(name), parse::rate, || Rate {
        count: per_minute,
        period: Duration::from_secs(60),
    })
}

/// The real exchanges' endpoints (mainnet by default; a testnet or a local fake
/// by setting the base URLs) and request limits.
fn load_exchanges(src: &Sources<'_>) -> Result<crate::exchange::rest::RestSettings, ConfigError> {
    let d = crate::exchange::rest::RestSettings::default();
    Ok(crate::exchange::rest::RestSettings {
        bybit_url: parse_or(src.env("BYBIT_BASE_URL"), parse::http_url, || d.bybit_url)?,
        bingx_url: parse_or(src.env("BINGX_BASE_URL"), parse::http_url, || d.bingx_url)?,
        timeout_ms: parse_or(
            src.env("EXCHANGE_TIMEOUT_MS"),
            |s| parse::uint_in(s, 500, 60_000),
            || d.timeout_ms,
        )?,
        recv_window_ms: parse_or(
            src.env("EXCHANGE_RECV_WINDOW_MS"),
            |s| parse::uint_in(s, 1000, 60_000),
            || d.recv_window_ms,
        )?,
    })
}

fn tick_ms(s: &str) -> Result<u64, Expected> {
    parse::uint_in(s, MIN_TICK_MS, MAX_TICK_MS)
}

/// `--bind` flags if any, else `BLITZ_BIND`, else the default. The same address twice
/// would fail at bind time with a less helpful EADDRINUSE, so it is refused here.
fn load_binds(args: &ServeArgs, src: &Sources<'_>) -> Result<Vec<BindAddr>, ConfigError> {
    let binds = if args.bind.is_empty() {
        match src.env("BLITZ_BIND") {
            Some(raw) => raw.parse(parse::bind_list)?,
            None => vec![BindAddr::Tcp {
                host: "127.0.0.1".to_string(),
                port: 8000,
            }],
        }
    } else {
        args.bind
            .iter()
            .map(|value| {
                Raw {
                    name: "--bind",
                    value: value.clone(),
                }
                .parse(parse::bind_addr)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    for (i, bind) in binds.iter().enumerate() {
        if binds[..i].contains(bind) {
            return Err(ConfigError::Conflict {
                name: if args.bind.is_empty() {
                    "BLITZ_BIND"
                } else {
                    "--bind"
                },
                reason: format!("{bind} is given more than once"),
            });
        }
    }
    Ok(binds)
}

fn load_worker_class(args: &ServeArgs) -> Result<WorkerClass, ConfigError> {
    let Some(raw) = flag("--worker-class", &args.worker_class) else {
        return Ok(WorkerClass::Sync);
    };
    parse::worker_class(&raw.value).map_err(|_| ConfigError::Unsupported {
        name: raw.name,
        value: raw.value,
        reason: "only \"sync\" is supported",
    })
}

/// One worker per CPU (the documented default), within the allowed range.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
}

fn default_public_url(first_bind: &BindAddr) -> String {
    match first_bind {
        BindAddr::Tcp { .. } => format!("http://{first_bind}"),
        // A socket path means nothing in a link; nginx in front usually serves localhost.
        BindAddr::Unix(_) => "http://localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(args: &ServeArgs, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(args, &env(pairs))
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load(&ServeArgs::default(), pairs)
    }

    /// The serve flags of a command line, split on whitespace.
    fn args(line: &str) -> ServeArgs {
        let cli = Cli::try_parse_from(std::iter::once("blitz").chain(line.split_whitespace()));
        match cli.map(Cli::into_command) {
            Ok(Command::Serve(args) | Command::CheckConfig(args)) => args,
            Ok(other) => panic!("{line:?}: not a serve command: {other:?}"),
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    fn error_of(result: Result<Config, ConfigError>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::for_tests();
        assert_eq!(c.binds, vec![tcp("127.0.0.1", 8000)]);
        assert_eq!(c.workers, default_workers());
        assert!((1..=MAX_WORKERS).contains(&c.workers));
        assert_eq!(c.worker_class, WorkerClass::Sync);
        assert_eq!(c.worker_connections, 1000);
        assert_eq!((c.max_requests, c.max_requests_jitter), (0, 0));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.graceful_timeout, Duration::from_secs(30));
        assert_eq!(c.keep_alive, Duration::from_secs(2));
        assert_eq!(c.backlog, 2048);
        assert_eq!(c.access_log, None);
        assert_eq!(c.access_log_format, AccessLogFormat::default());
        assert_eq!(c.error_log, LogTarget::Stderr);
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.pidfile, None);
        assert_eq!(c.database, PathBuf::from("instance/database.db"));
        assert_eq!(c.limit_request_line, 4094);
        assert_eq!(c.limit_request_fields, 100);
        assert_eq!(c.limit_request_field_size, 8190);
        assert_eq!(
            c.forwarded_allow_ips,
            parse::trusted_proxies("127.0.0.1,::1").unwrap()
        );
        assert!(!c.reuse_port);
        assert_eq!(c.env_file, None);

        assert_eq!(c.environment, "production");
        assert_eq!(c.app_version, "unknown");
        assert!(!c.enable_metrics);
        assert_eq!(c.prometheus_multiproc_dir, None);
        assert_eq!((c.rate_limit_redis_url, c.redis_url), (None, None));
        assert_eq!(
            c.rate_limits,
            RateLimits {
                start: per_minute(10),
                stop: per_minute(10),
                recover: per_minute(10),
                status: per_minute(30),
                global: per_minute(200),
            }
        );
        assert_eq!(c.security_csp, DEFAULT_CSP);
        assert!(DEFAULT_CSP.contains("img-src 'self' data:; object-src"));
        assert_eq!(c.max_request_bytes, 1_048_576);
        assert!(!c.session_secure && !c.csrf_ssl_strict && !c.maintenance_mode_default);
        assert_eq!(c.broadcast_banner, "");
        assert_eq!(c.admin_email, "admin@admin.com");
        assert_eq!(c.admin_password, None);
        assert_eq!(c.secret_key, None);
        assert_eq!(c.smtp_url, None);
        assert_eq!(c.mail_from, "blitz@localhost");
        assert_eq!(c.public_url, "http://127.0.0.1:8000");
        assert_eq!((c.bot_tick_ms, c.paper_tick_ms), (1000, 1000));
        assert_eq!(c.paper_volatility, 0.001);
        assert_eq!(c.paper_seed, None);
    }

    #[test]
    fn gunicorn_command_line_loads() {
        let c = load(
            &args(
                "serve --workers 9 --worker-class sync --worker-connections 1000 --max-requests \
                1000 --max-requests-jitter 100 --bind 0.0.0.0:8000 --access-logfile - \
                --error-logfile - --log-level info",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.workers, 9);
        assert_eq!(c.worker_connections, 1000);
        assert_eq!((c.max_requests, c.max_requests_jitter), (1000, 100));
        assert_eq!(c.binds, vec![tcp("0.0.0.0", 8000)]);
        assert_eq!(c.access_log, Some(LogTarget::Stdout));
        assert_eq!(c.error_log, LogTarget::Stderr);
        assert_eq!(c.log_level, LogLevel::Info);
    }

    #[test]
    fn every_flag_is_applied() {
        let c = load(
            &args(
                "-b [::1]:9000 -b unix:/run/blitz.sock -t 5 --graceful-timeout 0 --keep-alive 0 \
                --backlog 64 --access-logfile /var/log/a.log --access-logformat json \
                --error-logfile /var/log/e.log -p /run/blitz.pid --database \
                /srv/blitz/db.sqlite --limit-request-line 0 --limit-request-fields 32768 \
                --limit-request-field-size 0 --forwarded-allow-ips * --reuse-port --env-file \
                /etc/blitz.env",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            c.binds,
            vec![tcp("::1", 9000), BindAddr::Unix("/run/blitz.sock".into())]
        );
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.graceful_timeout, Duration::ZERO);
        assert_eq!(c.keep_alive, Duration::ZERO);
        assert_eq!(c.backlog, 64);
        assert_eq!(c.access_log, Some(LogTarget::File("/var/log/a.log".into())));
        assert_eq!(c.access_log_format, AccessLogFormat::Json);
        assert_eq!(c.error_log, LogTarget::File("/var/log/e.log".into()));
        assert_eq!(c.pidfile, Some("/run/blitz.pid".into()));
        assert_eq!(c.database, PathBuf::from("/srv/blitz/db.sqlite"));
        assert_eq!(c.limit_request_line, 0);
        assert_eq!(c.limit_request_fields, 32768);
        assert_eq!(c.limit_request_field_size, 0);
        assert_eq!(c.forwarded_allow_ips, TrustedProxies::Any);
        assert!(c.reuse_port);
        assert_eq!(c.env_file, Some("/etc/blitz.env".into()));
        assert_eq!(c.public_url, "http://[::1]:9000");
    }

    #[test]
    fn flags_win_over_environment() {
        let vars = [
            ("BLITZ_BIND", "10.0.0.1:1"),
            ("WEB_CONCURRENCY", "5"),
            ("LOG_LEVEL", "debug"),
            ("BLITZ_DB_PATH", "/env/db"),
            ("FORWARDED_ALLOW_IPS", "10.0.0.2"),
        ];
        let c = load(
            &args(
                "-b 127.0.0.1:2 -w 3 --log-level error --database /flag/db \
                --forwarded-allow-ips 10.0.0.3",
            ),
            &vars,
        )
        .unwrap();
        assert_eq!(c.binds, vec![tcp("127.0.0.1", 2)]);
        assert_eq!(c.workers, 3);
        assert_eq!(c.log_level, LogLevel::Error);
        assert_eq!(c.database, PathBuf::from("/flag/db"));
        assert_eq!(
            c.forwarded_allow_ips,
            parse::trusted_proxies("10.0.0.3").unwrap()
        );

        let c = load_env(&vars).unwrap();
        assert_eq!(c.binds, vec![tcp("10.0.0.1", 1)]);
        assert_eq!(c.workers, 5);
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.database, PathBuf::from("/env/db"));
        assert_eq!(
            c.forwarded_allow_ips,
            parse::trusted_proxies("10.0.0.2").unwrap()
        );
    }

    #[test]
    fn environment_only_settings_are_read() {
        let key = "ab".repeat(32);
        let c = load_env(&[
            ("BLITZ_BIND", "unix:/run/b.sock, 127.0.0.1:8001"),
            ("FLASK_ENV", "development"),
            ("APP_VERSION", "1.2.3"),
            ("ENABLE_METRICS", "yes"),
            ("PROMETHEUS_MULTIPROC_DIR", "/tmp/prom"),
            ("RATE_LIMIT_REDIS_URL", "redis://redis:6379/1"),
            ("RATE_LIMITS_START", "1/second"),
            ("RATE_LIMITS_STOP", "2 per hour"),
            ("RATE_LIMITS_RECOVER", "3/days"),
            ("RATE_LIMITS_STATUS", "4 per minutes"),
            ("RATE_LIMITS_GLOBAL", "5/minute"),
            ("SECURITY_CSP", "default-src 'none'"),
            ("MAX_REQUEST_BYTES", "512K"),
            ("SESSION_SECURE", "true"),
            ("CSRF_SSL_STRICT", "1"),
            ("MAINTENANCE_MODE_DEFAULT", "TRUE"),
            ("BROADCAST_BANNER", "Maintenance at 22:00"),
            ("ADMIN_EMAIL", "ops@example.com"),
            ("ADMIN_PASSWORD", "correct horse"),
            ("SECRET_KEY", &key),
            ("SMTP_URL", "smtps://u:p@mail.example.com:465"),
            ("MAIL_FROM", "Blitz <noreply@example.com>"),
            ("PUBLIC_URL", "https://blitz.example.com/"),
            ("BOT_TICK_MS", "10"),
            ("PAPER_TICK_MS", "250"),
            ("PAPER_VOLATILITY", "0.02"),
            ("PAPER_SEED", "42"),
        ])
        .unwrap();
        assert_eq!(
            c.binds,
            vec![BindAddr::Unix("/run/b.sock".into()), tcp("127.0.0.1", 8001)]
        );
        assert_eq!(c.environment, "development");
        assert_eq!(c.app_version, "1.2.3");
        assert!(c.enable_metrics);
        assert_eq!(c.prometheus_multiproc_dir, Some("/tmp/prom".into()));
        assert_eq!(
            c.rate_limit_redis_url.as_deref(),
            Some("redis://redis:6379/1")
        );
        assert_eq!(c.redis_url, c.rate_limit_redis_url);
        assert_eq!(c.rate_limits.start.to_string(), "1/second");
        assert_eq!(c.rate_limits.stop.to_string(), "2/hour");
        assert_eq!(c.rate_limits.recover.to_string(), "3/day");
        assert_eq!(c.rate_limits.status, per_minute(4));
        assert_eq!(c.rate_limits.global, per_minute(5));
        assert_eq!(c.security_csp, "default-src 'none'");
        assert_eq!(c.max_request_bytes, 512 * 1024);
        assert!(c.session_secure && c.csrf_ssl_strict && c.maintenance_mode_default);
        assert_eq!(c.broadcast_banner, "Maintenance at 22:00");
        assert_eq!(c.admin_email, "ops@example.com");
        assert_eq!(c.admin_password.as_deref(), Some("correct horse"));
        assert_eq!(c.secret_key, Some(vec![0xab; 32]));
        assert_eq!(
            c.smtp_url.as_deref(),
            Some("smtps://u:p@mail.example.com:465")
        );
        assert_eq!(c.mail_from, "Blitz <noreply@example.com>");
        assert_eq!(c.public_url, "https://blitz.example.com");
        assert_eq!((c.bot_tick_ms, c.paper_tick_ms), (10, 250));
        assert_eq!(c.paper_volatility, 0.02);
        assert_eq!(c.paper_seed, Some(42));
    }

    #[test]
    fn flask_env_wins_over_app_env() {
        let both = load_env(&[("FLASK_ENV", "development"), ("APP_ENV", "staging")]).unwrap();
        assert_eq!(both.environment, "development");
        assert_eq!(
            load_env(&[("APP_ENV", "staging")]).unwrap().environment,
            "staging"
        );
    }

    #[test]
    fn redis_url_wins_over_rate_limit_redis_url() {
        let c = load_env(&[
            ("REDIS_URL", "redis://main:6379/0"),
            ("RATE_LIMIT_REDIS_URL", "redis://limits:6379/1"),
        ])
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://main:6379/0"));
        assert_eq!(
            c.rate_limit_redis_url.as_deref(),
            Some("redis://limits:6379/1")
        );
    }

    #[test]
    fn empty_variables_are_unset() {
        let vars: Vec<(&str, &str)> = [
            "BLITZ_BIND",
            "WEB_CONCURRENCY",
            "LOG_LEVEL",
            "BLITZ_DB_PATH",
            "FORWARDED_ALLOW_IPS",
            "FLASK_ENV",
            "ENABLE_METRICS",
            "RATE_LIMITS_START",
            "SECURITY_CSP",
            "ADMIN_EMAIL",
            "ADMIN_PASSWORD",
            "SECRET_KEY",
            "SMTP_URL",
            "PUBLIC_URL",
            "PAPER_SEED",
        ]
        .iter()
        .map(|name| (*name, ""))
        .collect();
        let c = load_env(&vars).unwrap();
        assert_eq!(c.binds, vec![tcp("127.0.0.1", 8000)]);
        assert_eq!(c.database, PathBuf::from(DEFAULT_DATABASE));
        assert_eq!(c.environment, "production");
        assert_eq!(c.admin_password, None);
        // Blank-only counts as empty too (a quoted "  " in an env file).
        assert_eq!(
            load_env(&[("LOG_LEVEL", "  ")]).unwrap().log_level,
            LogLevel::Info
        );
    }

    #[test]
    fn exchange_endpoints_default_to_mainnet_and_follow_the_environment() {
        let c = load_env(&[]).unwrap();
        assert_eq!(c.exchanges, crate::exchange::rest::RestSettings::default());
        assert_eq!(c.exchanges.bybit_url, "https://api.bybit.com");
        let c = load_env(&[
            ("BYBIT_BASE_URL", "https://api-testnet.bybit.com/"),
            ("BINGX_BASE_URL", "https://open-api-vst.bingx.com"),
            ("EXCHANGE_TIMEOUT_MS", "3000"),
            ("EXCHANGE_RECV_WINDOW_MS", "10000"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.exchanges.bybit_url.as_str(),
                c.exchanges.bingx_url.as_str()
            ),
            (
                "https://api-testnet.bybit.com",
                "https://open-api-vst.bingx.com"
            )
        );
        assert_eq!(
            (c.exchanges.timeout_ms, c.exchanges.recv_window_ms),
            (3000, 10000)
        );
    }

    #[test]
    fn bad_variables_are_named() {
        let cases = [
            ("BLITZ_BIND", "localhost"),
            ("WEB_CONCURRENCY", "0"),
            ("WEB_CONCURRENCY", "257"),
            ("LOG_LEVEL", "verbose"),
            ("FORWARDED_ALLOW_IPS", "10.0.0.0/8"),
            ("ENABLE_METRICS", "maybe"),
            ("RATE_LIMIT_REDIS_URL", "http://redis"),
            ("REDIS_URL", "redis:6379"),
            ("RATE_LIMITS_START", "abc"),
            ("RATE_LIMITS_STOP", "0/minute"),
            ("RATE_LIMITS_RECOVER", "10/week"),
            ("RATE_LIMITS_STATUS", "ten per minute"),
            ("RATE_LIMITS_GLOBAL", "200"),
            ("SECURITY_CSP", "default-src 'self'\r\nX-Evil: 1"),
            ("MAX_REQUEST_BYTES", "0"),
            ("SESSION_SECURE", "on"),
            ("CSRF_SSL_STRICT", "2"),
            ("MAINTENANCE_MODE_DEFAULT", "yess"),
            ("ADMIN_EMAIL", "admin"),
            ("ADMIN_PASSWORD", "short"),
            ("SECRET_KEY", "too-short"),
            ("SMTP_URL", "mail.example.com:25"),
            ("MAIL_FROM", "nobody"),
            ("PUBLIC_URL", "blitz.example.com"),
            ("BOT_TICK_MS", "9"),
            ("PAPER_TICK_MS", "fast"),
            ("PAPER_VOLATILITY", "1"),
            ("PAPER_SEED", "-1"),
            ("BYBIT_BASE_URL", "api.bybit.com"),
            ("BINGX_BASE_URL", "https://key:secret@open-api.bingx.com"),
            ("EXCHANGE_TIMEOUT_MS", "100"),
            ("EXCHANGE_RECV_WINDOW_MS", "5s"),
        ];
        for (name, value) in cases {
            let message = error_of(load_env(&[(name, value)]));
            assert!(message.contains(name), "{name}={value:?}: {message}");
            assert!(message.contains("expected"), "{name}={value:?}: {message}");
        }
        let banner = "x".repeat(501);
        let message = error_of(load_env(&[("BROADCAST_BANNER", &banner)]));
        assert!(message.contains("BROADCAST_BANNER"), "{message}");
    }

    #[test]
    fn bad_flags_are_named() {
        let cases: [(&str, &str); 17] = [
            ("--bind", "127.0.0.1"),
            ("--workers", "abc"),
            ("--worker-connections", "0"),
            ("--max-requests", "-1"),
            ("--max-requests-jitter", "4294967296"),
            ("--timeout", "0"),
            ("--graceful-timeout", "86401"),
            ("--keep-alive", "2s"),
            ("--backlog", "65536"),
            ("--access-logfile", ""),
            ("--access-logformat", ""),
            ("--error-logfile", ""),
            ("--log-level", "loud"),
            ("--limit-request-line", "8191"),
            ("--limit-request-fields", "0"),
            ("--limit-request-field_size", "-5"),
            ("--forwarded-allow-ips", "everyone"),
        ];
        for (flag, value) in cases {
            let flag_arg = format!("{flag}={value}");
            let message = error_of(load(&args(&flag_arg), &[]));
            assert!(
                message.starts_with(&format!("invalid value {value:?} for {flag}: expected ")),
                "{flag_arg}: {message}"
            );
        }
        // clap refuses empty paths on the command line; built in code, they reach load.
        let empty = || Some(PathBuf::new());
        let cases = [
            (
                "--pid",
                ServeArgs {
                    pid: empty(),
                    ..ServeArgs::default()
                },
            ),
            (
                "--database",
                ServeArgs {
                    database: empty(),
                    ..ServeArgs::default()
                },
            ),
            (
                "--env-file",
                ServeArgs {
                    env_file: empty(),
                    ..ServeArgs::default()
                },
            ),
        ];
        for (flag, serve) in cases {
            let message = error_of(load(&serve, &[]));
            assert!(message.contains(flag), "{message}");
        }
    }

    #[test]
    fn flag_errors_name_the_flag_not_the_variable() {
        let message = error_of(load(&args("--workers x"), &[("WEB_CONCURRENCY", "4")]));
        assert!(
            message.contains("--workers") && !message.contains("WEB_CONCURRENCY"),
            "{message}"
        );
        let message = error_of(load_env(&[("WEB_CONCURRENCY", "x")]));
        assert!(message.contains("WEB_CONCURRENCY"), "{message}");
    }

    #[test]
    fn rate_limit_error_message() {
        assert_eq!(
            error_of(load_env(&[("RATE_LIMITS_START", "abc")])),
            r#"invalid value "abc" for RATE_LIMITS_START: expected N/second|minute|hour|day or "N per minute" (1 <= N <= 100000)"#
        );
    }

    #[test]
    fn only_sync_workers() {
        assert_eq!(
            error_of(load(&args("-k gevent"), &[])),
            r#"--worker-class: only "sync" is supported (got "gevent")"#
        );
    }

    #[test]
    fn duplicate_binds_conflict() {
        let message = error_of(load(&args("-b 127.0.0.1:1 -b 127.0.0.1:1"), &[]));
        assert!(message.starts_with("--bind: 127.0.0.1:1"), "{message}");
        let message = error_of(load_env(&[("BLITZ_BIND", "[::1]:1,[::1]:1")]));
        assert!(message.starts_with("BLITZ_BIND: [::1]:1"), "{message}");
    }

    #[test]
    fn secrets_stay_out_of_error_messages() {
        let cases = [
            ("ADMIN_PASSWORD", "hunter2", "hunter2"),
            ("SECRET_KEY", "s3cr3t-but-short", "s3cr3t"),
            ("SMTP_URL", "smtp://u:pw-in-smtp@mail/path", "pw-in-smtp"),
            ("REDIS_URL", "redis://:pw-in-redis@h/notadb", "pw-in-redis"),
            (
                "RATE_LIMIT_REDIS_URL",
                "redis:pw-in-limits@h",
                "pw-in-limits",
            ),
        ];
        for (name, value, secret) in cases {
            let message = error_of(load_env(&[(name, value)]));
            assert!(
                message.contains(name) && !message.contains(secret),
                "{message}"
            );
        }
    }

    #[test]
    fn public_url_defaults_from_first_bind() {
        assert_eq!(
            load(&args("-b [::]:80"), &[]).unwrap().public_url,
            "http://[::]:80"
        );
        assert_eq!(
            load(&args("-b unix:/run/b.sock -b 127.0.0.1:1"), &[])
                .unwrap()
                .public_url,
            "http://localhost"
        );
        let explicit = load(&args("-b unix:/s"), &[("PUBLIC_URL", "https://x.example")]);
        assert_eq!(explicit.unwrap().public_url, "https://x.example");
    }

    #[test]
    fn instance_dir_holds_the_database() {
        let dir_of = |db: &str| {
            let c = load(&args(&format!("--database {db}")), &[]).unwrap();
            c.instance_dir().to_path_buf()
        };
        assert_eq!(dir_of("instance/database.db"), PathBuf::from("instance"));
        assert_eq!(dir_of("/var/lib/blitz/db"), PathBuf::from("/var/lib/blitz"));
        assert_eq!(dir_of("db.sqlite"), PathBuf::from("."));
    }

    #[test]
    fn load_from_env_reads_the_env_file() {
        let path =
            std::env::temp_dir().join(format!("blitz-config-test-{}.env", std::process::id()));
        std::fs::write(&path, "PAPER_SEED=7\n").unwrap();
        let mut serve = ServeArgs {
            env_file: Some(path.clone()),
            ..ServeArgs::default()
        };
        let loaded = load_from_env(&serve);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.unwrap().paper_seed, Some(7));

        serve.env_file = Some("/nonexistent/blitz.env".into());
        assert!(matches!(
            load_from_env(&serve),
            Err(ConfigError::EnvFileRead { .. })
        ));
    }

    #[test]
    fn describe_masks_secrets() {
        let c = load_env(&[
            ("ADMIN_PASSWORD", "correct horse"),
            ("SECRET_KEY", &"cd".repeat(32)),
            ("SMTP_URL", "smtp://mailer:smtp-pw@mail:587"),
            ("RATE_LIMIT_REDIS_URL", "redis://:limits-pw@redis:6379/1"),
            ("REDIS_URL", "redis://app:redis-pw@redis:6379/0"),
        ])
        .unwrap();
        let rows: HashMap<&str, String> = c.describe().into_iter().collect();
        assert_eq!(rows["ADMIN_PASSWORD"], "***");
        assert_eq!(rows["SECRET_KEY"], "***");
        assert_eq!(rows["SMTP_URL"], "smtp://mailer:***@mail:587");
        assert_eq!(rows["RATE_LIMIT_REDIS_URL"], "redis://:***@redis:6379/1");
        assert_eq!(rows["REDIS_URL"], "redis://app:***@redis:6379/0");
        let all: String = c.describe().into_iter().map(|(_, v)| v).collect();
        let debug = format!("{c:?}");
        assert!(debug.contains("\"SECRET_KEY\": \"***\""), "{debug}");
        for secret in ["correct horse", "cdcd", "smtp-pw", "limits-pw", "redis-pw"] {
            assert!(!all.contains(secret), "{secret} leaked");
            assert!(!debug.contains(secret), "{secret} leaked by Debug");
        }
    }

    #[test]
    fn describe_rows() {
        let rows = load_env(&[]).unwrap().describe();
        let mut names: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
        let value = |name: &str| {
            rows.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("bind"), Some("127.0.0.1:8000"));
        assert_eq!(value("timeout"), Some("30"));
        assert_eq!(value("access-logfile"), Some("none"));
        assert_eq!(value("error-logfile"), Some("<stderr>"));
        assert_eq!(value("forwarded-allow-ips"), Some("127.0.0.1,::1"));
        assert_eq!(value("RATE_LIMITS_GLOBAL"), Some("200/minute"));
        assert_eq!(value("ADMIN_PASSWORD"), Some("none"));
        assert_eq!(value("PAPER_SEED"), Some("random"));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate row names");
    }
}

//! Every setting of `serve`, declared once: its flag, its environment variables, its
//! default, its parser, how `check-config` shows it and its help text.
//!
//! `Config::load` reads each setting through its entry here (see `source`), the
//! `serve` flags of `--help` are built from the same entries (see `cli`), and a test
//! checks that the README's tables are the ones `markdown_flags` and `markdown_env`
//! print. A default is text that the setting's own parser reads, so the default that
//! `--help` shows is by construction the value the server uses.

use std::path::PathBuf;
use std::time::Duration;

use super::error::Expected;
use super::parse::{self, AccessLogFormat, BindAddr, LogLevel, LogTarget, Rate, TrustedProxies};
use super::parse::{PaperPricesSource, WorkerClass, GUNICORN_ACCESS_LOG_FORMAT};
use crate::store::Engine;

/// Upper bound for every seconds setting: beyond any real deployment, and small enough
/// that `Instant + timeout` can never overflow.
const MAX_SECONDS: u64 = 86_400;
pub const MAX_WORKERS: usize = 256;
/// `--max-requests` and its jitter: far beyond any real use, and small enough that
/// `max_requests + jitter + 1` cannot overflow a u64.
const MAX_REQUESTS: u64 = u32::MAX as u64;
/// Bot and paper ticks: at least 10 ms so a typo cannot spin a core, at most a day.
const MIN_TICK_MS: u64 = 10;
const MAX_TICK_MS: u64 = 86_400_000;
const MAX_BANNER_CHARS: usize = 500;

pub const DEFAULT_DATABASE: &str = "instance/database.db";
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// Where a setting's value comes from when neither its flag nor a variable is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// Text the setting's parser reads, as if the operator had typed it.
    Value(&'static str),
    /// Worked out at load time; the text says how (e.g. "number of CPUs").
    Computed(&'static str),
    /// No value: the feature is off. The text is what `check-config` shows.
    Unset(&'static str),
}

/// How a value may be shown in `check-config`, `Debug` and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    Plain,
    /// Never shown: `***` when set.
    Secret,
    /// A URL whose password is replaced by `***`.
    UrlPassword,
}

/// A command-line flag of `serve`.
#[derive(Debug)]
pub struct Flag {
    /// As typed, e.g. `--workers`; error messages name it so.
    pub name: &'static str,
    pub short: Option<char>,
    /// A second spelling that is accepted but not advertised first.
    pub alias: Option<&'static str>,
    /// The value's placeholder in help; `None` for a switch (`--reuse-port`).
    pub value: Option<&'static str>,
    /// Given several times, every value counts (`--bind`).
    pub repeat: bool,
}

impl Flag {
    /// The long name without its dashes, as clap wants it.
    pub fn long(&self) -> &'static str {
        self.name.trim_start_matches('-')
    }
}

/// What every setting declares, whatever its type.
#[derive(Debug)]
pub struct Meta {
    /// The name `check-config` shows: the flag's long name, else the first variable.
    pub key: &'static str,
    pub flag: Option<Flag>,
    /// Variables read when the flag is absent, first match wins.
    pub env: &'static [&'static str],
    pub default: Default,
    pub mask: Mask,
    pub help: &'static str,
}

impl Meta {
    /// The default as help and the README show it.
    pub fn default_text(&self) -> &'static str {
        match self.default {
            Default::Value(text) | Default::Computed(text) | Default::Unset(text) => text,
        }
    }

    /// The `--help` line: the meaning, then where else it is read and its default.
    pub fn help_line(&self) -> String {
        let mut line = self.help.to_string();
        if !self.env.is_empty() {
            line.push_str(&format!(" [env: {}]", self.env.join(", ")));
        }
        match self.default {
            Default::Unset("none") | Default::Value("") => {}
            _ if self.flag.as_ref().is_some_and(|f| f.value.is_none()) => {}
            _ => line.push_str(&format!(" [default: {}]", self.default_text())),
        }
        line
    }
}

/// One setting: its declaration, its parser and how its value is shown.
pub struct Setting<T: 'static> {
    pub meta: Meta,
    pub parse: fn(&str) -> Result<T, Expected>,
    pub show: fn(&T) -> String,
}

fn text<T: ToString>(v: &T) -> String {
    v.to_string()
}

// The signature is `show`'s, `fn(&T) -> String` with `T = PathBuf`.
#[allow(clippy::ptr_arg)]
fn path_text(p: &PathBuf) -> String {
    p.display().to_string()
}

fn secs_text(d: &Duration) -> String {
    d.as_secs().to_string()
}

/// A path given on the command line or in a variable. An empty flag value is refused
/// (the operator typed it); an empty variable never gets here (it means "unset").
fn path(s: &str) -> Result<PathBuf, Expected> {
    if s.is_empty() {
        Err(Expected::new("a file path"))
    } else {
        Ok(PathBuf::from(s))
    }
}

/// Free text taken as is, trimmed (names and versions).
fn trimmed(s: &str) -> Result<String, Expected> {
    Ok(s.trim().to_string())
}

fn tick_ms(s: &str) -> Result<u64, Expected> {
    parse::uint_in(s, MIN_TICK_MS, MAX_TICK_MS)
}

const fn flag(name: &'static str, value: &'static str) -> Option<Flag> {
    Some(Flag {
        name,
        short: None,
        alias: None,
        value: Some(value),
        repeat: false,
    })
}

const fn short(name: &'static str, short: char, value: &'static str) -> Option<Flag> {
    Some(Flag {
        name,
        short: Some(short),
        alias: None,
        value: Some(value),
        repeat: false,
    })
}

const fn meta(
    key: &'static str,
    flag: Option<Flag>,
    env: &'static [&'static str],
    default: Default,
    help: &'static str,
) -> Meta {
    Meta {
        key,
        flag,
        env,
        default,
        mask: Mask::Plain,
        help,
    }
}

/// An environment-only setting; `check-config` shows it by its first variable.
const fn var(env: &'static [&'static str], default: Default, help: &'static str) -> Meta {
    Meta {
        key: env[0],
        flag: None,
        env,
        default,
        mask: Mask::Plain,
        help,
    }
}

const fn masked(mut meta: Meta, mask: Mask) -> Meta {
    meta.mask = mask;
    meta
}

// ---------------------------------------------------------------------------
// `serve` flags (gunicorn's names), some with a variable as fallback

pub static BIND: Setting<Vec<BindAddr>> = Setting {
    meta: meta(
        "bind",
        Some(Flag {
            name: "--bind",
            short: Some('b'),
            alias: None,
            value: Some("ADDR"),
            repeat: true,
        }),
        &["BLITZ_BIND"],
        Default::Value("127.0.0.1:8000"),
        "`HOST:PORT`, `[v6]:PORT` or `unix:PATH`; repeatable (the variable: a comma list)",
    ),
    parse: parse::bind_list,
    show: |binds| {
        let all: Vec<String> = binds.iter().map(BindAddr::to_string).collect();
        all.join(",")
    },
};

pub static WORKERS: Setting<usize> = Setting {
    meta: meta(
        "workers",
        short("--workers", 'w', "N"),
        &["WEB_CONCURRENCY"],
        Default::Computed("number of CPUs"),
        "HTTP worker processes",
    ),
    parse: |s| parse::usize_in(s, 1, MAX_WORKERS),
    show: text,
};

pub static WORKER_CLASS: Setting<WorkerClass> = Setting {
    meta: meta(
        "worker-class",
        short("--worker-class", 'k', "CLASS"),
        &[],
        Default::Value("sync"),
        "only `sync`",
    ),
    parse: parse::worker_class,
    show: text,
};

pub static WORKER_CONNECTIONS: Setting<usize> = Setting {
    meta: meta(
        "worker-connections",
        flag("--worker-connections", "N"),
        &[],
        Default::Value("1000"),
        "client connections one worker holds (keep-alive)",
    ),
    parse: |s| parse::usize_in(s, 1, 1_000_000),
    show: text,
};

pub static MAX_REQUESTS_SETTING: Setting<u64> = Setting {
    meta: meta(
        "max-requests",
        flag("--max-requests", "N"),
        &[],
        Default::Value("0"),
        "a worker is replaced after N requests; 0 = never",
    ),
    parse: |s| parse::uint_in(s, 0, MAX_REQUESTS),
    show: text,
};

pub static MAX_REQUESTS_JITTER: Setting<u64> = Setting {
    meta: meta(
        "max-requests-jitter",
        flag("--max-requests-jitter", "N"),
        &[],
        Default::Value("0"),
        "adds 0..=N to each worker's limit",
    ),
    parse: |s| parse::uint_in(s, 0, MAX_REQUESTS),
    show: text,
};

/// In bytes; the flag is in MB.
pub static MAX_WORKER_MEMORY: Setting<u64> = Setting {
    meta: meta(
        "max-worker-memory",
        flag("--max-worker-memory", "MB"),
        &[],
        Default::Unset("off"),
        "a worker whose private resident memory (RSS minus shared pages) exceeds MB is \
         replaced gracefully (sampled every second)",
    ),
    parse: |s| parse::uint_in(s, 1, 1 << 20).map(|mb| mb << 20),
    show: |bytes| format!("{} MB", bytes >> 20),
};

pub static TIMEOUT: Setting<Duration> = Setting {
    meta: meta(
        "timeout",
        short("--timeout", 't', "S"),
        &[],
        Default::Value("30"),
        "a worker silent for S seconds gets SIGABRT, then SIGKILL",
    ),
    parse: |s| parse::seconds(s, 1, MAX_SECONDS),
    show: secs_text,
};

pub static GRACEFUL_TIMEOUT: Setting<Duration> = Setting {
    meta: meta(
        "graceful-timeout",
        flag("--graceful-timeout", "S"),
        &[],
        Default::Value("30"),
        "time to finish in-flight work on stop/reload",
    ),
    parse: |s| parse::seconds(s, 0, MAX_SECONDS),
    show: secs_text,
};

pub static KEEP_ALIVE: Setting<Duration> = Setting {
    meta: meta(
        "keep-alive",
        flag("--keep-alive", "S"),
        &[],
        Default::Value("2"),
        "idle keep-alive timeout (0 disables keep-alive)",
    ),
    parse: |s| parse::seconds(s, 0, MAX_SECONDS),
    show: secs_text,
};

pub static HEADER_TIMEOUT: Setting<Duration> = Setting {
    meta: meta(
        "header-timeout",
        flag("--header-timeout", "S"),
        &[],
        Default::Value("10"),
        "a request head must arrive within S seconds of its first byte (else 408 and \
         close); a new connection may stay silent as long",
    ),
    parse: |s| parse::seconds(s, 1, MAX_SECONDS),
    show: secs_text,
};

pub static BODY_TIMEOUT: Setting<Duration> = Setting {
    meta: meta(
        "body-timeout",
        flag("--body-timeout", "S"),
        &[],
        Default::Value("30"),
        "a request body must arrive within S seconds of its head (else 408 and close)",
    ),
    parse: |s| parse::seconds(s, 1, MAX_SECONDS),
    show: secs_text,
};

pub static MAX_BUFFERED_BYTES: Setting<usize> = Setting {
    meta: meta(
        "max-buffered-bytes",
        flag("--max-buffered-bytes", "N"),
        &[],
        Default::Value("67108864"),
        "bytes of unfinished request bodies one worker holds; a request that would \
         exceed it → 503 with `Retry-After` (bytes, or with K, M or G)",
    ),
    // usize is 64 bits wherever blitz runs, so every accepted size fits.
    parse: |s| parse::size(s).map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    show: text,
};

pub static BACKLOG: Setting<i32> = Setting {
    meta: meta(
        "backlog",
        flag("--backlog", "N"),
        &[],
        Default::Value("2048"),
        "listen backlog",
    ),
    // At most 65535, so the cast is exact.
    parse: |s| parse::uint_in(s, 1, 65_535).map(|n| n as i32),
    show: text,
};

pub static ACCESS_LOGFILE: Setting<LogTarget> = Setting {
    meta: meta(
        "access-logfile",
        flag("--access-logfile", "PATH"),
        &[],
        Default::Unset("none"),
        "access log file (`-` = stdout)",
    ),
    parse: |s| parse::log_target(s, LogTarget::Stdout),
    show: text,
};

pub static ACCESS_LOGFORMAT: Setting<AccessLogFormat> = Setting {
    meta: meta(
        "access-logformat",
        flag("--access-logformat", "FMT"),
        &[],
        Default::Value(GUNICORN_ACCESS_LOG_FORMAT),
        "gunicorn `%(x)s` atoms, or `json`",
    ),
    parse: parse::access_log_format,
    show: text,
};

pub static ERROR_LOGFILE: Setting<LogTarget> = Setting {
    meta: meta(
        "error-logfile",
        flag("--error-logfile", "PATH"),
        &[],
        Default::Value("-"),
        "JSON error log file (`-` = stderr)",
    ),
    parse: |s| parse::log_target(s, LogTarget::Stderr),
    show: text,
};

pub static LOG_LEVEL: Setting<LogLevel> = Setting {
    meta: meta(
        "log-level",
        flag("--log-level", "LEVEL"),
        &["LOG_LEVEL"],
        Default::Value("info"),
        "debug, info, warning, error, critical",
    ),
    parse: parse::log_level,
    show: text,
};

pub static PID: Setting<PathBuf> = Setting {
    meta: meta(
        "pid",
        short("--pid", 'p', "PATH"),
        &[],
        Default::Unset("none"),
        "pidfile, removed on exit",
    ),
    parse: path,
    show: path_text,
};

/// A path or a PostgreSQL URL; the server takes only a path so far (`Config::load`).
/// Masked: a URL's password never reaches `check-config` or an error message.
pub static DATABASE: Setting<Engine> = Setting {
    meta: masked(
        meta(
            "database",
            flag("--database", "PATH"),
            &["BLITZ_DB_PATH", "DATABASE_URL"],
            Default::Value(DEFAULT_DATABASE),
            "SQLite file; its directory is the *instance dir*. Or a `postgres://` URL \
             (several hosts; needs REDIS_URL); the instance dir is then the default \
             SQLite file's directory",
        ),
        Mask::UrlPassword,
    ),
    parse: |s| {
        Engine::parse(s).map_err(|e| {
            Expected::new(format!(
                "an SQLite file path or a postgres://user:pass@host:port/db URL ({e})"
            ))
        })
    },
    show: |e| e.to_string(),
};

pub static LIMIT_REQUEST_LINE: Setting<usize> = Setting {
    meta: meta(
        "limit-request-line",
        flag("--limit-request-line", "N"),
        &[],
        Default::Value("4094"),
        "longer request line → 414 (0 = unlimited)",
    ),
    parse: |s| parse::usize_in(s, 0, 8190),
    show: text,
};

pub static LIMIT_REQUEST_FIELDS: Setting<usize> = Setting {
    meta: meta(
        "limit-request-fields",
        flag("--limit-request-fields", "N"),
        &[],
        Default::Value("100"),
        "more header fields → 431",
    ),
    parse: |s| parse::usize_in(s, 1, 32_768),
    show: text,
};

pub static LIMIT_REQUEST_FIELD_SIZE: Setting<usize> = Setting {
    meta: meta(
        "limit-request-field_size",
        // gunicorn spells it with an underscore; the all-dash form is what people type.
        Some(Flag {
            name: "--limit-request-field_size",
            short: None,
            alias: Some("--limit-request-field-size"),
            value: Some("N"),
            repeat: false,
        }),
        &[],
        Default::Value("8190"),
        "larger header field → 431 (0 = unlimited)",
    ),
    parse: |s| parse::usize_in(s, 0, usize::MAX),
    show: text,
};

pub static FORWARDED_ALLOW_IPS: Setting<TrustedProxies> = Setting {
    meta: meta(
        "forwarded-allow-ips",
        flag("--forwarded-allow-ips", "LIST"),
        &["FORWARDED_ALLOW_IPS"],
        Default::Value("127.0.0.1,::1"),
        "proxies whose `X-Forwarded-For`/`X-Real-IP` are trusted; `*` trusts all",
    ),
    parse: parse::trusted_proxies,
    show: text,
};

pub static REUSE_PORT: Setting<bool> = Setting {
    meta: meta(
        "reuse-port",
        Some(Flag {
            name: "--reuse-port",
            short: None,
            alias: None,
            value: None,
            repeat: false,
        }),
        &[],
        Default::Value("false"),
        "one `SO_REUSEPORT` listener per worker (\"lane\"), owned by the master",
    ),
    parse: parse::boolean,
    show: text,
};

pub static ENV_FILE: Setting<PathBuf> = Setting {
    meta: meta(
        "env-file",
        flag("--env-file", "PATH"),
        &[],
        Default::Unset("none"),
        "systemd `EnvironmentFile` syntax; its values override the inherited environment; \
         re-read on `HUP`",
    ),
    parse: path,
    show: path_text,
};

// ---------------------------------------------------------------------------
// Environment only

pub static ENVIRONMENT: Setting<String> = Setting {
    meta: var(
        &["FLASK_ENV", "APP_ENV"],
        Default::Value("production"),
        "deployment name shown in `app_info` and logs",
    ),
    parse: trimmed,
    show: text,
};

pub static APP_VERSION: Setting<String> = Setting {
    meta: var(
        &["APP_VERSION"],
        Default::Value("unknown"),
        "version shown by `/healthz` and `app_info`",
    ),
    parse: trimmed,
    show: text,
};

pub static ENABLE_METRICS: Setting<bool> = Setting {
    meta: var(
        &["ENABLE_METRICS"],
        Default::Value("false"),
        "serve `/metrics`",
    ),
    parse: parse::boolean,
    show: text,
};

pub static PROMETHEUS_MULTIPROC_DIR: Setting<PathBuf> = Setting {
    meta: var(
        &["PROMETHEUS_MULTIPROC_DIR"],
        Default::Unset("none"),
        "directory holding the file behind the shared metrics segment",
    ),
    parse: path,
    show: path_text,
};

pub static RATE_LIMIT_REDIS_URL: Setting<String> = Setting {
    meta: masked(
        var(
            &["RATE_LIMIT_REDIS_URL"],
            Default::Unset("none"),
            "Redis for coordination when `REDIS_URL` is not set",
        ),
        Mask::UrlPassword,
    ),
    parse: parse::redis_url,
    show: text,
};

pub static REDIS_URL: Setting<String> = Setting {
    meta: masked(
        var(
            &["REDIS_URL"],
            Default::Computed("`RATE_LIMIT_REDIS_URL`, else none"),
            "Redis for rate limits, guards and the cluster notifications (revocations, \
             maintenance, banner) across instances (`redis://` or `unix://`; no TLS)",
        ),
        Mask::UrlPassword,
    ),
    parse: parse::redis_url,
    show: text,
};

const RATE_HELP: &str = "`N/second|minute|hour|day` or `N per minute`";

pub static RATE_LIMITS_START: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_START"],
        Default::Value("10/minute"),
        RATE_HELP,
    ),
    parse: parse::rate,
    show: text,
};

pub static RATE_LIMITS_STOP: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_STOP"],
        Default::Value("10/minute"),
        RATE_HELP,
    ),
    parse: parse::rate,
    show: text,
};

pub static RATE_LIMITS_RECOVER: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_RECOVER"],
        Default::Value("10/minute"),
        RATE_HELP,
    ),
    parse: parse::rate,
    show: text,
};

pub static RATE_LIMITS_STATUS: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_STATUS"],
        Default::Value("30/minute"),
        RATE_HELP,
    ),
    parse: parse::rate,
    show: text,
};

pub static RATE_LIMITS_GLOBAL: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_GLOBAL"],
        Default::Value("200/minute"),
        "the all-users ceiling per group; `N/second|minute|hour|day` or `N per minute`",
    ),
    parse: parse::rate,
    show: text,
};

pub static RATE_LIMITS_REGISTER: Setting<Rate> = Setting {
    meta: var(
        &["RATE_LIMITS_REGISTER"],
        Default::Value("5/hour"),
        "registrations per client IP; `N/second|minute|hour|day` or `N per minute`",
    ),
    parse: parse::rate,
    show: text,
};

pub static SECURITY_CSP: Setting<String> = Setting {
    meta: var(
        &["SECURITY_CSP"],
        Default::Value(DEFAULT_CSP),
        "`Content-Security-Policy` of every response",
    ),
    parse: parse::header_value,
    show: text,
};

pub static MAX_REQUEST_BYTES: Setting<u64> = Setting {
    meta: var(
        &["MAX_REQUEST_BYTES"],
        Default::Value("1048576"),
        "larger body → 413 (bytes, or with K, M or G)",
    ),
    parse: parse::size,
    show: text,
};

pub static SESSION_SECURE: Setting<bool> = Setting {
    meta: var(
        &["SESSION_SECURE"],
        Default::Value("false"),
        "session cookie only over HTTPS",
    ),
    parse: parse::boolean,
    show: text,
};

pub static CSRF_SSL_STRICT: Setting<bool> = Setting {
    meta: var(
        &["CSRF_SSL_STRICT"],
        Default::Value("false"),
        "unsafe browser requests must come from `PUBLIC_URL`'s origin",
    ),
    parse: parse::boolean,
    show: text,
};

pub static MAINTENANCE_MODE_DEFAULT: Setting<bool> = Setting {
    meta: var(
        &["MAINTENANCE_MODE_DEFAULT"],
        Default::Value("false"),
        "maintenance mode on a fresh database",
    ),
    parse: parse::boolean,
    show: text,
};

pub static BROADCAST_BANNER: Setting<String> = Setting {
    meta: var(
        &["BROADCAST_BANNER"],
        Default::Value(""),
        "banner on a fresh database (at most 500 characters)",
    ),
    parse: |s| parse::short_text(s, MAX_BANNER_CHARS),
    show: text,
};

pub static ADMIN_EMAIL: Setting<String> = Setting {
    meta: var(
        &["ADMIN_EMAIL"],
        Default::Value("admin@admin.com"),
        "the admin account made on first start",
    ),
    parse: parse::email,
    show: text,
};

pub static ADMIN_PASSWORD: Setting<String> = Setting {
    meta: masked(
        var(
            &["ADMIN_PASSWORD"],
            Default::Unset("none"),
            "its password (at least 8 characters); generated and logged once when unset",
        ),
        Mask::Secret,
    ),
    parse: parse::password,
    show: text,
};

pub static ADMIN_REQUIRE_2FA: Setting<bool> = Setting {
    meta: var(
        &["ADMIN_REQUIRE_2FA"],
        Default::Value("false"),
        "admins without two-factor login get 403 on admin pages and APIs",
    ),
    parse: parse::boolean,
    show: text,
};

pub static SECRET_KEY: Setting<Vec<u8>> = Setting {
    meta: masked(
        var(
            &["SECRET_KEY"],
            Default::Unset("none"),
            "≥ 64 hex digits or base64 of ≥ 32 bytes; generated into \
             `<instance dir>/secret_key` when unset",
        ),
        Mask::Secret,
    ),
    parse: parse::secret_key,
    show: |_| "***".to_string(),
};

pub static SMTP_URL: Setting<String> = Setting {
    meta: masked(
        var(
            &["SMTP_URL"],
            Default::Unset("none"),
            "`smtp://` or `smtps://` relay; unset: mail goes to `<instance dir>/outbox`",
        ),
        Mask::UrlPassword,
    ),
    parse: parse::smtp_url,
    show: text,
};

pub static MAIL_FROM: Setting<String> = Setting {
    meta: var(
        &["MAIL_FROM"],
        Default::Value("blitz@localhost"),
        "sender of account mails: an address or `Name <address>`",
    ),
    parse: parse::mailbox,
    show: text,
};

pub static PUBLIC_URL: Setting<String> = Setting {
    meta: var(
        &["PUBLIC_URL"],
        Default::Computed("`http://` + the first bind"),
        "base of the links in mails",
    ),
    parse: parse::http_url,
    show: text,
};

pub static BOT_TICK_MS: Setting<u64> = Setting {
    meta: var(
        &["BOT_TICK_MS"],
        Default::Value("1000"),
        "milliseconds between two steps of a bot",
    ),
    parse: tick_ms,
    show: text,
};

pub static INSTANCE_NAME: Setting<String> = Setting {
    meta: var(
        &["INSTANCE_NAME"],
        Default::Computed("the host name"),
        "this instance's name in a cluster (PostgreSQL): the holder of its bot leases",
    ),
    parse: instance_name,
    show: text,
};

pub static BOT_LEASE_SECONDS: Setting<u64> = Setting {
    meta: var(
        &["BOT_LEASE_SECONDS"],
        Default::Value("15"),
        "seconds an instance holds its users' bots without renewing (PostgreSQL, 3 to 3600); \
         a dead instance's bots run again elsewhere within about this",
    ),
    parse: |s| parse::uint_in(s, 3, 3600),
    show: text,
};

/// A name usable in a Redis key and a log line: 1–64 letters, digits, `-`, `_`, `.`.
fn instance_name(s: &str) -> Result<String, Expected> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Expected::new("1 to 64 letters, digits, '-', '_' or '.'"))
    }
}

pub static BOTS_PER_USER: Setting<u32> = Setting {
    meta: var(
        &["BOTS_PER_USER"],
        Default::Value("10"),
        "bots one user may have (1 to 10000); creating one more → 409 limit_reached",
    ),
    parse: |s| parse::uint_in(s, 1, 10_000).map(|n| n as u32),
    show: text,
};

pub static PAPER_TICK_MS: Setting<u64> = Setting {
    meta: var(
        &["PAPER_TICK_MS"],
        Default::Value("1000"),
        "milliseconds between two paper prices",
    ),
    parse: tick_ms,
    show: text,
};

pub static PAPER_VOLATILITY: Setting<f64> = Setting {
    meta: var(
        &["PAPER_VOLATILITY"],
        Default::Unset("60 % a year"),
        "relative size of a paper price step (between 0 and 1); unset: \
         0.6 × √(PAPER_TICK_MS / one year), a walk of about 60 % volatility a year",
    ),
    parse: parse::open_unit_fraction,
    show: text,
};

pub static PAPER_FUNDING_RATE: Setting<rust_decimal::Decimal> = Setting {
    meta: var(
        &["PAPER_FUNDING_RATE"],
        Default::Value("0.0001"),
        "funding rate of the paper exchange's 8-hourly settlements without live prices \
         (between -0.01 and 0.01, exclusive)",
    ),
    parse: parse::funding_rate,
    show: text,
};

pub static PAPER_SEED: Setting<u64> = Setting {
    meta: var(
        &["PAPER_SEED"],
        Default::Unset("random"),
        "seed of the paper price walk, for repeatable runs",
    ),
    parse: |s| parse::uint_in(s, 0, u64::MAX),
    show: text,
};

pub static PAPER_PRICES: Setting<PaperPricesSource> = Setting {
    meta: meta(
        "paper-prices",
        flag("--paper-prices", "SOURCE"),
        &["PAPER_PRICES"],
        Default::Value("walk"),
        "paper exchange prices: `walk` (the seeded random walk), `bybit` or `bingx` (that \
         exchange's live public prices) or `replay:PATH` (a CSV file of \
         `seconds,symbol,price` lines, checked at start; docs/bots.md)",
    ),
    parse: parse::paper_prices,
    show: text,
};

pub static TELEGRAM_API_URL: Setting<String> = Setting {
    meta: var(
        &["TELEGRAM_API_URL"],
        Default::Value("https://api.telegram.org"),
        "the Telegram Bot API base (a proxy or a test double)",
    ),
    parse: parse::http_url,
    show: text,
};

pub static BYBIT_BASE_URL: Setting<String> = Setting {
    meta: var(
        &["BYBIT_BASE_URL"],
        Default::Value("https://api.bybit.com"),
        "Bybit v5 REST base (testnet or a fake)",
    ),
    parse: parse::http_url,
    show: text,
};

pub static BINGX_BASE_URL: Setting<String> = Setting {
    meta: var(
        &["BINGX_BASE_URL"],
        Default::Value("https://open-api.bingx.com"),
        "BingX REST base",
    ),
    parse: parse::http_url,
    show: text,
};

pub static BYBIT_WS_PUBLIC_URL: Setting<String> = Setting {
    meta: var(
        &["BYBIT_WS_PUBLIC_URL"],
        Default::Value("wss://stream.bybit.com/v5/public/linear"),
        "Bybit v5 public linear WebSocket (live prices; testnet or a fake)",
    ),
    parse: parse::ws_url,
    show: text,
};

pub static BINGX_WS_PUBLIC_URL: Setting<String> = Setting {
    meta: var(
        &["BINGX_WS_PUBLIC_URL"],
        Default::Value("wss://open-api-swap.bingx.com/swap-market"),
        "BingX perpetual swap market WebSocket (live prices)",
    ),
    parse: parse::ws_url,
    show: text,
};

pub static BYBIT_WS_PRIVATE_URL: Setting<String> = Setting {
    meta: var(
        &["BYBIT_WS_PRIVATE_URL"],
        Default::Value("wss://stream.bybit.com/v5/private"),
        "Bybit v5 private WebSocket (the bots' orders, fills, positions; testnet or a fake)",
    ),
    parse: parse::ws_url,
    show: text,
};

pub static BINGX_WS_USER_URL: Setting<String> = Setting {
    meta: var(
        &["BINGX_WS_USER_URL"],
        Default::Value("wss://open-api-swap.bingx.com/swap-market"),
        "BingX perpetual swap account WebSocket (`?listenKey=` is added)",
    ),
    parse: parse::ws_url,
    show: text,
};

pub static EXCHANGE_TIMEOUT_MS: Setting<u64> = Setting {
    meta: var(
        &["EXCHANGE_TIMEOUT_MS"],
        Default::Value("8000"),
        "milliseconds to wait for an exchange's answer (500 to 60000)",
    ),
    parse: |s| parse::uint_in(s, 500, 60_000),
    show: text,
};

pub static BYBIT_REQUESTS_PER_5S: Setting<u32> = Setting {
    meta: var(
        &["BYBIT_REQUESTS_PER_5S"],
        Default::Value("500"),
        "Bybit REST requests the instance sends per 5 s (1 to 600, Bybit's per-IP limit): the bot runner 80 %, the HTTP workers and the market-data process the rest",
    ),
    parse: |s| parse::uint_in(s, 1, 600).map(|n| n as u32),
    show: text,
};

pub static BINGX_REQUESTS_PER_10S: Setting<u32> = Setting {
    meta: var(
        &["BINGX_REQUESTS_PER_10S"],
        Default::Value("1600"),
        "BingX account-endpoint requests the instance sends per 10 s (1 to 2000, BingX's per-IP limit), split as Bybit's",
    ),
    parse: |s| parse::uint_in(s, 1, 2000).map(|n| n as u32),
    show: text,
};

pub static BINGX_MARKET_REQUESTS_PER_10S: Setting<u32> = Setting {
    meta: var(
        &["BINGX_MARKET_REQUESTS_PER_10S"],
        Default::Value("400"),
        "BingX market-data requests the instance sends per 10 s (1 to 500, BingX's per-IP limit), split as Bybit's",
    ),
    parse: |s| parse::uint_in(s, 1, 500).map(|n| n as u32),
    show: text,
};

pub static EXCHANGE_RECV_WINDOW_MS: Setting<u64> = Setting {
    meta: var(
        &["EXCHANGE_RECV_WINDOW_MS"],
        Default::Value("5000"),
        "how long a signed request stays valid at the exchange (1000 to 60000)",
    ),
    parse: |s| parse::uint_in(s, 1000, 60_000),
    show: text,
};

pub static MARKETS_REFRESH_S: Setting<u64> = Setting {
    meta: var(
        &["MARKETS_REFRESH_S"],
        Default::Value("3600"),
        "seconds a cached market catalogue is served before it is fetched again (1 to 86400)",
    ),
    parse: |s| parse::uint_in(s, 1, 86_400),
    show: text,
};

pub static CANDLES_REFRESH_MS: Setting<u64> = Setting {
    meta: var(
        &["CANDLES_REFRESH_MS"],
        Default::Value("5000"),
        "milliseconds cached 1m and 5m candles are served before they are fetched again; 15m: 3 times, 1h and longer: 12 times (100 to 600000)",
    ),
    parse: |s| parse::uint_in(s, 100, 600_000),
    show: text,
};

pub static TEST_BOOT_DELAY_MS: Setting<u64> = Setting {
    meta: var(
        &["BLITZ_TEST_BOOT_DELAY_MS"],
        Default::Value("0"),
        "for tests only: workers wait this long before accepting (a release slow to boot)",
    ),
    parse: |s| parse::uint_in(s, 0, 600_000),
    show: text,
};

/// Every setting, in the order `check-config` and the README list them.
pub static ALL: [&Meta; 75] = [
    &BIND.meta,
    &WORKERS.meta,
    &WORKER_CLASS.meta,
    &WORKER_CONNECTIONS.meta,
    &MAX_REQUESTS_SETTING.meta,
    &MAX_REQUESTS_JITTER.meta,
    &MAX_WORKER_MEMORY.meta,
    &TIMEOUT.meta,
    &GRACEFUL_TIMEOUT.meta,
    &KEEP_ALIVE.meta,
    &HEADER_TIMEOUT.meta,
    &BODY_TIMEOUT.meta,
    &MAX_BUFFERED_BYTES.meta,
    &BACKLOG.meta,
    &ACCESS_LOGFILE.meta,
    &ACCESS_LOGFORMAT.meta,
    &ERROR_LOGFILE.meta,
    &LOG_LEVEL.meta,
    &PID.meta,
    &DATABASE.meta,
    &LIMIT_REQUEST_LINE.meta,
    &LIMIT_REQUEST_FIELDS.meta,
    &LIMIT_REQUEST_FIELD_SIZE.meta,
    &FORWARDED_ALLOW_IPS.meta,
    &REUSE_PORT.meta,
    &ENV_FILE.meta,
    &ENVIRONMENT.meta,
    &APP_VERSION.meta,
    &ENABLE_METRICS.meta,
    &PROMETHEUS_MULTIPROC_DIR.meta,
    &RATE_LIMIT_REDIS_URL.meta,
    &REDIS_URL.meta,
    &RATE_LIMITS_START.meta,
    &RATE_LIMITS_STOP.meta,
    &RATE_LIMITS_RECOVER.meta,
    &RATE_LIMITS_STATUS.meta,
    &RATE_LIMITS_GLOBAL.meta,
    &RATE_LIMITS_REGISTER.meta,
    &SECURITY_CSP.meta,
    &MAX_REQUEST_BYTES.meta,
    &SESSION_SECURE.meta,
    &CSRF_SSL_STRICT.meta,
    &MAINTENANCE_MODE_DEFAULT.meta,
    &BROADCAST_BANNER.meta,
    &ADMIN_EMAIL.meta,
    &ADMIN_PASSWORD.meta,
    &ADMIN_REQUIRE_2FA.meta,
    &SECRET_KEY.meta,
    &SMTP_URL.meta,
    &MAIL_FROM.meta,
    &PUBLIC_URL.meta,
    &BOT_TICK_MS.meta,
    &BOTS_PER_USER.meta,
    &INSTANCE_NAME.meta,
    &BOT_LEASE_SECONDS.meta,
    &PAPER_TICK_MS.meta,
    &PAPER_VOLATILITY.meta,
    &PAPER_FUNDING_RATE.meta,
    &PAPER_SEED.meta,
    &PAPER_PRICES.meta,
    &TELEGRAM_API_URL.meta,
    &BYBIT_BASE_URL.meta,
    &BINGX_BASE_URL.meta,
    &BYBIT_WS_PUBLIC_URL.meta,
    &BINGX_WS_PUBLIC_URL.meta,
    &BYBIT_WS_PRIVATE_URL.meta,
    &BINGX_WS_USER_URL.meta,
    &EXCHANGE_TIMEOUT_MS.meta,
    &EXCHANGE_RECV_WINDOW_MS.meta,
    &BYBIT_REQUESTS_PER_5S.meta,
    &BINGX_REQUESTS_PER_10S.meta,
    &BINGX_MARKET_REQUESTS_PER_10S.meta,
    &MARKETS_REFRESH_S.meta,
    &CANDLES_REFRESH_MS.meta,
    &TEST_BOOT_DELAY_MS.meta,
];

// ---------------------------------------------------------------------------
// The README's tables, made from the declarations (a test keeps them equal)

fn default_cell(meta: &Meta) -> String {
    match meta.default {
        Default::Value("") => "empty".to_string(),
        Default::Value(text) => format!("`{text}`"),
        Default::Computed(text) | Default::Unset(text) => text.to_string(),
    }
}

fn env_cell(meta: &Meta) -> String {
    let names: Vec<String> = meta.env.iter().map(|n| format!("`{n}`")).collect();
    names.join(", ")
}

/// The flags table of the README's "Flags" section.
pub fn markdown_flags() -> String {
    let mut out = String::from("| flag | env | default | meaning |\n|---|---|---|---|\n");
    for meta in ALL.iter().filter(|m| m.flag.is_some()) {
        let Some(flag) = &meta.flag else { continue };
        let mut cell = String::from("`");
        if let Some(short) = flag.short {
            cell.push_str(&format!("-{short}, "));
        }
        cell.push_str(flag.name);
        if let Some(value) = flag.value {
            cell.push_str(&format!(" {value}"));
        }
        cell.push('`');
        if flag.repeat {
            cell.push_str(" (repeatable)");
        }
        if let Some(alias) = flag.alias {
            cell.push_str(&format!(" (or `{alias}`)"));
        }
        out.push_str(&format!(
            "| {cell} | {} | {} | {} |\n",
            env_cell(meta),
            default_cell(meta),
            meta.help
        ));
    }
    out
}

/// The environment table of the README's "Flags" section: the settings that have
/// no flag.
pub fn markdown_env() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for meta in ALL.iter().filter(|m| m.flag.is_none()) {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            env_cell(meta),
            default_cell(meta),
            meta.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use clap::CommandFactory;

    use super::*;
    use crate::config::{Cli, Config, ServeArgs};

    #[test]
    fn keys_flags_and_variables_are_unique() {
        let mut keys = HashSet::new();
        let mut seen = HashSet::new();
        for meta in ALL {
            assert!(keys.insert(meta.key), "key {} twice", meta.key);
            if let Some(flag) = &meta.flag {
                assert!(seen.insert(flag.name), "flag {} twice", flag.name);
            }
            for name in meta.env {
                assert!(seen.insert(name), "variable {name} twice");
            }
        }
    }

    /// `load` reads every declared setting exactly once, so `check-config` shows all
    /// of them, in the table's order.
    #[test]
    fn load_reads_every_setting_once() {
        let c = Config::load(&ServeArgs::default(), &HashMap::<String, String>::new()).unwrap();
        let shown: Vec<&str> = c.describe().iter().map(|(k, _)| *k).collect();
        let declared: Vec<&str> = ALL.iter().map(|m| m.key).collect();
        assert_eq!(shown, declared);
    }

    /// Each default that is a value is read by the setting's own parser.
    #[test]
    fn defaults_are_what_check_config_shows() {
        let c = Config::load(&ServeArgs::default(), &HashMap::<String, String>::new()).unwrap();
        let shown: HashMap<&str, &str> =
            c.describe().iter().map(|(k, v)| (*k, v.as_str())).collect();
        for meta in ALL {
            if let Default::Unset(text) = meta.default {
                assert_eq!(shown[meta.key], text, "{}", meta.key);
            }
        }
        assert_eq!(shown["workers"], c.workers.to_string());
        assert_eq!(shown["timeout"], "30");
        assert_eq!(shown["RATE_LIMITS_STATUS"], "30/minute");
    }

    #[test]
    fn serve_help_is_the_table() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for meta in ALL.iter().filter(|m| m.flag.is_some()) {
            let line = meta.help_line();
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&line), "--help lacks {line:?}");
        }
        assert!(flat.contains("[env: WEB_CONCURRENCY] [default: number of CPUs]"));
        assert!(flat.contains("--limit-request-field_size <N>"));
    }

    /// The README's tables are the ones made from the declarations: after changing a
    /// setting, paste the output of this test's failure into the README.
    #[test]
    fn readme_tables_are_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        for table in [markdown_flags(), markdown_env()] {
            assert!(
                readme.contains(&table),
                "README.md lacks this table:\n{table}"
            );
        }
    }
}

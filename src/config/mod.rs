//! The server's configuration: flags over environment over defaults.
//!
//! `settings` declares every setting once (flag, variables, default, parser, how it
//! is shown); `Config::load` reads each through it and either returns a complete,
//! validated `Config` or the first error, so a bad configuration never starts a
//! half-working server (exit 2 naming the flag or variable). Nothing here reads files
//! other than the env file and a paper price replay (`PAPER_PRICES`, checked line by
//! line), opens sockets or resolves names: `check-config` must be side-effect free.

pub mod cli;
pub mod env;
pub mod error;
pub mod parse;
#[cfg(test)]
mod parse_props;
pub mod settings;
mod source;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use cli::{
    Cli, Command, DbArgs, LoadtestArgs, PaperCommand, PaperSide, ServeArgs, TokenCommand,
    UserCommand,
};
pub use env::{EnvLookup, LayeredEnv, ProcessEnv};
pub use error::{ConfigError, Expected};
pub use parse::{
    AccessLogFormat, BindAddr, LogLevel, LogTarget, PaperPricesSource, Rate, TrustedProxies,
    WorkerClass,
};
pub use settings::{DEFAULT_CSP, DEFAULT_DATABASE};

use crate::exchange::paper::replay::{PaperPrices, Replay};
use crate::exchange::rest::RestSettings;
use crate::store::Engine;
use settings as S;
use source::Source;

/// Per-user limits (start, stop, recover, status), their all-users ceiling, and
/// registrations per client IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub start: Rate,
    pub stop: Rate,
    pub recover: Rate,
    pub status: Rate,
    pub global: Rate,
    pub register: Rate,
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
    /// A request head must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A request body must be complete this long after its head.
    pub body_timeout: Duration,
    /// Bytes of unfinished request bodies one worker may hold.
    pub max_buffered_bytes: usize,
    pub backlog: i32,
    /// None = no access log.
    pub access_log: Option<LogTarget>,
    pub access_log_format: AccessLogFormat,
    pub error_log: LogTarget,
    /// `--log-level` / `LOG_LEVEL`.
    pub log_level: LogLevel,
    pub pidfile: Option<PathBuf>,
    /// `--database` / `BLITZ_DB_PATH` / `DATABASE_URL`: an SQLite file, whose
    /// directory is the instance dir, or PostgreSQL.
    pub database: Engine,
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
    /// Admin routes refuse admins without two-factor login.
    pub admin_require_2fa: bool,
    /// None = generate one into `<instance dir>/secret_key` on first start.
    pub secret_key: Option<Vec<u8>>,
    /// None = write mail to `<instance dir>/outbox`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// No trailing slash.
    pub public_url: String,
    pub bot_tick_ms: u64,
    /// `INSTANCE_NAME`: this instance in a cluster (default: the host name).
    pub instance_name: String,
    /// `BOT_LEASE_SECONDS`: how long a user's bots stay with an instance that
    /// stopped renewing (PostgreSQL only).
    pub bot_lease_seconds: u64,
    /// `BOTS_PER_USER`: how many bots one user may have, 1–10000.
    pub bots_per_user: u32,
    pub paper_tick_ms: u64,
    /// Strictly between 0 and 1; `None` = about 60 % a year at `paper_tick_ms`.
    pub paper_volatility: Option<f64>,
    /// `PAPER_FUNDING_RATE`: strictly between −0.01 and 0.01.
    pub paper_funding_rate: rust_decimal::Decimal,
    /// None = seed from the OS.
    pub paper_seed: Option<u64>,
    /// `--paper-prices` / `PAPER_PRICES`: the walk, or a replay file already read and
    /// checked.
    pub paper_prices: PaperPrices,
    /// `TELEGRAM_API_URL`: the Bot API base (no trailing slash).
    pub telegram_api_url: String,
    /// `BYBIT_BASE_URL`, `BINGX_BASE_URL`, `EXCHANGE_TIMEOUT_MS`,
    /// `EXCHANGE_RECV_WINDOW_MS`: where the real exchanges are and how long to wait.
    pub exchanges: RestSettings,
    /// `MARKETS_REFRESH_S`: how long a cached market catalogue is served.
    pub markets_refresh_s: u64,
    /// `CANDLES_REFRESH_MS`: how long cached 1m/5m candles are served (longer
    /// intervals: multiples, `market::candles::Interval::refresh_ms`).
    pub candles_refresh_ms: u64,
    /// `BYBIT_WS_PUBLIC_URL`, `BINGX_WS_PUBLIC_URL`: the public price streams the
    /// market-data process follows.
    pub bybit_ws_public_url: String,
    pub bingx_ws_public_url: String,
    /// `BYBIT_WS_PRIVATE_URL`, `BINGX_WS_USER_URL`: the private account streams
    /// the bot runner follows for the bots' accounts.
    pub bybit_ws_private_url: String,
    pub bingx_ws_user_url: String,
    /// Each setting as `check-config` shows it (secrets masked), in `settings::ALL`
    /// order; recorded by `load`.
    shown: Vec<(&'static str, String)>,
}

/// The instance directory of a database path: the directory that holds it.
pub fn instance_dir_of(database: &Path) -> &Path {
    match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The instance dir of a database setting (see `Config::instance_dir`).
pub fn instance_dir_for(engine: &Engine) -> &Path {
    match engine {
        Engine::Sqlite(path) => instance_dir_of(path),
        Engine::Postgres(_) => instance_dir_of(Path::new(settings::DEFAULT_DATABASE)),
    }
}

impl Config {
    /// Builds the configuration from flags, then `env`, then defaults, each setting as
    /// `settings` declares it. The first bad value stops the load with an error
    /// naming its flag or variable.
    pub fn load(args: &ServeArgs, env: &dyn EnvLookup) -> Result<Config, ConfigError> {
        let mut src = Source::new(args, env);
        let binds = load_binds(&mut src)?;
        let rate_limit_redis_url = src.optional(&S::RATE_LIMIT_REDIS_URL)?;
        let fallback = rate_limit_redis_url.clone();
        let mut config = Config {
            workers: src.value_or(&S::WORKERS, default_workers)?,
            worker_class: src
                .value(&S::WORKER_CLASS)
                .map_err(|e| e.unsupported("only \"sync\" is supported"))?,
            worker_connections: src.value(&S::WORKER_CONNECTIONS)?,
            max_requests: src.value(&S::MAX_REQUESTS_SETTING)?,
            max_requests_jitter: src.value(&S::MAX_REQUESTS_JITTER)?,
            max_worker_memory: src.optional(&S::MAX_WORKER_MEMORY)?,
            test_boot_delay_ms: src.value(&S::TEST_BOOT_DELAY_MS)?,
            timeout: src.value(&S::TIMEOUT)?,
            graceful_timeout: src.value(&S::GRACEFUL_TIMEOUT)?,
            keep_alive: src.value(&S::KEEP_ALIVE)?,
            header_timeout: src.value(&S::HEADER_TIMEOUT)?,
            body_timeout: src.value(&S::BODY_TIMEOUT)?,
            max_buffered_bytes: src.value(&S::MAX_BUFFERED_BYTES)?,
            backlog: src.value(&S::BACKLOG)?,
            access_log: src.optional(&S::ACCESS_LOGFILE)?,
            access_log_format: src.value(&S::ACCESS_LOGFORMAT)?,
            error_log: src.value(&S::ERROR_LOGFILE)?,
            log_level: src.value(&S::LOG_LEVEL)?,
            pidfile: src.optional(&S::PID)?,
            database: src.value(&S::DATABASE)?,
            limit_request_line: src.value(&S::LIMIT_REQUEST_LINE)?,
            limit_request_fields: src.value(&S::LIMIT_REQUEST_FIELDS)?,
            limit_request_field_size: src.value(&S::LIMIT_REQUEST_FIELD_SIZE)?,
            forwarded_allow_ips: src.value(&S::FORWARDED_ALLOW_IPS)?,
            reuse_port: src.value(&S::REUSE_PORT)?,
            env_file: src.optional(&S::ENV_FILE)?,

            environment: src.value(&S::ENVIRONMENT)?,
            app_version: src.value(&S::APP_VERSION)?,
            enable_metrics: src.value(&S::ENABLE_METRICS)?,
            prometheus_multiproc_dir: src.optional(&S::PROMETHEUS_MULTIPROC_DIR)?,
            rate_limit_redis_url,
            redis_url: src.optional_or(&S::REDIS_URL, || fallback)?,
            rate_limits: RateLimits {
                start: src.value(&S::RATE_LIMITS_START)?,
                stop: src.value(&S::RATE_LIMITS_STOP)?,
                recover: src.value(&S::RATE_LIMITS_RECOVER)?,
                status: src.value(&S::RATE_LIMITS_STATUS)?,
                global: src.value(&S::RATE_LIMITS_GLOBAL)?,
                register: src.value(&S::RATE_LIMITS_REGISTER)?,
            },
            security_csp: src.value(&S::SECURITY_CSP)?,
            max_request_bytes: src.value(&S::MAX_REQUEST_BYTES)?,
            session_secure: src.value(&S::SESSION_SECURE)?,
            csrf_ssl_strict: src.value(&S::CSRF_SSL_STRICT)?,
            maintenance_mode_default: src.value(&S::MAINTENANCE_MODE_DEFAULT)?,
            broadcast_banner: src.value(&S::BROADCAST_BANNER)?,
            admin_email: src.value(&S::ADMIN_EMAIL)?,
            admin_password: src.optional(&S::ADMIN_PASSWORD)?,
            admin_require_2fa: src.value(&S::ADMIN_REQUIRE_2FA)?,
            secret_key: src.optional(&S::SECRET_KEY)?,
            smtp_url: src.optional(&S::SMTP_URL)?,
            mail_from: src.value(&S::MAIL_FROM)?,
            // binds[0] exists: load_binds returns the default or at least one item.
            public_url: src.value_or(&S::PUBLIC_URL, || default_public_url(&binds[0]))?,
            bot_tick_ms: src.value(&S::BOT_TICK_MS)?,
            instance_name: src.value_or(&S::INSTANCE_NAME, default_instance_name)?,
            bot_lease_seconds: src.value(&S::BOT_LEASE_SECONDS)?,
            bots_per_user: src.value(&S::BOTS_PER_USER)?,
            paper_tick_ms: src.value(&S::PAPER_TICK_MS)?,
            paper_volatility: src.optional(&S::PAPER_VOLATILITY)?,
            paper_funding_rate: src.value(&S::PAPER_FUNDING_RATE)?,
            paper_seed: src.optional(&S::PAPER_SEED)?,
            paper_prices: load_paper_prices(&mut src)?,
            telegram_api_url: src.value(&S::TELEGRAM_API_URL)?,
            exchanges: RestSettings {
                bybit_url: src.value(&S::BYBIT_BASE_URL)?,
                bingx_url: src.value(&S::BINGX_BASE_URL)?,
                timeout_ms: src.value(&S::EXCHANGE_TIMEOUT_MS)?,
                recv_window_ms: src.value(&S::EXCHANGE_RECV_WINDOW_MS)?,
                limits: crate::exchange::rest::budget::Limits {
                    bybit_per_5s: src.value(&S::BYBIT_REQUESTS_PER_5S)?,
                    bingx_per_10s: src.value(&S::BINGX_REQUESTS_PER_10S)?,
                    bingx_market_per_10s: src.value(&S::BINGX_MARKET_REQUESTS_PER_10S)?,
                },
                proxy: None,
            },
            markets_refresh_s: src.value(&S::MARKETS_REFRESH_S)?,
            candles_refresh_ms: src.value(&S::CANDLES_REFRESH_MS)?,
            bybit_ws_public_url: src.value(&S::BYBIT_WS_PUBLIC_URL)?,
            bingx_ws_public_url: src.value(&S::BINGX_WS_PUBLIC_URL)?,
            bybit_ws_private_url: src.value(&S::BYBIT_WS_PRIVATE_URL)?,
            bingx_ws_user_url: src.value(&S::BINGX_WS_USER_URL)?,
            binds,
            shown: Vec::new(),
        };
        config.shown = src.into_shown();
        if matches!(config.database, Engine::Postgres(_)) && config.redis_url.is_none() {
            return Err(ConfigError::RedisRequired);
        }
        Ok(config)
    }

    /// Defaults only: no flags, empty environment. For unit tests elsewhere in the crate.
    #[cfg(test)]
    pub fn for_tests() -> Config {
        let empty = std::collections::HashMap::new();
        Config::load(&ServeArgs::default(), &empty).expect("the defaults are valid")
    }

    /// Where the instance keeps its files (secret key, outbox, sockets): the SQLite
    /// file's directory; with PostgreSQL, the default SQLite file's directory.
    pub fn instance_dir(&self) -> &Path {
        instance_dir_for(&self.database)
    }

    /// The effective configuration for `blitz check-config`, one row per setting in
    /// the order of `settings::ALL`: flag names for flags, variable names for
    /// environment-only settings. Secrets print as `***`, URL passwords as `***`.
    pub fn describe(&self) -> &[(&'static str, String)] {
        &self.shown
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.shown.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// `Config::load` over the process environment, with the `--env-file` (if given) on
/// top. Call again on `SIGHUP` to re-read the file.
pub fn load_from_env(args: &ServeArgs) -> Result<Config, ConfigError> {
    // The flag alone says where the file is; read it the way `load` will.
    let env_file = Source::new(args, &ProcessEnv).optional(&S::ENV_FILE)?;
    let env = match &env_file {
        Some(path) => LayeredEnv::from_file(path)?,
        None => LayeredEnv::none(),
    };
    Config::load(args, &env)
}

// ---------------------------------------------------------------------------
// Loading helpers

/// `--bind` flags if any, else `BLITZ_BIND`, else the default. The same address twice
/// would fail at bind time with a less helpful EADDRINUSE, so it is refused here.
fn load_binds(src: &mut Source<'_>) -> Result<Vec<BindAddr>, ConfigError> {
    let binds = src.list(&S::BIND)?;
    for (i, bind) in binds.iter().enumerate() {
        if binds[..i].contains(bind) {
            return Err(ConfigError::Conflict {
                name: src.origin(&S::BIND.meta),
                reason: format!("{bind} is given more than once"),
            });
        }
    }
    Ok(binds)
}

/// `PAPER_PRICES`, with a replay file read and checked now: a bad line stops the
/// start (or `check-config`) with its line number instead of a running bot meeting it.
fn load_paper_prices(src: &mut Source<'_>) -> Result<PaperPrices, ConfigError> {
    match src.value(&S::PAPER_PRICES)? {
        PaperPricesSource::Walk => Ok(PaperPrices::Walk),
        PaperPricesSource::Live(venue) => Ok(PaperPrices::Live(venue)),
        PaperPricesSource::Replay(path) => match Replay::load(&path) {
            Ok(replay) => Ok(PaperPrices::Replay(Arc::new(replay))),
            Err(e) => Err(ConfigError::BadFile {
                name: src.origin(&S::PAPER_PRICES.meta),
                path,
                reason: e.to_string(),
            }),
        },
    }
}

/// One worker per CPU, within the allowed range.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, S::MAX_WORKERS)
}

/// The host name (what `hostname` prints), kept to the characters a name may
/// have; "blitz" if the kernel does not say.
fn default_instance_name() -> String {
    let name: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    if name.is_empty() {
        "blitz".to_string()
    } else {
        name
    }
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
        assert!((1..=S::MAX_WORKERS).contains(&c.workers));
        assert_eq!(c.worker_class, WorkerClass::Sync);
        assert_eq!(c.worker_connections, 1000);
        assert_eq!((c.max_requests, c.max_requests_jitter), (0, 0));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.graceful_timeout, Duration::from_secs(30));
        assert_eq!(c.keep_alive, Duration::from_secs(2));
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.body_timeout, Duration::from_secs(30));
        assert_eq!(c.max_buffered_bytes, 64 << 20);
        assert_eq!(c.backlog, 2048);
        assert_eq!(c.access_log, None);
        assert_eq!(c.access_log_format, AccessLogFormat::default());
        assert_eq!(c.error_log, LogTarget::Stderr);
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.pidfile, None);
        assert_eq!(
            c.database,
            Engine::Sqlite(PathBuf::from("instance/database.db"))
        );
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
                register: Rate {
                    count: 5,
                    period: Duration::from_secs(3600),
                },
            }
        );
        assert_eq!(c.security_csp, DEFAULT_CSP);
        assert!(DEFAULT_CSP.contains("img-src 'self' data:; object-src"));
        assert_eq!(c.max_request_bytes, 1_048_576);
        assert!(!c.session_secure && !c.csrf_ssl_strict && !c.maintenance_mode_default);
        assert_eq!(c.broadcast_banner, "");
        assert_eq!(c.admin_email, "admin@admin.com");
        assert_eq!(c.admin_password, None);
        assert!(!c.admin_require_2fa);
        assert_eq!(c.secret_key, None);
        assert_eq!(c.smtp_url, None);
        assert_eq!(c.mail_from, "blitz@localhost");
        assert_eq!(c.public_url, "http://127.0.0.1:8000");
        assert_eq!((c.bot_tick_ms, c.paper_tick_ms), (1000, 1000));
        assert_eq!(c.bots_per_user, 10);
        assert_eq!(c.paper_volatility, None);
        assert_eq!(c.paper_funding_rate, rust_decimal::Decimal::new(1, 4));
        assert_eq!(c.paper_seed, None);
        assert!(matches!(c.paper_prices, PaperPrices::Walk));
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
                --header-timeout 3 --body-timeout 4 --max-buffered-bytes 8M --backlog 64 --access-logfile /var/log/a.log --access-logformat json \
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
        assert_eq!(c.header_timeout, Duration::from_secs(3));
        assert_eq!(c.body_timeout, Duration::from_secs(4));
        assert_eq!(c.max_buffered_bytes, 8 << 20);
        assert_eq!(c.backlog, 64);
        assert_eq!(c.access_log, Some(LogTarget::File("/var/log/a.log".into())));
        assert_eq!(c.access_log_format, AccessLogFormat::Json);
        assert_eq!(c.error_log, LogTarget::File("/var/log/e.log".into()));
        assert_eq!(c.pidfile, Some("/run/blitz.pid".into()));
        assert_eq!(
            c.database,
            Engine::Sqlite(PathBuf::from("/srv/blitz/db.sqlite"))
        );
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
        assert_eq!(c.database, Engine::Sqlite(PathBuf::from("/flag/db")));
        assert_eq!(
            c.forwarded_allow_ips,
            parse::trusted_proxies("10.0.0.3").unwrap()
        );

        let c = load_env(&vars).unwrap();
        assert_eq!(c.binds, vec![tcp("10.0.0.1", 1)]);
        assert_eq!(c.workers, 5);
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.database, Engine::Sqlite(PathBuf::from("/env/db")));
        assert_eq!(
            c.forwarded_allow_ips,
            parse::trusted_proxies("10.0.0.2").unwrap()
        );
    }

    #[test]
    fn database_url_is_read_after_blitz_db_path_and_postgres_needs_redis() {
        let file = |p: &str| Engine::Sqlite(PathBuf::from(p));
        let c = load_env(&[("DATABASE_URL", "/from/database_url")]).unwrap();
        assert_eq!(c.database, file("/from/database_url"));
        let both = [("BLITZ_DB_PATH", "/env/db"), ("DATABASE_URL", "/other/db")];
        assert_eq!(load_env(&both).unwrap().database, file("/env/db"));

        let url = "postgres://blitz:pw-secret@db:5432/blitz";
        for (flags, vars, name) in [
            ("", vec![("DATABASE_URL", url)], "DATABASE_URL"),
            ("", vec![("BLITZ_DB_PATH", url)], "BLITZ_DB_PATH"),
            (
                "--database postgresql://blitz:pw-secret@db/b",
                vec![],
                "--database",
            ),
        ] {
            let err = load(&args(flags), &vars).unwrap_err();
            assert!(matches!(err, ConfigError::RedisRequired), "{name}: {err:?}");
            assert!(err.to_string().starts_with("REDIS_URL: required"), "{err}");
            let mut with_redis = vars.clone();
            with_redis.push(("REDIS_URL", "redis://127.0.0.1:6379/0"));
            let c = load(&args(flags), &with_redis).unwrap();
            assert!(matches!(c.database, Engine::Postgres(_)), "{name}");
            assert_eq!(c.instance_dir(), Path::new("instance"));
            let shown = c.database.to_string();
            assert!(
                shown.contains(":***@db") && !shown.contains("pw-secret"),
                "{shown}"
            );
        }
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
            ("ADMIN_REQUIRE_2FA", "true"),
            ("SECRET_KEY", &key),
            ("SMTP_URL", "smtps://u:p@mail.example.com:465"),
            ("MAIL_FROM", "Blitz <noreply@example.com>"),
            ("PUBLIC_URL", "https://blitz.example.com/"),
            ("BOT_TICK_MS", "10"),
            ("BOTS_PER_USER", "3"),
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
        assert!(c.admin_require_2fa);
        assert_eq!(c.secret_key, Some(vec![0xab; 32]));
        assert_eq!(
            c.smtp_url.as_deref(),
            Some("smtps://u:p@mail.example.com:465")
        );
        assert_eq!(c.mail_from, "Blitz <noreply@example.com>");
        assert_eq!(c.public_url, "https://blitz.example.com");
        assert_eq!((c.bot_tick_ms, c.paper_tick_ms), (10, 250));
        assert_eq!(c.bots_per_user, 3);
        assert_eq!(c.paper_volatility, Some(0.02));
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
        assert_eq!(c.database, Engine::Sqlite(PathBuf::from(DEFAULT_DATABASE)));
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
            ("BOTS_PER_USER", "0"),
            ("BOTS_PER_USER", "10001"),
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
        let cases: [(&str, &str); 20] = [
            ("--bind", "127.0.0.1"),
            ("--workers", "abc"),
            ("--worker-connections", "0"),
            ("--max-requests", "-1"),
            ("--max-requests-jitter", "4294967296"),
            ("--timeout", "0"),
            ("--graceful-timeout", "86401"),
            ("--keep-alive", "2s"),
            ("--header-timeout", "0"),
            ("--body-timeout", "86401"),
            ("--max-buffered-bytes", "0"),
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
        let cases = [
            ("--pid", ServeArgs::default().with("pid", "")),
            ("--database", ServeArgs::default().with("database", "")),
            ("--env-file", ServeArgs::default().with("env-file", "")),
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
        let serve = ServeArgs::default().with("env-file", &path.to_string_lossy());
        let loaded = load_from_env(&serve);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.unwrap().paper_seed, Some(7));

        let serve = ServeArgs::default().with("env-file", "/nonexistent/blitz.env");
        assert!(matches!(
            load_from_env(&serve),
            Err(ConfigError::EnvFileRead { .. })
        ));
    }

    #[test]
    fn paper_prices_replay_is_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.csv");
        std::fs::write(
            &path,
            "seconds,symbol,price\n0,BTC/USDT,60000\n1.5,BTC/USDT,59000\n",
        )
        .unwrap();
        let spec = format!("replay:{}", path.display());
        let c = load_env(&[("PAPER_PRICES", &spec)]).unwrap();
        let PaperPrices::Replay(replay) = &c.paper_prices else {
            panic!("not a replay: {:?}", c.paper_prices);
        };
        assert_eq!(replay.path(), path);
        assert_eq!(
            replay.price_at("BTC/USDT", 1500).map(|p| p.to_string()),
            Some("59000".into())
        );
        let shown: HashMap<&str, &str> =
            c.describe().iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(shown["paper-prices"], spec);

        // The flag wins over the variable, as for every setting.
        let c = load(&args("--paper-prices walk"), &[("PAPER_PRICES", &spec)]).unwrap();
        assert!(matches!(c.paper_prices, PaperPrices::Walk));
    }

    #[test]
    fn paper_prices_errors_name_the_setting_the_path_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.csv");
        std::fs::write(
            &path,
            "seconds,symbol,price\n0,BTC/USDT,60000\n1,BTC/USDT,0\n",
        )
        .unwrap();
        let spec = format!("replay:{}", path.display());
        assert_eq!(
            error_of(load_env(&[("PAPER_PRICES", &spec)])),
            format!(
                "PAPER_PRICES: {}: line 3: price \"0\" is not a decimal above 0",
                path.display()
            )
        );
        let missing = dir.path().join("none.csv");
        let flag = format!("--paper-prices replay:{}", missing.display());
        let e = error_of(load(&args(&flag), &[]));
        assert!(
            e.starts_with(&format!(
                "--paper-prices: {}: cannot read it: ",
                missing.display()
            )),
            "{e}"
        );
        assert_eq!(
            error_of(load_env(&[("PAPER_PRICES", "random")])),
            "invalid value \"random\" for PAPER_PRICES: expected `walk`, `bybit`, `bingx` or \
             `replay:PATH` (a CSV file of prices)"
        );
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
        let rows: HashMap<&str, String> =
            c.describe().iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(rows["ADMIN_PASSWORD"], "***");
        assert_eq!(rows["SECRET_KEY"], "***");
        assert_eq!(rows["SMTP_URL"], "smtp://mailer:***@mail:587");
        assert_eq!(rows["RATE_LIMIT_REDIS_URL"], "redis://:***@redis:6379/1");
        assert_eq!(rows["REDIS_URL"], "redis://app:***@redis:6379/0");
        let all: String = c.describe().iter().map(|(_, v)| v.as_str()).collect();
        let debug = format!("{c:?}");
        assert!(debug.contains("\"SECRET_KEY\": \"***\""), "{debug}");
        for secret in ["correct horse", "cdcd", "smtp-pw", "limits-pw", "redis-pw"] {
            assert!(!all.contains(secret), "{secret} leaked");
            assert!(!debug.contains(secret), "{secret} leaked by Debug");
        }
    }

    #[test]
    fn describe_rows() {
        let c = load_env(&[]).unwrap();
        let rows = c.describe();
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

//! The command line (README, Commands and Flags).
//!
//! Flags are captured as text and checked by `Config::load`, not by clap: that way a
//! bad `--workers` and a bad `WEB_CONCURRENCY` produce the same kind of message, naming
//! the flag or variable and the accepted form. For the same reason no flag has a clap
//! `env =` fallback; `Config::load` reads the environment itself. Numeric flags allow
//! negative numbers so that `--timeout -1` reaches that check instead of being taken
//! for an unknown flag.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, Parser, Subcommand};

/// `blitz <semver> (<git sha or unknown>)`; clap prefixes the name. The sha comes from
/// the build script; builds outside a git checkout say `unknown`.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let sha = option_env!("BLITZ_GIT_SHA").unwrap_or("unknown");
    format!("{} ({sha})", env!("CARGO_PKG_VERSION"))
});

/// The version text without the program name, e.g. `0.1.0 (1a2b3c4)`.
pub fn version() -> &'static str {
    VERSION.as_str()
}

#[derive(Debug, Parser)]
#[command(
    name = "blitz",
    version = version(),
    about = "Pre-fork trading-bot server",
    // `blitz --workers 4` means `blitz serve --workers 4`; mixing the two forms
    // (`blitz --workers 4 serve`) is refused rather than guessed at.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command to run: no subcommand means `serve`, and `--check-config` turns
    /// `serve` into `check-config`.
    pub fn into_command(self) -> Command {
        match self.command.unwrap_or(Command::Serve(self.serve)) {
            Command::Serve(args) if args.check_config => Command::CheckConfig(args),
            command => command,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server in the foreground (the default).
    Serve(ServeArgs),
    /// Validate flags and environment, print the effective configuration, exit 0 or 2.
    CheckConfig(ServeArgs),
    /// Apply pending database migrations and exit (idempotent).
    Migrate(DbArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Simulate users against a running server and report latency per endpoint.
    Loadtest(LoadtestArgs),
}

/// `blitz loadtest` (docs/operations.md, Load test).
#[derive(Clone, Debug, Args)]
pub struct LoadtestArgs {
    /// Base URL of the server
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Simulated users (load-test accounts made in --database)
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Concurrent keep-alive connections
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Seconds to run
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// The server's database: load-test users and their tokens are made there
    #[arg(long, value_name = "PATH")]
    pub database: Option<PathBuf>,
    /// Instead of --database: a file of API tokens, one per line
    #[arg(long, value_name = "FILE", conflicts_with = "database")]
    pub tokens: Option<PathBuf>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// The database the admin commands work on.
#[derive(Clone, Debug, Default, Args)]
pub struct DbArgs {
    /// SQLite database file [env: BLITZ_DB_PATH] [default: instance/database.db]
    #[arg(long, value_name = "PATH")]
    pub database: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a verified user; without --password-stdin a password is generated and
    /// printed once.
    Create {
        #[arg(long, value_name = "E")]
        email: String,
        /// Give the user the admin role
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set a user's password (read from standard input); ends all their sessions.
    SetPassword {
        #[arg(long, value_name = "E")]
        email: String,
        /// Read the password from the first line of standard input (required)
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API bearer token for a user and print it (shown once).
    Create {
        #[arg(long, value_name = "E")]
        email: String,
        /// A name to recognise the token by [default: cli]
        #[arg(long, value_name = "N")]
        name: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The `serve` flags, named as in gunicorn so its command lines work unchanged.
/// Numbers are kept as text; `Config::load` parses them.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Listen address: HOST:PORT, [IPv6]:PORT or unix:PATH; repeatable
    /// [env: BLITZ_BIND, comma list] [default: 127.0.0.1:8000]
    #[arg(short = 'b', long = "bind", value_name = "ADDR")]
    pub bind: Vec<String>,

    /// HTTP worker processes [env: WEB_CONCURRENCY] [default: number of CPUs]
    #[arg(short = 'w', long, value_name = "N", allow_negative_numbers = true)]
    pub workers: Option<String>,

    /// Worker model; only "sync" [default: sync]
    #[arg(short = 'k', long, value_name = "CLASS")]
    pub worker_class: Option<String>,

    /// Open client connections one worker holds [default: 1000]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub worker_connections: Option<String>,

    /// Requests after which a worker is replaced; 0 = never [default: 0]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_requests: Option<String>,

    /// Random 0..=N added to each worker's --max-requests [default: 0]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_requests_jitter: Option<String>,

    /// Resident memory (MB) past which a worker is replaced gracefully [default: off]
    #[arg(long, value_name = "MB", allow_negative_numbers = true)]
    pub max_worker_memory: Option<String>,

    /// Seconds without heartbeat before a worker is killed [default: 30]
    #[arg(short = 't', long, value_name = "S", allow_negative_numbers = true)]
    pub timeout: Option<String>,

    /// Seconds workers get to finish in-flight work on stop/reload [default: 30]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub graceful_timeout: Option<String>,

    /// Idle keep-alive seconds; 0 disables keep-alive [default: 2]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub keep_alive: Option<String>,

    /// Listen backlog [default: 2048]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub backlog: Option<String>,

    /// Access log file, "-" for stdout [default: off]
    #[arg(long, value_name = "PATH")]
    pub access_logfile: Option<String>,

    /// Access log format (gunicorn %(x)s atoms) or "json"
    #[arg(long, value_name = "FMT")]
    pub access_logformat: Option<String>,

    /// Error log file, "-" for stderr [default: -]
    #[arg(long, value_name = "PATH")]
    pub error_logfile: Option<String>,

    /// debug, info, warning, error or critical [env: LOG_LEVEL] [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Pidfile, removed on exit
    #[arg(short = 'p', long = "pid", value_name = "PATH")]
    pub pid: Option<PathBuf>,

    /// SQLite database file [env: BLITZ_DB_PATH] [default: instance/database.db]
    #[arg(long, value_name = "PATH")]
    pub database: Option<PathBuf>,

    /// Longest request line in bytes, 0 = unlimited; longer → 414 [default: 4094]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub limit_request_line: Option<String>,

    /// Most header fields per request; more → 431 [default: 100]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub limit_request_fields: Option<String>,

    /// Largest header field in bytes, 0 = unlimited; larger → 431 [default: 8190]
    // gunicorn spells it with an underscore; the all-dash form is what people type.
    #[arg(
        long = "limit-request-field_size",
        alias = "limit-request-field-size",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub limit_request_field_size: Option<String>,

    /// Proxies whose X-Forwarded-* headers are trusted: "*" or comma list of IPs
    /// [env: FORWARDED_ALLOW_IPS] [default: 127.0.0.1,::1]
    #[arg(long, value_name = "LIST")]
    pub forwarded_allow_ips: Option<String>,

    /// Set SO_REUSEPORT on listeners
    #[arg(long)]
    pub reuse_port: bool,

    /// Environment file (systemd EnvironmentFile syntax), re-read on HUP
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Same as the check-config command
    #[arg(long)]
    pub check_config: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A production gunicorn line, minus `gunicorn` and `run:app`.
    const GUNICORN_FLAGS: &str = "--workers 9 --worker-class sync --worker-connections 1000 \
        --max-requests 1000 --max-requests-jitter 100 --bind 0.0.0.0:8000 \
        --access-logfile - --error-logfile - --log-level info";

    /// Parses a command line, split on whitespace, after the program name.
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("blitz").chain(line.split_whitespace()))
    }

    fn assert_gunicorn_flags(args: &ServeArgs) {
        assert_eq!(args.workers.as_deref(), Some("9"));
        assert_eq!(args.worker_class.as_deref(), Some("sync"));
        assert_eq!(args.worker_connections.as_deref(), Some("1000"));
        assert_eq!(args.max_requests.as_deref(), Some("1000"));
        assert_eq!(args.max_requests_jitter.as_deref(), Some("100"));
        assert_eq!(args.bind, vec!["0.0.0.0:8000".to_string()]);
        assert_eq!(args.access_logfile.as_deref(), Some("-"));
        assert_eq!(args.error_logfile.as_deref(), Some("-"));
        assert_eq!(args.log_level.as_deref(), Some("info"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn gunicorn_line_with_serve() {
        match parse(&format!("serve {GUNICORN_FLAGS}"))
            .unwrap()
            .into_command()
        {
            Command::Serve(args) => assert_gunicorn_flags(&args),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn gunicorn_line_without_subcommand() {
        let cli = parse(GUNICORN_FLAGS).unwrap();
        assert!(cli.command.is_none());
        assert_gunicorn_flags(&cli.serve);
        assert!(matches!(cli.into_command(), Command::Serve(_)));
    }

    #[test]
    fn no_arguments_means_serve_with_defaults() {
        match parse("").unwrap().into_command() {
            Command::Serve(args) => {
                assert!(args.bind.is_empty() && args.workers.is_none() && !args.check_config)
            }
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn short_flags_and_repeated_bind() {
        let cli =
            parse("-b 127.0.0.1:1 -b unix:/tmp/s -w 2 -k sync -t 5 -p /run/blitz.pid").unwrap();
        assert_eq!(cli.serve.bind, vec!["127.0.0.1:1", "unix:/tmp/s"]);
        assert_eq!(cli.serve.workers.as_deref(), Some("2"));
        assert_eq!(cli.serve.worker_class.as_deref(), Some("sync"));
        assert_eq!(cli.serve.timeout.as_deref(), Some("5"));
        assert_eq!(cli.serve.pid, Some(PathBuf::from("/run/blitz.pid")));
    }

    #[test]
    fn remaining_long_flags() {
        let cli = parse(
            "serve --graceful-timeout 10 --keep-alive 0 --backlog 64 --access-logformat json \
            --database /var/lib/blitz/db.sqlite --limit-request-line 0 --limit-request-fields 50 \
            --forwarded-allow-ips * --reuse-port --env-file /etc/blitz/env",
        )
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("expected serve");
        };
        assert_eq!(args.graceful_timeout.as_deref(), Some("10"));
        assert_eq!(args.keep_alive.as_deref(), Some("0"));
        assert_eq!(args.backlog.as_deref(), Some("64"));
        assert_eq!(args.access_logformat.as_deref(), Some("json"));
        assert_eq!(
            args.database,
            Some(PathBuf::from("/var/lib/blitz/db.sqlite"))
        );
        assert_eq!(args.limit_request_line.as_deref(), Some("0"));
        assert_eq!(args.limit_request_fields.as_deref(), Some("50"));
        assert_eq!(args.forwarded_allow_ips.as_deref(), Some("*"));
        assert!(args.reuse_port);
        assert_eq!(args.env_file, Some(PathBuf::from("/etc/blitz/env")));
    }

    #[test]
    fn field_size_flag_has_both_spellings() {
        for flag in ["--limit-request-field_size", "--limit-request-field-size"] {
            let cli = parse(&format!("{flag} 4096")).unwrap();
            assert_eq!(
                cli.serve.limit_request_field_size.as_deref(),
                Some("4096"),
                "{flag}"
            );
        }
    }

    #[test]
    fn bad_numbers_reach_load_as_text() {
        // clap must not reject these itself: Config::load names the flag and the form.
        let cli = parse("--workers abc --timeout -1").unwrap();
        assert_eq!(cli.serve.workers.as_deref(), Some("abc"));
        assert_eq!(cli.serve.timeout.as_deref(), Some("-1"));
    }

    #[test]
    fn check_config_command_and_flag() {
        assert!(matches!(
            parse("check-config --workers 2").unwrap().into_command(),
            Command::CheckConfig(args) if args.workers.as_deref() == Some("2")
        ));
        assert!(matches!(
            parse("--check-config").unwrap().into_command(),
            Command::CheckConfig(_)
        ));
        assert!(matches!(
            parse("serve --check-config").unwrap().into_command(),
            Command::CheckConfig(_)
        ));
    }

    #[test]
    fn flags_before_a_subcommand_are_refused() {
        assert!(parse("--workers 2 serve").is_err());
    }

    #[test]
    fn unknown_flags_are_refused() {
        assert!(parse("--threads 4").is_err());
        assert!(parse("serve run:app").is_err());
    }

    #[test]
    fn version_names_semver_and_sha() {
        let rendered = Cli::command().render_version();
        let expected_start = format!("blitz {} (", env!("CARGO_PKG_VERSION"));
        assert!(rendered.starts_with(&expected_start), "{rendered:?}");
        assert!(rendered.trim_end().ends_with(')'), "{rendered:?}");
        let sha = option_env!("BLITZ_GIT_SHA").unwrap_or("unknown");
        assert_eq!(version(), format!("{} ({sha})", env!("CARGO_PKG_VERSION")));
    }
}

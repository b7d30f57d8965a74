//! The command line: the commands, and the `serve` flags built from `settings`.
//!
//! Flags are captured as text and checked by `Config::load`, not by clap: that way a
//! bad `--workers` and a bad `WEB_CONCURRENCY` produce the same kind of message, naming
//! the flag or variable and the accepted form. For the same reason no flag has a clap
//! `env =` fallback; `Config::load` reads the environment itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};

use super::env::EnvLookup;
use super::error::ConfigError;
use super::settings::{self, Meta};
use super::source::Source;
use crate::store::Engine;

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
    /// Act on users' paper exchange accounts (through the running server).
    #[command(subcommand)]
    Paper(PaperCommand),
}

#[derive(Debug, Subcommand)]
pub enum PaperCommand {
    /// Close a user's paper position with a market order that is not the bot's, as
    /// a trader closing it on the exchange's site (the server must be running).
    ClosePosition {
        /// The user's id
        #[arg(long, value_name = "ID")]
        user: i64,
        /// The position's symbol, e.g. BTC/USDT
        #[arg(long, value_name = "SYM")]
        symbol: String,
        /// The position's direction
        #[arg(long, value_enum)]
        side: PaperSide,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `--side` of `blitz paper close-position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PaperSide {
    Long,
    Short,
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
    pub database: Option<String>,
    /// Instead of --database: a file of API tokens, one per line
    #[arg(long, value_name = "FILE", conflicts_with = "database")]
    pub tokens: Option<PathBuf>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// Bots per simulated user, 1 to 6: with more than one, each user gets paper bots
    /// on distinct markets (made through /api/bots as needed) and the bot actions go
    /// to /api/bots/<id>/...
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=i64::from(crate::loadtest::MAX_BOTS_PER_USER)))]
    pub bots_per_user: u8,
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
    /// Set a user's password (read from standard input); ends all their sessions
    /// and revokes their API tokens.
    SetPassword {
        #[arg(long, value_name = "E")]
        email: String,
        /// Read the password from the first line of standard input (required)
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Leave the user's API tokens valid
        #[arg(long)]
        keep_tokens: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Turn two-factor login off for a user who lost their authenticator and
    /// recovery codes; ends all their sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long, value_name = "E")]
        email: String,
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

/// The `serve` flags as typed, by setting key (`settings::Meta::key`). Built from
/// the settings table, so every flag of `--help` is a setting `Config::load` reads;
/// values stay text until `Config::load` parses them.
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    values: BTreeMap<&'static str, Vec<String>>,
    /// `--check-config`: the same as the `check-config` command.
    pub check_config: bool,
}

impl ServeArgs {
    /// The values given for a setting's flag, in order (empty when absent).
    pub fn values(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    /// The flag of the setting `key` given once more with `value` (as a later word
    /// on the command line would). For callers that build a command line in code.
    pub fn with(mut self, key: &str, value: &str) -> ServeArgs {
        if let Some(meta) = settings::ALL.iter().find(|m| m.key == key) {
            self.values
                .entry(meta.key)
                .or_default()
                .push(value.to_string());
        }
        self
    }
}

/// The clap argument of a setting's flag, with the help line the table makes.
fn flag_arg(meta: &'static Meta) -> Option<Arg> {
    let flag = meta.flag.as_ref()?;
    let mut arg = Arg::new(meta.key).long(flag.long()).help(meta.help_line());
    if let Some(short) = flag.short {
        arg = arg.short(short);
    }
    if let Some(alias) = flag.alias {
        arg = arg.alias(alias.trim_start_matches('-'));
    }
    Some(match flag.value {
        None => arg.action(ArgAction::SetTrue),
        // Numbers are taken as text so that `--timeout -1` reaches `Config::load`,
        // which names the flag and the accepted form, instead of being taken for
        // an unknown flag.
        Some(name) => arg
            .value_name(name)
            .value_parser(clap::value_parser!(String))
            .allow_negative_numbers(true)
            .action(if flag.repeat {
                ArgAction::Append
            } else {
                ArgAction::Set
            }),
    })
}

impl clap::Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(settings::ALL.iter().copied().filter_map(flag_arg))
            .arg(
                Arg::new("check-config")
                    .long("check-config")
                    .action(ArgAction::SetTrue)
                    .help("Same as the check-config command"),
            )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for meta in settings::ALL.iter().filter(|m| m.flag.is_some()) {
            let given: Vec<String> = match matches.try_get_many::<String>(meta.key) {
                Ok(Some(values)) => values.cloned().collect(),
                // A switch: present or not.
                Err(_) if matches.get_flag(meta.key) => vec!["true".to_string()],
                _ => Vec::new(),
            };
            if !given.is_empty() {
                self.values.insert(meta.key, given);
            }
        }
        self.check_config |= matches.get_flag("check-config");
        Ok(())
    }
}

/// `--database PATH` of the admin commands: the same setting as `serve`'s.
#[derive(Clone, Debug, Default)]
pub struct DbArgs {
    pub database: Option<String>,
}

impl DbArgs {
    /// The database these commands work on: the flag, else the variable, else the
    /// default, exactly as `serve` reads it.
    pub fn engine(&self, env: &dyn EnvLookup) -> Result<Engine, ConfigError> {
        Source::new(&self.as_serve_args(), env).value(&settings::DATABASE)
    }

    fn as_serve_args(&self) -> ServeArgs {
        match &self.database {
            Some(value) => ServeArgs::default().with(settings::DATABASE.meta.key, value),
            None => ServeArgs::default(),
        }
    }
}

impl clap::Args for DbArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(flag_arg(&settings::DATABASE.meta))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for DbArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = DbArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<String>(settings::DATABASE.meta.key) {
            self.database = Some(path.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A production gunicorn line, minus `gunicorn` and `run:app`.
    const GUNICORN_FLAGS: &str = "--workers 9 --worker-class sync --worker-connections 1000 \
        --max-requests 1000 --max-requests-jitter 100 --bind 0.0.0.0:8000 \
        --access-logfile - --error-logfile - --log-level info";

    /// The last value given for a setting's flag.
    fn one<'a>(args: &'a ServeArgs, key: &str) -> Option<&'a str> {
        args.values(key).last().map(String::as_str)
    }

    /// Parses a command line, split on whitespace, after the program name.
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("blitz").chain(line.split_whitespace()))
    }

    fn assert_gunicorn_flags(args: &ServeArgs) {
        assert_eq!(one(args, "workers"), Some("9"));
        assert_eq!(one(args, "worker-class"), Some("sync"));
        assert_eq!(one(args, "worker-connections"), Some("1000"));
        assert_eq!(one(args, "max-requests"), Some("1000"));
        assert_eq!(one(args, "max-requests-jitter"), Some("100"));
        assert_eq!(args.values("bind"), ["0.0.0.0:8000"]);
        assert_eq!(one(args, "access-logfile"), Some("-"));
        assert_eq!(one(args, "error-logfile"), Some("-"));
        assert_eq!(one(args, "log-level"), Some("info"));
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
                assert!(
                    args.values("bind").is_empty()
                        && one(&args, "workers").is_none()
                        && !args.check_config
                )
            }
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn short_flags_and_repeated_bind() {
        let cli =
            parse("-b 127.0.0.1:1 -b unix:/tmp/s -w 2 -k sync -t 5 -p /run/blitz.pid").unwrap();
        assert_eq!(cli.serve.values("bind"), ["127.0.0.1:1", "unix:/tmp/s"]);
        assert_eq!(one(&cli.serve, "workers"), Some("2"));
        assert_eq!(one(&cli.serve, "worker-class"), Some("sync"));
        assert_eq!(one(&cli.serve, "timeout"), Some("5"));
        assert_eq!(one(&cli.serve, "pid"), Some("/run/blitz.pid"));
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
        assert_eq!(one(&args, "graceful-timeout"), Some("10"));
        assert_eq!(one(&args, "keep-alive"), Some("0"));
        assert_eq!(one(&args, "backlog"), Some("64"));
        assert_eq!(one(&args, "access-logformat"), Some("json"));
        assert_eq!(one(&args, "database"), Some("/var/lib/blitz/db.sqlite"));
        assert_eq!(one(&args, "limit-request-line"), Some("0"));
        assert_eq!(one(&args, "limit-request-fields"), Some("50"));
        assert_eq!(one(&args, "forwarded-allow-ips"), Some("*"));
        assert_eq!(one(&args, "reuse-port"), Some("true"));
        assert_eq!(one(&args, "env-file"), Some("/etc/blitz/env"));
    }

    #[test]
    fn field_size_flag_has_both_spellings() {
        for flag in ["--limit-request-field_size", "--limit-request-field-size"] {
            let cli = parse(&format!("{flag} 4096")).unwrap();
            assert_eq!(
                one(&cli.serve, "limit-request-field_size"),
                Some("4096"),
                "{flag}"
            );
        }
    }

    #[test]
    fn bad_numbers_reach_load_as_text() {
        // clap must not reject these itself: Config::load names the flag and the form.
        let cli = parse("--workers abc --timeout -1").unwrap();
        assert_eq!(one(&cli.serve, "workers"), Some("abc"));
        assert_eq!(one(&cli.serve, "timeout"), Some("-1"));
    }

    #[test]
    fn check_config_command_and_flag() {
        assert!(matches!(
            parse("check-config --workers 2").unwrap().into_command(),
            Command::CheckConfig(args) if one(&args, "workers") == Some("2")
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

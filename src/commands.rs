//! The commands of the `blitz` binary (README). Each returns the process exit code:
//! 0 ok, 1 runtime failure, 2 bad usage or invalid configuration.

use std::io::BufRead;

use crate::store::sql::Conn;

use crate::auth::{accounts, token, two_factor, AccountError};
use crate::bots::ladder::Side;
use crate::config::{
    self, DbArgs, EnvLookup, PaperCommand, PaperSide, ServeArgs, TokenCommand, UserCommand,
};
use crate::coord::bus::{self, Topic};
use crate::runner::client::REPLY_TIMEOUT;
use crate::runner::protocol::{PaperOp, PaperReply, PaperRequest};
use crate::runner::route;
use crate::store::{self, pg_migrate, users, Engine};

/// `blitz serve`: validate everything first; a bad configuration never starts.
pub fn serve(args: ServeArgs) -> i32 {
    match config::load_from_env(&args) {
        Ok(cfg) => crate::serve::run(args, cfg),
        Err(e) => {
            eprintln!("blitz: {e}");
            2
        }
    }
}

/// `blitz check-config`: print the effective configuration (secrets masked).
pub fn check_config(args: ServeArgs) -> i32 {
    match config::load_from_env(&args) {
        Ok(cfg) => {
            let rows = cfg.describe();
            let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in rows {
                println!("{k:width$} = {v}");
            }
            0
        }
        Err(e) => {
            eprintln!("blitz: {e}");
            2
        }
    }
}

/// The database a command works on: `--database`, else `BLITZ_DB_PATH` or
/// `DATABASE_URL`, else the default (as for `serve`); a bad value is exit code 2.
fn database(args: &DbArgs) -> Result<Engine, i32> {
    args.engine(&config::ProcessEnv).map_err(|e| {
        eprintln!("blitz: {e}");
        2
    })
}

/// Opens and migrates the database, reporting failure as exit code 1.
fn open(args: &DbArgs) -> Result<Conn, i32> {
    let engine = database(args)?;
    store::connect_migrated(&engine)
        .map(|(conn, _)| conn)
        .map_err(|e| {
            eprintln!("blitz: {e}");
            1
        })
}

/// `blitz migrate`: applies what is pending, on SQLite or PostgreSQL, and says what
/// it did.
pub fn migrate(args: DbArgs) -> i32 {
    let engine = match args.engine(&config::ProcessEnv) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("blitz: {e}");
            return 2;
        }
    };
    let applied = match &engine {
        Engine::Sqlite(path) => store::open_migrated(path)
            .map(|(_, applied)| applied)
            .map_err(|e| e.to_string()),
        Engine::Postgres(url) => pg_migrate::migrate(url).map_err(|e| e.to_string()),
    };
    match applied {
        Ok(applied) if applied.is_empty() => {
            println!("database {engine} is up to date");
            0
        }
        Ok(applied) => {
            for name in applied {
                println!("applied {name}");
            }
            0
        }
        Err(e) => {
            eprintln!("blitz: {e}");
            1
        }
    }
}

pub fn user(cmd: UserCommand) -> i32 {
    match cmd {
        UserCommand::Create {
            email,
            admin,
            password_stdin,
            db,
        } => user_create(&email, admin, password_stdin, &db),
        UserCommand::SetPassword {
            email,
            db,
            keep_tokens,
            ..
        } => {
            let api_tokens = if keep_tokens {
                accounts::ApiTokens::Keep
            } else {
                accounts::ApiTokens::Revoke
            };
            user_set_password(&email, api_tokens, &db)
        }
        UserCommand::Reset2fa { email, db } => user_reset_2fa(&email, &db),
    }
}

/// The account of a command's `--email`, or the exit code that says why not.
fn user_by_email(conn: &Conn, email: &str) -> Result<users::User, i32> {
    match users::by_email(conn, email) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(account_failure(AccountError::NotFound)),
        Err(e) => {
            eprintln!("blitz: {e}");
            Err(1)
        }
    }
}

/// `blitz user reset-2fa`: the operator's way back in for a user without their
/// second factor (docs/operations.md, Two-factor login).
fn user_reset_2fa(email: &str, db: &DbArgs) -> i32 {
    let mut conn = match open(db) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let email = email.trim().to_lowercase();
    let user = match user_by_email(&conn, &email) {
        Ok(u) => u,
        Err(code) => return code,
    };
    match two_factor::reset(&mut conn, user.id) {
        Ok(true) => {
            eprintln!("two-factor login turned off; all sessions of {email} were ended");
            tell_instances();
            0
        }
        Ok(false) => {
            eprintln!("two-factor login was not on for {email}; nothing changed");
            0
        }
        Err(e) => {
            eprintln!("blitz: {e}");
            1
        }
    }
}

fn user_create(email: &str, admin: bool, password_stdin: bool, db: &DbArgs) -> i32 {
    let (password, generated) = if password_stdin {
        match read_password() {
            Ok(p) => (p, false),
            Err(code) => return code,
        }
    } else {
        (token::random_password(), true)
    };
    let conn = match open(db) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match accounts::create_verified(&conn, email, &password, admin) {
        Ok(id) => {
            let role = if admin { "admin" } else { "user" };
            eprintln!("created {role} {} (id {id})", email.trim().to_lowercase());
            if generated {
                // stdout carries only the secret, so scripts can capture it.
                println!("{password}");
            }
            0
        }
        Err(e) => account_failure(e),
    }
}

fn user_set_password(email: &str, api_tokens: accounts::ApiTokens, db: &DbArgs) -> i32 {
    let password = match read_password() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut conn = match open(db) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match accounts::set_password(&mut conn, email, &password, api_tokens) {
        Ok(()) => {
            let tokens = match api_tokens {
                accounts::ApiTokens::Revoke => " and their API tokens revoked",
                accounts::ApiTokens::Keep => "",
            };
            eprintln!("password changed; all sessions of {email} were ended{tokens}");
            tell_instances();
            0
        }
        Err(e) => account_failure(e),
    }
}

pub fn token(cmd: TokenCommand) -> i32 {
    let TokenCommand::Create { email, name, db } = cmd;
    let mut conn = match open(&db) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let email = email.trim().to_lowercase();
    let user = match user_by_email(&conn, &email) {
        Ok(u) => u,
        Err(code) => return code,
    };
    match accounts::create_token(&mut conn, user.id, name.as_deref().unwrap_or("cli")) {
        Ok(t) => {
            println!("{}", t.token);
            0
        }
        Err(e) => account_failure(e),
    }
}

/// Credentials changed: tells the running instances through Redis (`REDIS_URL`,
/// else `RATE_LIMIT_REDIS_URL`, from this command's environment), so that their
/// cached copies go within `bus::POLL` rather than within a second. The change
/// is made either way: a failure is only reported.
fn tell_instances() {
    let env = config::ProcessEnv;
    let url = env
        .get("REDIS_URL")
        .or_else(|| env.get("RATE_LIMIT_REDIS_URL"))
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else { return };
    if let Err(e) = bus::publish_to(url.trim(), Topic::Credentials) {
        eprintln!(
            "blitz: could not tell the running instances through Redis ({e}); \
             their cached copies expire within a second"
        );
    }
}

/// The first line of standard input, without its line ending.
fn read_password() -> Result<String, i32> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => {
            eprintln!("blitz: cannot read the password from stdin: {e}");
            Err(1)
        }
    }
}

fn account_failure(e: AccountError) -> i32 {
    match e {
        AccountError::Invalid(fields) => {
            for (field, msg) in fields {
                let name = if field == "email" {
                    "--email"
                } else {
                    "the password"
                };
                eprintln!("blitz: {name} {msg}");
            }
            2
        }
        AccountError::EmailTaken => {
            eprintln!("blitz: a user with that e-mail already exists");
            1
        }
        AccountError::NotFound => {
            eprintln!("blitz: no user with that e-mail");
            1
        }
        AccountError::TooManyTokens => {
            eprintln!(
                "blitz: that user already has {} API tokens; delete one first",
                accounts::TOKENS_PER_USER
            );
            1
        }
        e => {
            eprintln!("blitz: {e}");
            1
        }
    }
}

/// `blitz paper …`: asks the running bot runner, which owns the paper exchange
/// (docs/operations.md, Paper accounts). Exit 1 when nothing was closed.
pub fn paper(cmd: PaperCommand) -> i32 {
    let PaperCommand::ClosePosition {
        user,
        symbol,
        side,
        db,
    } = cmd;
    let engine = match database(&db) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let socket = crate::runner::socket_in(config::instance_dir_for(&engine));
    let req = PaperRequest {
        op: PaperOp::ClosePosition,
        user_id: user,
        symbol,
        side: match side {
            PaperSide::Long => Side::Long,
            PaperSide::Short => Side::Short,
        },
    };
    // In a cluster the account may be driven by another instance's runner:
    // through Redis (`REDIS_URL` of this command's environment), as the API does.
    let env = config::ProcessEnv;
    let redis = env.get("REDIS_URL").filter(|u| !u.trim().is_empty());
    let here = redis.as_deref().map(|url| route::Here {
        redis_url: url.trim(),
        instance: None,
    });
    let log = slog::Logger::root(slog::Discard, slog::o!());
    match route::call::<_, PaperReply>(&socket, here, &req, REPLY_TIMEOUT, &log) {
        Ok(r) if r.done => {
            println!("{}", r.message);
            0
        }
        Ok(r) => {
            eprintln!("blitz: {}", r.message);
            1
        }
        Err(e) => {
            eprintln!(
                "blitz: {e} ({}): the server must be running, its bot runner owns the paper exchange",
                socket.display()
            );
            1
        }
    }
}

/// `blitz loadtest` (docs/operations.md, Load test).
pub fn loadtest(args: crate::config::LoadtestArgs) -> i32 {
    // Load-test users are made in the server's database directly, either engine.
    let database = match args.database.as_deref().map(Engine::parse).transpose() {
        Ok(database) => database,
        Err(e) => {
            eprintln!("blitz loadtest: --database: {e}");
            return 2;
        }
    };
    crate::loadtest::run(crate::loadtest::Options {
        url: args.url,
        users: args.users.max(1),
        connections: args.connections.max(1),
        duration: std::time::Duration::from_secs(args.duration.max(1)),
        database,
        tokens: args.tokens,
        json: args.json,
        bots_per_user: usize::from(args.bots_per_user),
    })
}

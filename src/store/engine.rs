//! Which storage engine a `--database` / `BLITZ_DB_PATH` / `DATABASE_URL` value
//! names: a file path is SQLite, a `postgres://` or `postgresql://` URL is
//! PostgreSQL (CONTRACT C18).
//!
//! A PostgreSQL URL carries a password, so [`PgUrl`] never shows it: `Display` and
//! `Debug` both print the URL with the password replaced by `***`, and this is the
//! only form that reaches messages and logs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::config::parse::mask_url_password;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout=`): an unreachable host fails the command instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("empty")]
    Empty,
    #[error("scheme {0:?} is neither postgres nor postgresql")]
    Scheme(String),
    #[error("the PostgreSQL client refuses it: {0}")]
    BadUrl(String),
}

impl Engine {
    pub fn parse(s: &str) -> Result<Engine, EngineError> {
        if s.is_empty() {
            return Err(EngineError::Empty);
        }
        match url_scheme(s) {
            // As the client reads them: lower case only.
            Some("postgres" | "postgresql") => PgUrl::parse(s).map(Engine::Postgres),
            Some(scheme) => Err(EngineError::Scheme(scheme.to_string())),
            None => Ok(Engine::Sqlite(PathBuf::from(s))),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Sqlite(path) => write!(f, "{}", path.display()),
            Engine::Postgres(url) => url.fmt(f),
        }
    }
}

/// The scheme of `scheme://…`, when the text before `://` is one (letters, digits,
/// `+`, `-`, `.`, starting with a letter); a path such as `./a://b` has none.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// A PostgreSQL connection URL, checked when parsed, shown only masked.
#[derive(Clone)]
pub struct PgUrl {
    text: String,
    /// Boxed: a few hundred bytes that would make every `Engine` that large.
    config: Box<postgres::Config>,
}

impl PgUrl {
    fn parse(s: &str) -> Result<PgUrl, EngineError> {
        let mut config = postgres::Config::from_str(s)
            // The parser's message names the offending part, never the password.
            .map_err(|e| EngineError::BadUrl(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(EngineError::BadUrl("no host".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(PgUrl {
            text: s.to_string(),
            config: Box::new(config),
        })
    }

    /// What the client connects with.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }
}

impl PartialEq for PgUrl {
    fn eq(&self, other: &PgUrl) -> bool {
        self.text == other.text
    }
}

impl Eq for PgUrl {}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url_password(&self.text))
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({:?})", mask_url_password(&self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> PgUrl {
        match Engine::parse(s) {
            Ok(Engine::Postgres(url)) => url,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn paths_are_sqlite_and_both_url_schemes_are_postgres() {
        for path in [
            "instance/database.db",
            "/srv/blitz/db.sqlite",
            "./a://b",
            "db",
        ] {
            assert_eq!(Engine::parse(path), Ok(Engine::Sqlite(PathBuf::from(path))));
        }
        for url in [
            "postgres://blitz:pw@127.0.0.1:5432/blitz",
            "postgresql://blitz@db.example/blitz",
            "postgres://%2Frun%2Fpostgresql/blitz",
        ] {
            pg(url);
        }
    }

    #[test]
    fn other_urls_and_bad_postgres_urls_are_refused() {
        assert_eq!(Engine::parse(""), Err(EngineError::Empty));
        assert_eq!(
            Engine::parse("mysql://u:p@h/db"),
            Err(EngineError::Scheme("mysql".into()))
        );
        assert_eq!(
            Engine::parse("POSTGRES://h/db"),
            Err(EngineError::Scheme("POSTGRES".into()))
        );
        for bad in [
            "postgres://u:secret@h:notaport/db",
            "postgres://u:secret@h/db?nonsense=1",
        ] {
            let err = Engine::parse(bad).unwrap_err();
            assert!(matches!(err, EngineError::BadUrl(_)), "{bad}: {err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let url = pg("postgres://blitz:s3cr%40t@db.example:6432/prod?sslmode=disable");
        let engine = Engine::Postgres(url.clone());
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            engine.to_string(),
            format!("{engine:?}"),
        ] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(
                shown.contains("postgres://blitz:***@db.example:6432/prod"),
                "{shown}"
            );
        }
        let config = url.config();
        assert_eq!(config.get_user(), Some("blitz"));
        assert_eq!(config.get_password(), Some(&b"s3cr@t"[..]));
        assert_eq!(config.get_dbname(), Some("prod"));
        assert_eq!(config.get_ports(), [6432]);
    }

    #[test]
    fn a_connect_timeout_is_set_unless_the_url_gives_one() {
        let default = pg("postgres://h/db");
        assert_eq!(
            default.config().get_connect_timeout(),
            Some(&CONNECT_TIMEOUT)
        );
        let given = pg("postgres://h/db?connect_timeout=3");
        assert_eq!(
            given.config().get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
    }
}

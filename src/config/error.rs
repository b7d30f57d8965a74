//! Configuration errors.
//!
//! Every message names the flag (`--workers`) or variable (`WEB_CONCURRENCY`) the bad
//! value came from and the accepted form, because the operator reading it has only the
//! message to go on (exit 2 with a message naming the flag or variable).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// What a parser accepts, e.g. `an integer from 1 to 256`.
///
/// Parsers in `parse` return this instead of a `ConfigError` because they do not know
/// which flag or variable they are parsing; `Config::load` adds the name and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected(pub Cow<'static, str>);

impl Expected {
    pub fn new(text: impl Into<Cow<'static, str>>) -> Self {
        Expected(text.into())
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range. `value` is already masked when
    /// the setting is a secret, so the error can be printed as is.
    #[error("invalid value {value:?} for {name}: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: Expected,
    },

    /// A well-formed value naming something this server deliberately does not do.
    #[error("{name}: {reason} (got {value:?})")]
    Unsupported {
        name: &'static str,
        value: String,
        reason: &'static str,
    },

    /// Values that are fine alone but not together.
    #[error("{name}: {reason}")]
    Conflict { name: &'static str, reason: String },

    /// A setting naming a file that cannot be read or whose content is refused;
    /// `reason` says where in the file and what is wrong.
    #[error("{name}: {}: {reason}", path.display())]
    BadFile {
        name: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// Several instances on one PostgreSQL share rate limits, guards and revocations
    /// through Redis (CONTRACT C18).
    #[error(
        "REDIS_URL: required when the database is PostgreSQL (instances on one database \
         share rate limits, guards and revocations through Redis)"
    )]
    RedisRequired,

    #[error("cannot read env file {}: {source}", path.display())]
    EnvFileRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("env file {}, line {line}: {reason}", path.display())]
    EnvFileSyntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl ConfigError {
    /// An invalid value that is a known thing this server does not do: the message
    /// says so instead of listing the accepted forms.
    pub fn unsupported(self, reason: &'static str) -> ConfigError {
        match self {
            ConfigError::Invalid { name, value, .. } => ConfigError::Unsupported {
                name,
                value,
                reason,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_setting_value_and_form() {
        let e = ConfigError::Invalid {
            name: "RATE_LIMITS_START",
            value: "abc".into(),
            expected: Expected::new("N/second|minute|hour|day or \"N per minute\""),
        };
        assert_eq!(
            e.to_string(),
            r#"invalid value "abc" for RATE_LIMITS_START: expected N/second|minute|hour|day or "N per minute""#
        );
    }

    #[test]
    fn control_characters_in_values_are_escaped() {
        // A CSP with an embedded newline must not break the one-line error message.
        let e = ConfigError::Invalid {
            name: "SECURITY_CSP",
            value: "a\r\nb".into(),
            expected: Expected::new("x"),
        };
        assert!(e.to_string().contains(r#""a\r\nb""#));
    }

    #[test]
    fn unsupported_leads_with_the_name() {
        let e = ConfigError::Unsupported {
            name: "--worker-class",
            value: "gevent".into(),
            reason: "only \"sync\" is supported",
        };
        assert_eq!(
            e.to_string(),
            r#"--worker-class: only "sync" is supported (got "gevent")"#
        );
    }

    #[test]
    fn env_file_syntax_names_file_and_line() {
        let e = ConfigError::EnvFileSyntax {
            path: "/etc/blitz/env".into(),
            line: 7,
            reason: "expected KEY=VALUE".into(),
        };
        assert_eq!(
            e.to_string(),
            "env file /etc/blitz/env, line 7: expected KEY=VALUE"
        );
    }

    #[test]
    fn bad_file_names_setting_path_and_fault() {
        let e = ConfigError::BadFile {
            name: "PAPER_PRICES",
            path: "/data/prices.csv".into(),
            reason: "line 3: price \"0\" is not a decimal above 0".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"PAPER_PRICES: /data/prices.csv: line 3: price "0" is not a decimal above 0"#
        );
    }
}

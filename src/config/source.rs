//! Reads settings as `settings` declares them: the flag, else the first variable that
//! is set, else the default, through the setting's parser. Records how each value is
//! shown (masked as declared), which is what `check-config` prints.

use super::cli::ServeArgs;
use super::env::EnvLookup;
use super::error::{ConfigError, Expected};
use super::parse;
use super::settings::{Default, Mask, Meta, Setting, ALL};

/// A setting's text and the flag or variable it came from, so errors can name it.
struct Raw {
    name: &'static str,
    value: String,
}

pub struct Source<'a> {
    args: &'a ServeArgs,
    env: &'a dyn EnvLookup,
    shown: Vec<(&'static str, String)>,
}

impl<'a> Source<'a> {
    pub fn new(args: &'a ServeArgs, env: &'a dyn EnvLookup) -> Source<'a> {
        Source {
            args,
            env,
            shown: Vec::with_capacity(ALL.len()),
        }
    }

    /// A setting whose default is a value: never absent.
    pub fn value<T>(&mut self, s: &Setting<T>) -> Result<T, ConfigError> {
        match self.read(s)? {
            Some(v) => Ok(self.record(s, v)),
            None => Err(ConfigError::Invalid {
                name: s.meta.key,
                value: String::new(),
                expected: Expected::new("a value"),
            }),
        }
    }

    /// A setting whose default is worked out by `default` when it is not given.
    pub fn value_or<T>(
        &mut self,
        s: &Setting<T>,
        default: impl FnOnce() -> T,
    ) -> Result<T, ConfigError> {
        let v = self.read(s)?.unwrap_or_else(default);
        Ok(self.record(s, v))
    }

    /// A setting that may be off.
    pub fn optional<T>(&mut self, s: &Setting<T>) -> Result<Option<T>, ConfigError> {
        self.optional_or(s, || None)
    }

    /// A setting that may be off, with `fallback` when it is not given.
    pub fn optional_or<T>(
        &mut self,
        s: &Setting<T>,
        fallback: impl FnOnce() -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.read(s)?.or_else(fallback) {
            Some(v) => Ok(Some(self.record(s, v))),
            None => {
                self.shown
                    .push((s.meta.key, s.meta.default_text().to_string()));
                Ok(None)
            }
        }
    }

    /// A repeatable flag's values (each parsed on its own, in order), else the
    /// variable or default as one list.
    pub fn list<T>(&mut self, s: &Setting<Vec<T>>) -> Result<Vec<T>, ConfigError> {
        let flags = self.flag_values(&s.meta);
        if flags.is_empty() {
            return self.value(s);
        }
        let mut all = Vec::new();
        for raw in flags {
            all.extend(parse_raw(&s.meta, raw, s.parse)?);
        }
        Ok(self.record(s, all))
    }

    /// Where the value of `meta` came from, for messages about it (a flag or the
    /// variable that was set; the key when it is a default).
    pub fn origin(&self, meta: &Meta) -> &'static str {
        self.raw(meta).map_or(meta.key, |raw| raw.name)
    }

    /// The shown values in the order of `ALL`.
    pub fn into_shown(self) -> Vec<(&'static str, String)> {
        let mut shown = self.shown;
        shown.sort_by_key(|(key, _)| ALL.iter().position(|m| m.key == *key));
        shown
    }

    fn read<T>(&self, s: &Setting<T>) -> Result<Option<T>, ConfigError> {
        match self.raw(&s.meta) {
            Some(raw) => parse_raw(&s.meta, raw, s.parse).map(Some),
            None => match s.meta.default {
                Default::Value(text) => parse_raw(
                    &s.meta,
                    Raw {
                        name: s.meta.key,
                        value: text.to_string(),
                    },
                    s.parse,
                )
                .map(Some),
                Default::Computed(_) | Default::Unset(_) => Ok(None),
            },
        }
    }

    fn record<T>(&mut self, s: &Setting<T>, v: T) -> T {
        let text = match s.meta.mask {
            Mask::Plain => (s.show)(&v),
            Mask::Secret => "***".to_string(),
            Mask::UrlPassword => parse::mask_url_password(&(s.show)(&v)),
        };
        self.shown.push((s.meta.key, text));
        v
    }

    /// The flag's last value, else the first variable set to more than blanks (systemd
    /// files often carry `KEY=` lines meaning "not set"). An empty flag value is not
    /// "unset": the operator typed it, so it is parsed and, for most settings, refused.
    fn raw(&self, meta: &Meta) -> Option<Raw> {
        if let Some(raw) = self.flag_values(meta).pop() {
            return Some(raw);
        }
        meta.env.iter().find_map(|name| {
            self.env
                .get(name)
                .filter(|value| !value.trim().is_empty())
                .map(|value| Raw { name, value })
        })
    }

    fn flag_values(&self, meta: &Meta) -> Vec<Raw> {
        let Some(flag) = &meta.flag else {
            return Vec::new();
        };
        self.args
            .values(meta.key)
            .iter()
            .map(|value| Raw {
                name: flag.name,
                value: value.clone(),
            })
            .collect()
    }
}

/// Parses `raw`; the error names where it came from and shows the value masked as
/// the setting says, since error messages end up in logs.
fn parse_raw<T>(
    meta: &Meta,
    raw: Raw,
    parser: fn(&str) -> Result<T, Expected>,
) -> Result<T, ConfigError> {
    parser(&raw.value).map_err(|expected| ConfigError::Invalid {
        name: raw.name,
        value: match meta.mask {
            Mask::Plain => raw.value.clone(),
            Mask::Secret => "***".to_string(),
            Mask::UrlPassword => parse::mask_url_password(&raw.value),
        },
        expected,
    })
}

//! Where environment variables come from: the process, optionally overlaid by an
//! `--env-file` in systemd `EnvironmentFile=` syntax.
//!
//! `Config::load` reads variables only through `EnvLookup`, so tests pass a map and
//! `SIGHUP` can re-read the file without touching the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

pub trait EnvLookup {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        // Non-UTF-8 bytes become U+FFFD; the value's own parser then rejects or keeps it,
        // which names the variable, instead of the variable silently reading as unset.
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }
}

/// A plain map, for tests and for callers that assemble an environment themselves.
impl EnvLookup for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// An env file's variables over the process environment. The file wins, as systemd's
/// `EnvironmentFile=` overrides the inherited environment.
#[derive(Clone, Default)]
pub struct LayeredEnv {
    file: HashMap<String, String>,
}

/// Names only: env files hold secrets (`SECRET_KEY`, `ADMIN_PASSWORD`).
impl fmt::Debug for LayeredEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.file.keys().collect();
        names.sort();
        f.debug_struct("LayeredEnv").field("file", &names).finish()
    }
}

impl LayeredEnv {
    /// No file: the process environment alone.
    pub fn none() -> Self {
        LayeredEnv::default()
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::EnvFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(path, &text)
    }

    /// Parses `text` as if read from `path` (used only in error messages).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file = EnvFileParser::new(path, text).parse()?;
        Ok(LayeredEnv { file })
    }

    /// The file's variables alone, without the process environment under them.
    pub fn file_vars(&self) -> &HashMap<String, String> {
        &self.file
    }

    fn lookup(&self, name: &str, base: &dyn EnvLookup) -> Option<String> {
        self.file.get(name).cloned().or_else(|| base.get(name))
    }
}

impl EnvLookup for LayeredEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.lookup(name, &ProcessEnv)
    }
}

/// A parser for systemd's environment-file syntax, following systemd's own reader
/// (src/basic/env-file.c) so that a file means the same to `--env-file` and to
/// `EnvironmentFile=`:
///
/// - blank lines are skipped; lines whose first non-blank character is `#` or `;` are
///   comments (a trailing backslash does not continue a comment, as in systemd ≥ 254);
/// - `KEY=VALUE`, blanks around the key and the value trimmed; `#` inside a value is
///   literal, not a comment;
/// - unquoted: `\x` is `x`, and a backslash before the newline continues the value;
/// - `'…'` is literal; `"…"` unescapes `\"`, `\\`, `` \` `` and `\$`, keeps other
///   backslashes, and drops backslash-newline; quoted text may span lines;
/// - adjacent pieces concatenate (`A="x"'y'z` is `xyz`).
///
/// Where systemd ignores a line it cannot use, this parser fails naming the line: a
/// misspelt setting must not be silently dropped from a server's configuration. An
/// `export ` prefix (shell habit) is accepted although systemd does not know it.
struct EnvFileParser<'a> {
    path: &'a Path,
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl<'a> EnvFileParser<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        EnvFileParser {
            path,
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    fn error(&self, line: usize, reason: impl Into<String>) -> ConfigError {
        ConfigError::EnvFileSyntax {
            path: PathBuf::from(self.path),
            line,
            reason: reason.into(),
        }
    }

    /// Consumes one char, counting lines. `\r` is plain whitespace, so CRLF files work.
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn parse(mut self) -> Result<HashMap<String, String>, ConfigError> {
        let mut vars = HashMap::new();
        loop {
            while self
                .chars
                .next_if(|c| c.is_whitespace() && *c != '\n')
                .is_some()
            {}
            match self.chars.peek() {
                None => return Ok(vars),
                Some('\n') => {
                    self.bump();
                }
                Some('#' | ';') => self.skip_line(),
                Some(_) => {
                    let (key, value) = self.assignment()?;
                    // Later assignments win, as in systemd.
                    vars.insert(key, value);
                }
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn assignment(&mut self) -> Result<(String, String), ConfigError> {
        let line = self.line;
        let mut key = String::new();
        loop {
            match self.chars.peek() {
                Some('=') => {
                    self.bump();
                    break;
                }
                None | Some('\n') => return Err(self.error(line, "expected KEY=VALUE")),
                Some(_) => key.extend(self.bump()),
            }
        }
        let key = key.trim_end();
        let key = key.strip_prefix("export").map_or(key, |rest| {
            if rest.starts_with([' ', '\t']) {
                rest.trim_start()
            } else {
                key
            }
        });
        if !is_variable_name(key) {
            return Err(self.error(
                line,
                format!(
                    "{key:?} is not a variable name \
                     (letters, digits and _, not starting with a digit)"
                ),
            ));
        }
        let value = self.value(line)?;
        Ok((key.to_string(), value))
    }

    /// Reads a value up to the end of its (possibly continued) line.
    fn value(&mut self, line: usize) -> Result<String, ConfigError> {
        let mut value = String::new();
        // Where a run of unquoted trailing blanks starts; it is cut at the end.
        let mut blanks_from: Option<usize> = None;
        // Blanks before the value and between a closing quote and what follows are
        // dropped, as systemd does; blanks inside unquoted text are kept.
        let mut skip_blanks = true;
        while let Some(c) = self.bump() {
            match c {
                '\n' => break,
                '\'' => {
                    self.single_quoted(line, &mut value)?;
                    (blanks_from, skip_blanks) = (None, true);
                }
                '"' => {
                    self.double_quoted(line, &mut value)?;
                    (blanks_from, skip_blanks) = (None, true);
                }
                '\\' => {
                    match self.bump() {
                        None | Some('\n') => {}
                        Some(escaped) => value.push(escaped),
                    }
                    (blanks_from, skip_blanks) = (None, false);
                }
                c if c.is_whitespace() => {
                    if !skip_blanks {
                        blanks_from.get_or_insert(value.len());
                        value.push(c);
                    }
                }
                c => {
                    value.push(c);
                    (blanks_from, skip_blanks) = (None, false);
                }
            }
        }
        if let Some(cut) = blanks_from {
            value.truncate(cut);
        }
        Ok(value)
    }

    fn single_quoted(&mut self, line: usize, value: &mut String) -> Result<(), ConfigError> {
        loop {
            match self.bump() {
                None => return Err(self.error(line, "unterminated single quote")),
                Some('\'') => return Ok(()),
                Some(c) => value.push(c),
            }
        }
    }

    fn double_quoted(&mut self, line: usize, value: &mut String) -> Result<(), ConfigError> {
        loop {
            match self.bump() {
                None => return Err(self.error(line, "unterminated double quote")),
                Some('"') => return Ok(()),
                Some('\\') => match self.bump() {
                    None => return Err(self.error(line, "unterminated double quote")),
                    Some('\n') => {}
                    Some(c @ ('"' | '\\' | '`' | '$')) => value.push(c),
                    // Like the shell: an unneeded backslash stays.
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                Some(c) => value.push(c),
            }
        }
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HashMap<String, String>, ConfigError> {
        LayeredEnv::from_text(Path::new("test.env"), text).map(|env| env.file)
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn syntax_error_line(text: &str) -> usize {
        match parse(text) {
            Err(ConfigError::EnvFileSyntax { line, .. }) => line,
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_assignments_comments_and_blanks() {
        let text =
            "# comment\n; also a comment\n\n  WEB_CONCURRENCY=4\nLOG_LEVEL = debug  \nEMPTY=\n";
        assert_eq!(
            parse(text).unwrap(),
            vars(&[
                ("WEB_CONCURRENCY", "4"),
                ("LOG_LEVEL", "debug"),
                ("EMPTY", "")
            ])
        );
    }

    #[test]
    fn hash_inside_a_value_is_literal() {
        assert_eq!(parse("A=x # y").unwrap(), vars(&[("A", "x # y")]));
    }

    #[test]
    fn export_prefix_is_accepted() {
        assert_eq!(
            parse("export A=1\nexport\tB=2").unwrap(),
            vars(&[("A", "1"), ("B", "2")])
        );
        // A variable that merely starts with "export" is not a prefix.
        assert_eq!(parse("exported=1").unwrap(), vars(&[("exported", "1")]));
    }

    #[test]
    fn double_quotes_with_escapes() {
        let text = r#"CSP="default-src 'self'; img-src data:"
ESC="a\"b\\c\$d\`e\nf"
"#;
        assert_eq!(
            parse(text).unwrap(),
            vars(&[
                ("CSP", "default-src 'self'; img-src data:"),
                ("ESC", r#"a"b\c$d`e\nf"#),
            ])
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            parse(r#"A='x \" $y # z'"#).unwrap(),
            vars(&[("A", r#"x \" $y # z"#)])
        );
    }

    #[test]
    fn quoted_values_keep_blanks_and_may_span_lines() {
        assert_eq!(
            parse("A=\"  padded  \"\nB='one\ntwo'\nC=3").unwrap(),
            vars(&[("A", "  padded  "), ("B", "one\ntwo"), ("C", "3")])
        );
    }

    #[test]
    fn adjacent_pieces_concatenate() {
        assert_eq!(parse(r#"A="x"'y'z"#).unwrap(), vars(&[("A", "xyz")]));
    }

    #[test]
    fn backslash_newline_continues() {
        let text = "A=one \\\ntwo\nB=\"three \\\nfour\"\nC=5";
        assert_eq!(
            parse(text).unwrap(),
            vars(&[("A", "one two"), ("B", "three four"), ("C", "5")])
        );
    }

    #[test]
    fn unquoted_backslash_escapes_next_char() {
        assert_eq!(parse(r"A=a\ b\\c").unwrap(), vars(&[("A", r"a b\c")]));
    }

    #[test]
    fn comment_backslash_does_not_continue() {
        assert_eq!(parse("# note \\\nA=1").unwrap(), vars(&[("A", "1")]));
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            parse("A=1\r\nB=2\r\n").unwrap(),
            vars(&[("A", "1"), ("B", "2")])
        );
    }

    #[test]
    fn later_assignment_wins() {
        assert_eq!(parse("A=1\nA=2").unwrap(), vars(&[("A", "2")]));
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        assert_eq!(syntax_error_line("A=1\n\nnot an assignment\n"), 3);
        assert_eq!(syntax_error_line("A=1\nB"), 2);
        assert_eq!(syntax_error_line("1A=x"), 1);
        assert_eq!(syntax_error_line("A B=x"), 1);
        assert_eq!(syntax_error_line("=x"), 1);
        // Line counting continues across continued and multi-line values.
        assert_eq!(syntax_error_line("A=\"x\ny\"\nB=1\\\n2\nbad"), 5);
    }

    #[test]
    fn unterminated_quote_names_the_opening_line() {
        assert_eq!(syntax_error_line("A=1\nB=\"never closed\nC=3"), 2);
        assert_eq!(syntax_error_line("B='x"), 1);
    }

    #[test]
    fn syntax_error_message_names_the_file() {
        let err = parse("oops").unwrap_err().to_string();
        assert!(err.contains("test.env") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let missing = Path::new("/nonexistent/blitz-test.env");
        match LayeredEnv::from_file(missing) {
            Err(ConfigError::EnvFileRead { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected a read error, got {other:?}"),
        }
    }

    #[test]
    fn from_file_reads_the_file() {
        let path = std::env::temp_dir().join(format!("blitz-env-test-{}.env", std::process::id()));
        std::fs::write(&path, "WEB_CONCURRENCY=3\n").unwrap();
        let env = LayeredEnv::from_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(env.unwrap().file_vars(), &vars(&[("WEB_CONCURRENCY", "3")]));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let env = LayeredEnv::from_text(Path::new("t"), "SECRET_KEY=hunter2hunter2").unwrap();
        let debug = format!("{env:?}");
        assert!(
            debug.contains("SECRET_KEY") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn file_overrides_the_base_environment() {
        let env = LayeredEnv::from_text(Path::new("t"), "A=file").unwrap();
        let base = vars(&[("A", "process"), ("B", "process")]);
        assert_eq!(env.lookup("A", &base), Some("file".into()));
        assert_eq!(env.lookup("B", &base), Some("process".into()));
        assert_eq!(env.lookup("C", &base), None);
        assert_eq!(
            LayeredEnv::none().lookup("B", &base),
            Some("process".into())
        );
    }
}

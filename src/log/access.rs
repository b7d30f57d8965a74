//! The access log: gunicorn's format language, or one JSON object per request.

use std::fmt::Write as _;

use super::json::push_str;
use super::sink::Sink;
use super::timefmt::SecondClock;

/// What one request contributes to the access log.
pub struct AccessRecord<'a> {
    pub client: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub version: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration_us: u64,
    pub request_id: &'a str,
    pub user_id: Option<i64>,
    pub referer: &'a str,
    pub user_agent: &'a str,
}

/// One piece of a parsed gunicorn format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Text(String),
    /// `%(x)s`
    Var(String),
}

enum Format {
    Gunicorn(Vec<Atom>),
    Json,
}

/// Lines are written in batches of at most this many bytes: one `write` per
/// event-loop turn instead of one per request, and never more than `PIPE_BUF`, so
/// batches from several workers sharing a pipe (stdout under systemd) stay whole.
const BATCH_BYTES: usize = 4096;

pub struct AccessLog {
    sink: Sink,
    format: Format,
    clock: SecondClock,
    line: String,
    /// Complete lines not yet written (see `flush`).
    pending: Vec<u8>,
}

impl AccessLog {
    /// `format` is a gunicorn access-log format, or `None` for JSON.
    pub fn new(sink: Sink, format: Option<&str>) -> AccessLog {
        AccessLog {
            sink,
            format: match format {
                Some(f) => Format::Gunicorn(parse_format(f)),
                None => Format::Json,
            },
            clock: SecondClock::default(),
            line: String::with_capacity(256),
            pending: Vec::with_capacity(BATCH_BYTES),
        }
    }

    /// Writes the buffered lines (the worker calls this once per event-loop turn,
    /// before it waits; a crash loses at most that turn's lines).
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.sink.write_line(&self.pending);
            self.pending.clear();
        }
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    pub fn log(&mut self, r: &AccessRecord<'_>) {
        self.line.clear();
        match &self.format {
            Format::Json => render_json(&mut self.line, r, self.clock.rfc3339()),
            Format::Gunicorn(atoms) => {
                for atom in atoms {
                    match atom {
                        Atom::Text(t) => self.line.push_str(t),
                        Atom::Var(v) => render_var(&mut self.line, v, r, &mut self.clock),
                    }
                }
            }
        }
        self.line.push('\n');
        if self.pending.len() + self.line.len() > BATCH_BYTES {
            self.flush();
        }
        self.pending.extend_from_slice(self.line.as_bytes());
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

fn parse_format(f: &str) -> Vec<Atom> {
    let mut atoms = Vec::new();
    let mut text = String::new();
    let mut rest = f;
    while let Some(i) = rest.find("%(") {
        let after = &rest[i + 2..];
        match after.find(")s") {
            Some(j) => {
                text.push_str(&rest[..i]);
                if !text.is_empty() {
                    atoms.push(Atom::Text(std::mem::take(&mut text)));
                }
                atoms.push(Atom::Var(after[..j].to_string()));
                rest = &after[j + 2..];
            }
            None => break,
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        atoms.push(Atom::Text(text));
    }
    atoms
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// gunicorn's atoms: h l u t r m U q H s B b f a T D M L p, `{name}i` headers.
fn render_var(out: &mut String, var: &str, r: &AccessRecord<'_>, clock: &mut SecondClock) {
    let _ = match var {
        "h" => write!(out, "{}", r.client),
        "l" => write!(out, "-"),
        "u" => match r.user_id {
            Some(id) => write!(out, "{id}"),
            None => write!(out, "-"),
        },
        "t" => write!(out, "{}", clock.clf()),
        "r" if r.query.is_empty() => write!(out, "{} {} {}", r.method, r.path, r.version),
        "r" => write!(out, "{} {}?{} {}", r.method, r.path, r.query, r.version),
        "m" => write!(out, "{}", r.method),
        "U" => write!(out, "{}", r.path),
        "q" => write!(out, "{}", r.query),
        "H" => write!(out, "{}", r.version),
        "s" => write!(out, "{}", r.status),
        "B" => write!(out, "{}", r.bytes),
        "b" if r.bytes == 0 => write!(out, "-"),
        "b" => write!(out, "{}", r.bytes),
        "f" => write!(out, "{}", dash(r.referer)),
        "a" => write!(out, "{}", dash(r.user_agent)),
        "T" => write!(out, "{}", r.duration_us / 1_000_000),
        "D" => write!(out, "{}", r.duration_us),
        "M" => write!(out, "{}", r.duration_us / 1000),
        "L" => write!(out, "{:.6}", r.duration_us as f64 / 1e6),
        "p" => write!(out, "<{}>", std::process::id()),
        "{x-request-id}i" | "{X-Request-Id}i" => write!(out, "{}", r.request_id),
        _ => write!(out, "-"),
    };
}

fn render_json(out: &mut String, r: &AccessRecord<'_>, ts: &str) {
    out.push_str("{\"ts\":");
    push_str(out, ts);
    out.push_str(",\"client\":");
    push_str(out, r.client);
    out.push_str(",\"method\":");
    push_str(out, r.method);
    out.push_str(",\"path\":");
    push_str(out, r.path);
    out.push_str(",\"query\":");
    push_str(out, r.query);
    let _ = write!(
        out,
        ",\"status\":{},\"bytes\":{},\"duration_ms\":{:.3},\"request_id\":",
        r.status,
        r.bytes,
        r.duration_us as f64 / 1000.0
    );
    push_str(out, r.request_id);
    match r.user_id {
        Some(id) => {
            let _ = write!(out, ",\"user_id\":{id}");
        }
        None => out.push_str(",\"user_id\":null"),
    }
    out.push_str(",\"referer\":");
    push_str(out, r.referer);
    out.push_str(",\"user_agent\":");
    push_str(out, r.user_agent);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord<'static> {
        AccessRecord {
            client: "10.0.0.1",
            method: "GET",
            path: "/healthz",
            query: "a=1",
            version: "HTTP/1.1",
            status: 200,
            bytes: 42,
            duration_us: 1500,
            request_id: "rid",
            user_id: None,
            referer: "",
            user_agent: "curl/8",
        }
    }

    #[test]
    fn gunicorn_default_format() {
        let atoms = parse_format(r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#);
        let mut out = String::new();
        let mut clock = SecondClock::default();
        for a in &atoms {
            match a {
                Atom::Text(t) => out.push_str(t),
                Atom::Var(v) => render_var(&mut out, v, &record(), &mut clock),
            }
        }
        let (head, tail) = out.split_once(" [").unwrap();
        assert_eq!(head, "10.0.0.1 - -");
        assert!(
            tail.ends_with(r#"+0000] "GET /healthz?a=1 HTTP/1.1" 200 42 "-" "curl/8""#),
            "{tail}"
        );
    }

    #[test]
    fn json_format_is_valid_json() {
        let mut out = String::new();
        render_json(&mut out, &record(), "T");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["user_id"], serde_json::Value::Null);
    }
}

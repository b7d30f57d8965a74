//! Pure parsers for configuration values.
//!
//! Each parser returns the typed value or an `Expected` that describes the accepted
//! form. None of them knows which flag or variable it is parsing: `Config::load` adds
//! that, so one parser serves both `--bind` and `BLITZ_BIND`.
//!
//! Parsers trim surrounding whitespace unless the value is free text whose spaces may
//! matter (passwords, banners).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::error::Expected;

// ---------------------------------------------------------------------------
// Numbers and booleans

/// A decimal integer in `min..=max`. Signs, underscores and spaces inside are rejected
/// so that `-1` or `1_000` never silently mean something else.
pub fn uint_in(s: &str, min: u64, max: u64) -> Result<u64, Expected> {
    let expected = || {
        if max == u64::MAX {
            Expected::new(format!("an integer of at least {min}"))
        } else {
            Expected::new(format!("an integer from {min} to {max}"))
        }
    };
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    // Only overflow can fail here; it is out of range like any other too-large value.
    let n: u64 = t.parse().map_err(|_| expected())?;
    if n < min || n > max {
        return Err(expected());
    }
    Ok(n)
}

/// `uint_in` for counts and sizes held as `usize`.
pub fn usize_in(s: &str, min: usize, max: usize) -> Result<usize, Expected> {
    // usize is at most 64 bits on every target Rust supports, so these casts are exact.
    let n = uint_in(s, min as u64, max as u64)?;
    // In min..=max, so it fits; the fallback is unreachable.
    Ok(usize::try_from(n).unwrap_or(max))
}

/// A whole number of seconds in `min..=max`.
pub fn seconds(s: &str, min: u64, max: u64) -> Result<Duration, Expected> {
    uint_in(s, min, max)
        .map(Duration::from_secs)
        .map_err(|_| Expected::new(format!("a whole number of seconds from {min} to {max}")))
}

pub fn boolean(s: &str) -> Result<bool, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Expected::new("true/false/1/0/yes/no")),
    }
}

/// A number strictly between 0 and 1 (a relative volatility).
pub fn open_unit_fraction(s: &str) -> Result<f64, Expected> {
    let expected = || Expected::new("a number between 0 and 1, exclusive (e.g. 0.001)");
    let v: f64 = s.trim().parse().map_err(|_| expected())?;
    // `parse` accepts "NaN" and "inf"; the range check rejects both.
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(expected())
    }
}

/// A decimal strictly between −0.01 and 0.01 (a funding rate per settlement).
pub fn funding_rate(s: &str) -> Result<rust_decimal::Decimal, Expected> {
    let expected = || Expected::new("a decimal between -0.01 and 0.01, exclusive (e.g. 0.0001)");
    let v: rust_decimal::Decimal = s.trim().parse().map_err(|_| expected())?;
    let bound = rust_decimal::Decimal::new(1, 2);
    if v > -bound && v < bound {
        Ok(v)
    } else {
        Err(expected())
    }
}

/// A positive byte count with an optional binary suffix: `1048576`, `512K`, `1M`, `2G`.
pub fn size(s: &str) -> Result<u64, Expected> {
    let expected = || {
        Expected::new("a positive number of bytes, optionally with K, M or G (e.g. 1048576 or 1M)")
    };
    let t = s.trim();
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n = uint_in(digits, 1, u64::MAX).map_err(|_| expected())?;
    n.checked_mul(1u64 << shift).ok_or_else(expected)
}

// ---------------------------------------------------------------------------
// Rate limits

/// `count` events per `period`. Parsed from `10/minute` or `10 per minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

const PERIODS: [(&str, u64); 4] = [
    ("second", 1),
    ("minute", 60),
    ("hour", 3600),
    ("day", 86_400),
];

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.period.as_secs();
        let named = PERIODS
            .iter()
            .find(|(_, s)| *s == secs && self.period.subsec_nanos() == 0);
        match named {
            Some((name, _)) => write!(f, "{}/{}", self.count, name),
            // Only reachable for a Rate built by hand; parsing yields the four periods.
            None => write!(f, "{}/{}s", self.count, secs),
        }
    }
}

/// The largest N of a rate limit.
pub const MAX_RATE_COUNT: u64 = 100_000;

pub fn rate(s: &str) -> Result<Rate, Expected> {
    let expected =
        || Expected::new("N/second|minute|hour|day or \"N per minute\" (1 <= N <= 100000)");
    let lower = s.trim().to_ascii_lowercase();
    let (count, unit) = match lower.split_once('/') {
        Some((n, u)) => (n.trim(), u.trim()),
        None => {
            let words: Vec<&str> = lower.split_whitespace().collect();
            match words.as_slice() {
                [n, "per", u] => (*n, *u),
                _ => return Err(expected()),
            }
        }
    };
    // The exact window keeps one time per request in it: N is bounded.
    let count = uint_in(count, 1, MAX_RATE_COUNT).map_err(|_| expected())?;
    let unit = unit.strip_suffix('s').unwrap_or(unit);
    let secs = PERIODS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, secs)| *secs)
        .ok_or_else(expected)?;
    Ok(Rate {
        // In range by the uint_in bound above.
        count: u32::try_from(count).map_err(|_| expected())?,
        period: Duration::from_secs(secs),
    })
}

// ---------------------------------------------------------------------------
// Logging

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn log_level(s: &str) -> Result<LogLevel, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warning" | "warn" => Ok(LogLevel::Warning),
        "error" => Ok(LogLevel::Error),
        "critical" => Ok(LogLevel::Critical),
        _ => Err(Expected::new("debug, info, warning, error or critical")),
    }
}

/// Where a log goes. What `-` means depends on the log (gunicorn: stdout for the access
/// log, stderr for the error log), so the caller says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    File(PathBuf),
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Angle brackets keep the streams distinguishable from files named "stdout".
        match self {
            LogTarget::Stdout => f.write_str("<stdout>"),
            LogTarget::Stderr => f.write_str("<stderr>"),
            LogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub fn log_target(s: &str, dash: LogTarget) -> Result<LogTarget, Expected> {
    match s {
        "-" => Ok(dash),
        "" => Err(Expected::new("a file path or - ")),
        path => Ok(LogTarget::File(PathBuf::from(path))),
    }
}

/// gunicorn's default access-log format.
pub const GUNICORN_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// A gunicorn `%(x)s` format string; the access logger interprets the atoms.
    Gunicorn(String),
    /// One JSON object per request.
    Json,
}

impl Default for AccessLogFormat {
    fn default() -> Self {
        AccessLogFormat::Gunicorn(GUNICORN_ACCESS_LOG_FORMAT.to_string())
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLogFormat::Gunicorn(format) => f.write_str(format),
            AccessLogFormat::Json => f.write_str("json"),
        }
    }
}

pub fn access_log_format(s: &str) -> Result<AccessLogFormat, Expected> {
    if s.trim().eq_ignore_ascii_case("json") {
        return Ok(AccessLogFormat::Json);
    }
    // A newline in the format would split one request over several log lines.
    if s.is_empty() || s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Expected::new(
            "a gunicorn access-log format on one line, or json",
        ));
    }
    Ok(AccessLogFormat::Gunicorn(s.to_string()))
}

// ---------------------------------------------------------------------------
// Server

/// The worker model. Only `sync` exists; the enum keeps the door open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerClass {
    Sync,
}

impl fmt::Display for WorkerClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerClass::Sync => f.write_str("sync"),
        }
    }
}

pub fn worker_class(s: &str) -> Result<WorkerClass, Expected> {
    match s.trim() {
        "sync" => Ok(WorkerClass::Sync),
        _ => Err(Expected::new("sync")),
    }
}

/// A listen address as written by the operator. Names are resolved where the socket
/// is bound, not here, so `check-config` works without DNS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BindAddr {
    /// `host` is an IPv4 address, a name, or an IPv6 address without brackets.
    /// Port 0 asks the kernel for an ephemeral port (used by tests).
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            BindAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            // `unix://` is a prefix of its own: a path starting with `//` must be
            // written after it to read back as the same path.
            BindAddr::Unix(path) => {
                let path = path.display().to_string();
                let scheme = if path.starts_with("//") {
                    "unix://"
                } else {
                    "unix:"
                };
                write!(f, "{scheme}{path}")
            }
        }
    }
}

const BIND_FORMS: &str = "HOST:PORT, [IPv6]:PORT or unix:PATH";

pub fn bind_addr(s: &str) -> Result<BindAddr, Expected> {
    let expected = || Expected::new(BIND_FORMS);
    let t = s.trim();
    // gunicorn accepts both `unix:PATH` and `unix://PATH`.
    if let Some(path) = t
        .strip_prefix("unix://")
        .or_else(|| t.strip_prefix("unix:"))
    {
        if path.is_empty() {
            return Err(expected());
        }
        return Ok(BindAddr::Unix(PathBuf::from(path)));
    }
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(expected)?;
        v6.parse::<Ipv6Addr>().map_err(|_| expected())?;
        (v6, port)
    } else {
        // An unbracketed IPv6 address ("::1:8000") is ambiguous; is_host rejects the ':'.
        let (host, port) = t.rsplit_once(':').ok_or_else(expected)?;
        if !is_host_name_or_ipv4(host) {
            return Err(expected());
        }
        (host, port)
    };
    let port = uint_in(port, 0, u64::from(u16::MAX)).map_err(|_| expected())?;
    Ok(BindAddr::Tcp {
        host: host.to_string(),
        port: u16::try_from(port).map_err(|_| expected())?,
    })
}

/// `BLITZ_BIND`: a comma list of bind addresses.
pub fn bind_list(s: &str) -> Result<Vec<BindAddr>, Expected> {
    s.split(',')
        .map(|item| {
            bind_addr(item).map_err(|_| {
                Expected::new(format!(
                    "a comma list of {BIND_FORMS}; {:?} is none of these",
                    item.trim()
                ))
            })
        })
        .collect()
}

/// A DNS name (underscores allowed, as in Docker service names) or a dotted IPv4
/// address. All-numeric labels must form a real IPv4 address, so `999.1.1.1` fails here
/// rather than at resolution time.
fn is_host_name_or_ipv4(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    labels_ok && (!numeric || host.parse::<Ipv4Addr>().is_ok())
}

/// Peers whose forwarding headers are believed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedProxies {
    Any,
    /// Addresses are stored canonical (IPv4-mapped IPv6 as IPv4).
    List(Vec<IpAddr>),
}

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        match self {
            TrustedProxies::Any => true,
            // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; compare as v4.
            TrustedProxies::List(list) => list.contains(&ip.to_canonical()),
        }
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedProxies::Any => f.write_str("*"),
            TrustedProxies::List(list) => {
                let items: Vec<String> = list.iter().map(IpAddr::to_string).collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// `*`, or a comma list of IP addresses. Empty items are skipped, so an empty value
/// trusts no proxy at all.
pub fn trusted_proxies(s: &str) -> Result<TrustedProxies, Expected> {
    if s.trim() == "*" {
        return Ok(TrustedProxies::Any);
    }
    let mut list = Vec::new();
    for item in s.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let ip: IpAddr = item.parse().map_err(|_| {
            Expected::new(format!(
                "* or a comma list of IP addresses; {item:?} is not an IP address"
            ))
        })?;
        list.push(ip.to_canonical());
    }
    Ok(TrustedProxies::List(list))
}

// ---------------------------------------------------------------------------
// URLs

/// The pieces of `scheme://[userinfo@]host[:port][rest]` this module checks.
/// Not a general URL parser: percent-encoding is left alone.
struct UrlParts<'a> {
    scheme: &'a str,
    /// Path, query and fragment, starting with `/`, `?` or `#` when present.
    rest: &'a str,
}

fn split_url(s: &str) -> Option<UrlParts<'_>> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, after) = s.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let port = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        v6.parse::<Ipv6Addr>().ok()?;
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        }
    } else {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        if !is_host_name_or_ipv4(host) {
            return None;
        }
        port
    };
    if let Some(port) = port {
        uint_in(port, 1, u64::from(u16::MAX)).ok()?;
    }
    Some(UrlParts { scheme, rest })
}

fn path_of(rest: &str) -> &str {
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// `REDIS_URL` / `RATE_LIMIT_REDIS_URL`: the shapes below, and accepted by the redis
/// crate's own parser, which the coordination backend connects with. `rediss://`
/// is refused: this build has no TLS for Redis, and a URL that passes here must
/// connect at run time.
pub fn redis_url(s: &str) -> Result<String, Expected> {
    let expected = || {
        Expected::new(
            "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH \
             (no TLS: rediss:// is not supported)",
        )
    };
    let t = s.trim();
    if let Some(socket) = t.strip_prefix("unix://") {
        let path = path_of(socket);
        let clean = !t.chars().any(|c| c.is_whitespace() || c.is_control());
        if !(clean && path.starts_with('/') && path.len() > 1) {
            return Err(expected());
        }
    } else {
        let url = split_url(t).ok_or_else(expected)?;
        let db_ok = match path_of(url.rest).strip_prefix('/') {
            None => path_of(url.rest).is_empty(),
            Some("") => true,
            Some(db) => uint_in(db, 0, u64::MAX).is_ok(),
        };
        if url.scheme != "redis" || !db_ok {
            return Err(expected());
        }
    }
    redis::IntoConnectionInfo::into_connection_info(t).map_err(|_| expected())?;
    Ok(t.to_string())
}

/// `SMTP_URL`, as lettre's `SmtpTransport::from_url` (what the mailer calls) reads it,
/// and with a host, a non-zero port and no path.
pub fn smtp_url(s: &str) -> Result<String, Expected> {
    let expected = || Expected::new("smtp://[USER:PASSWORD@]HOST[:PORT] or smtps://…");
    let t = s.trim();
    let url = whole_url(t).ok_or_else(expected)?;
    // A query (`?tls=required`) is left to the mailer.
    let shape_ok = matches!(url.scheme(), "smtp" | "smtps")
        && url.host().is_some()
        && url.port() != Some(0)
        && matches!(url.path(), "" | "/")
        && url.fragment().is_none();
    if shape_ok && lettre::SmtpTransport::from_url(t).is_ok() {
        Ok(t.to_string())
    } else {
        Err(expected())
    }
}

/// `PUBLIC_URL`: an http(s) base for links in e-mails. Trailing slashes are dropped so
/// callers can always append `/path`.
pub fn http_url(s: &str) -> Result<String, Expected> {
    let expected = || {
        Expected::new("http://HOST[:PORT][/PATH] or https://… (no credentials, query or fragment)")
    };
    let t = s.trim();
    let url = whole_url(t).ok_or_else(expected)?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if ok {
        Ok(t.trim_end_matches('/').to_string())
    } else {
        Err(expected())
    }
}

/// A WebSocket URL: `ws://HOST[:PORT][/PATH]` or `wss://…`, as the WebSocket
/// client connects to it.
pub fn ws_url(s: &str) -> Result<String, Expected> {
    let expected =
        || Expected::new("ws://HOST[:PORT][/PATH] or wss://… (no credentials, query or fragment)");
    let t = s.trim();
    let url = whole_url(t).ok_or_else(expected)?;
    let ok = matches!(url.scheme(), "ws" | "wss")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if ok {
        Ok(t.to_string())
    } else {
        Err(expected())
    }
}

/// An absolute URL as the `url` crate (which the HTTP and mail clients use) parses
/// it. White space and control characters are refused rather than encoded or dropped
/// as a browser would, since a setting with them is a typo.
fn whole_url(t: &str) -> Option<url::Url> {
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    url::Url::parse(t).ok()
}

/// Replaces the password in a URL with `***` for display: `redis://:pw@h` →
/// `redis://:***@h`, and `password=`/`pass=` query parameters (redis unix sockets).
/// Best effort on malformed input too, because error messages show rejected values.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL; if it looks like it holds credentials, hide all of them.
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        };
    };
    let auth_start = scheme_end + 3;
    let auth_end = url[auth_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| auth_start + i);
    let authority = &url[auth_start..auth_end];

    let mut out = String::with_capacity(url.len());
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            out.push_str(&url[..auth_start]);
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(&url[..auth_end]),
    }

    let rest = &url[auth_end..];
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key == "password" || key == "pass" => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(rest),
    }
    out
}

// ---------------------------------------------------------------------------
// Mail

/// Characters that never appear in an address we would send to (outside quoting,
/// which nobody uses in an admin address).
fn is_address_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"<>()[],;:\"\\@".contains(c)
}

/// A plain address that lettre (which sends the mail) accepts, with one `@`, a
/// non-empty local part, and a domain that has a dot or is `localhost`.
pub fn email(s: &str) -> Result<String, Expected> {
    let expected = || Expected::new("an e-mail address like name@example.com");
    let t = s.trim();
    t.parse::<lettre::Address>().map_err(|_| expected())?;
    let (local, domain) = t.split_once('@').ok_or_else(expected)?;
    let local_ok = !local.is_empty() && local.chars().all(is_address_char);
    let domain_ok = domain.chars().all(is_address_char)
        && (domain.eq_ignore_ascii_case("localhost")
            || (domain.contains('.') && domain.split('.').all(|label| !label.is_empty())));
    if local_ok && domain_ok {
        Ok(t.to_string())
    } else {
        Err(expected())
    }
}

/// `MAIL_FROM`: an address, or `Display Name <address>`. It goes into a mail header,
/// so control characters (CR/LF injection) are refused.
pub fn mailbox(s: &str) -> Result<String, Expected> {
    let expected = || Expected::new("an e-mail address, or Name <address>");
    let t = s.trim();
    if t.chars().any(char::is_control) {
        return Err(expected());
    }
    // What the mailer parses the sender with.
    let mailbox: lettre::message::Mailbox = t.parse().map_err(|_| expected())?;
    email(mailbox.email.as_ref()).map_err(|_| expected())?;
    Ok(t.to_string())
}

// ---------------------------------------------------------------------------
// Secrets and free text

const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `SECRET_KEY`: ≥ 64 hex digits, or base64 (standard or URL-safe, padding optional)
/// of ≥ 32 bytes. A value made only of hex digits is read as hex and nothing else, so
/// a short hex key is refused instead of being half-read as base64.
pub fn secret_key(s: &str) -> Result<Vec<u8>, Expected> {
    let expected = || {
        Expected::new(
            "at least 64 hex digits, or base64 (standard or URL-safe) of at least 32 bytes",
        )
    };
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        if t.len() < 64 || !t.len().is_multiple_of(2) {
            return Err(expected());
        }
        return hex::decode(t).map_err(|_| expected());
    }
    let bytes = BASE64_STANDARD
        .decode(t)
        .or_else(|_| BASE64_URL_SAFE.decode(t))
        .map_err(|_| expected())?;
    if bytes.len() >= 32 {
        Ok(bytes)
    } else {
        Err(expected())
    }
}

/// `ADMIN_PASSWORD`: at least 8 characters, taken as is (spaces count).
pub fn password(s: &str) -> Result<String, Expected> {
    if s.chars().count() >= 8 {
        Ok(s.to_string())
    } else {
        Err(Expected::new("at least 8 characters"))
    }
}

/// A value sent as an HTTP header (`SECURITY_CSP`): visible ASCII, spaces and tabs.
/// CR or LF would let the value inject headers.
pub fn header_value(s: &str) -> Result<String, Expected> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b));
    if ok {
        Ok(t.to_string())
    } else {
        Err(Expected::new(
            "visible ASCII on one line (it is sent as an HTTP header)",
        ))
    }
}

/// Free text of at most `max` characters (not bytes).
pub fn short_text(s: &str, max: usize) -> Result<String, Expected> {
    if s.chars().count() <= max {
        Ok(s.to_string())
    } else {
        Err(Expected::new(format!("at most {max} characters")))
    }
}

// ---------------------------------------------------------------------------
// Paper exchange

/// `PAPER_PRICES` as written: the random walk, or a replay file that `Config::load`
/// then reads and checks (docs/bots.md, Exchanges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaperPricesSource {
    Walk,
    /// The live public prices of a real exchange (C15).
    Live(crate::market::Venue),
    Replay(PathBuf),
}

impl fmt::Display for PaperPricesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaperPricesSource::Walk => f.write_str("walk"),
            PaperPricesSource::Live(venue) => f.write_str(venue.name()),
            PaperPricesSource::Replay(path) => write!(f, "replay:{}", path.display()),
        }
    }
}

/// `walk`, `bybit`, `bingx` or `replay:PATH`; the words in any case, the path as given.
pub fn paper_prices(s: &str) -> Result<PaperPricesSource, Expected> {
    let expected =
        || Expected::new("`walk`, `bybit`, `bingx` or `replay:PATH` (a CSV file of prices)");
    let t = s.trim();
    if t.eq_ignore_ascii_case("walk") {
        return Ok(PaperPricesSource::Walk);
    }
    if let Some(venue) = crate::market::Venue::parse(t) {
        return Ok(PaperPricesSource::Live(venue));
    }
    let (word, path) = t.split_once(':').ok_or_else(expected)?;
    if !word.eq_ignore_ascii_case("replay") || path.trim().is_empty() {
        return Err(expected());
    }
    Ok(PaperPricesSource::Replay(PathBuf::from(path.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_in_accepts_decimal_in_range() {
        assert_eq!(uint_in("5", 1, 10), Ok(5));
        assert_eq!(uint_in(" 10 ", 1, 10), Ok(10));
        assert_eq!(uint_in("0", 0, 0), Ok(0));
        assert_eq!(uint_in("18446744073709551615", 0, u64::MAX), Ok(u64::MAX));
    }

    #[test]
    fn uint_in_rejects_other_forms() {
        for bad in [
            "",
            "abc",
            "-1",
            "+5",
            "1_000",
            "1 0",
            "1.5",
            "0x10",
            "18446744073709551616",
        ] {
            assert!(uint_in(bad, 0, u64::MAX).is_err(), "{bad:?}");
        }
        assert!(uint_in("0", 1, 10).is_err());
        assert!(uint_in("11", 1, 10).is_err());
    }

    #[test]
    fn uint_in_describes_the_range() {
        assert_eq!(
            uint_in("x", 1, 256).unwrap_err().to_string(),
            "an integer from 1 to 256"
        );
        assert_eq!(
            uint_in("x", 10, u64::MAX).unwrap_err().to_string(),
            "an integer of at least 10"
        );
    }

    #[test]
    fn usize_in_and_seconds() {
        assert_eq!(usize_in("256", 1, 256), Ok(256));
        assert!(usize_in("257", 1, 256).is_err());
        assert_eq!(usize_in("0", 0, usize::MAX), Ok(0));
        assert_eq!(seconds("30", 1, 86_400), Ok(Duration::from_secs(30)));
        assert!(seconds("0", 1, 86_400).is_err());
        assert!(seconds("1.5", 0, 86_400).is_err());
        assert_eq!(
            seconds("x", 0, 10).unwrap_err().to_string(),
            "a whole number of seconds from 0 to 10"
        );
    }

    #[test]
    fn boolean_forms() {
        for yes in ["true", "TRUE", " True ", "1", "yes", "YES"] {
            assert_eq!(boolean(yes), Ok(true), "{yes:?}");
        }
        for no in ["false", "False", "0", "no", " NO\t"] {
            assert_eq!(boolean(no), Ok(false), "{no:?}");
        }
        for bad in ["", "on", "off", "y", "2", "truee"] {
            assert!(boolean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn open_unit_fraction_is_exclusive() {
        assert_eq!(open_unit_fraction("0.001"), Ok(0.001));
        assert_eq!(open_unit_fraction(" 0.5 "), Ok(0.5));
        for bad in ["0", "1", "-0.1", "1.5", "NaN", "inf", "", "abc"] {
            assert!(open_unit_fraction(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn size_forms() {
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("1M"), Ok(1_048_576));
        assert_eq!(size("512K"), Ok(512 * 1024));
        assert_eq!(size("512k"), Ok(512 * 1024));
        assert_eq!(size("2G"), Ok(2 << 30));
        for bad in [
            "",
            "0",
            "0K",
            "M",
            "1.5M",
            "-1",
            "1T",
            "1MB",
            "17179869184G",
        ] {
            assert!(size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rate_slash_and_per_forms() {
        let per_minute = Rate {
            count: 10,
            period: Duration::from_secs(60),
        };
        assert_eq!(rate("10/minute"), Ok(per_minute));
        assert_eq!(rate("10/MINUTES"), Ok(per_minute));
        assert_eq!(rate(" 10 / minute "), Ok(per_minute));
        assert_eq!(rate("10 per minute"), Ok(per_minute));
        assert_eq!(rate("10 Per Minutes"), Ok(per_minute));
        assert_eq!(
            rate("1/second").map(|r| r.period),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(
            rate("3/hours").map(|r| r.period),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(
            rate("200 per day").map(|r| r.period),
            Ok(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn rate_rejects() {
        for bad in [
            "",
            "abc",
            "10",
            "0/minute",
            "-1/minute",
            "10/fortnight",
            "10 per",
            "per minute",
            "10 a minute",
            "10/minute/extra",
            "10 per minute please",
            "4294967296/second",
            "10/minutess",
        ] {
            assert!(rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rate_displays_as_slash_form() {
        assert_eq!(
            rate("30 per minutes").map(|r| r.to_string()),
            Ok("30/minute".into())
        );
        assert_eq!(rate("5/Days").map(|r| r.to_string()), Ok("5/day".into()));
    }

    #[test]
    fn log_levels() {
        assert_eq!(log_level("debug"), Ok(LogLevel::Debug));
        assert_eq!(log_level("INFO"), Ok(LogLevel::Info));
        assert_eq!(log_level("warning"), Ok(LogLevel::Warning));
        assert_eq!(log_level("Warn"), Ok(LogLevel::Warning));
        assert_eq!(log_level(" error "), Ok(LogLevel::Error));
        assert_eq!(log_level("CRITICAL"), Ok(LogLevel::Critical));
        for bad in ["", "trace", "fatal", "information"] {
            assert!(log_level(bad).is_err(), "{bad:?}");
        }
        assert!(LogLevel::Debug < LogLevel::Critical);
        assert_eq!(LogLevel::Warning.to_string(), "warning");
    }

    #[test]
    fn log_target_dash_is_the_given_stream() {
        assert_eq!(log_target("-", LogTarget::Stdout), Ok(LogTarget::Stdout));
        assert_eq!(log_target("-", LogTarget::Stderr), Ok(LogTarget::Stderr));
        assert_eq!(
            log_target("/var/log/blitz.log", LogTarget::Stderr),
            Ok(LogTarget::File("/var/log/blitz.log".into()))
        );
        assert!(log_target("", LogTarget::Stderr).is_err());
    }

    #[test]
    fn access_log_formats() {
        assert_eq!(access_log_format("json"), Ok(AccessLogFormat::Json));
        assert_eq!(access_log_format("JSON"), Ok(AccessLogFormat::Json));
        assert_eq!(
            access_log_format("%(h)s %(r)s"),
            Ok(AccessLogFormat::Gunicorn("%(h)s %(r)s".into()))
        );
        assert!(access_log_format("").is_err());
        assert!(access_log_format("%(h)s\n%(r)s").is_err());
        assert_eq!(
            AccessLogFormat::default(),
            AccessLogFormat::Gunicorn(GUNICORN_ACCESS_LOG_FORMAT.into())
        );
    }

    #[test]
    fn worker_classes() {
        assert_eq!(worker_class("sync"), Ok(WorkerClass::Sync));
        for bad in ["", "gevent", "gthread", "SYNC2"] {
            assert!(worker_class(bad).is_err(), "{bad:?}");
        }
    }

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn bind_forms() {
        assert_eq!(bind_addr("127.0.0.1:8000"), Ok(tcp("127.0.0.1", 8000)));
        assert_eq!(bind_addr("0.0.0.0:0"), Ok(tcp("0.0.0.0", 0)));
        assert_eq!(bind_addr("localhost:80"), Ok(tcp("localhost", 80)));
        assert_eq!(
            bind_addr("web_1.internal:8080"),
            Ok(tcp("web_1.internal", 8080))
        );
        assert_eq!(bind_addr("[::1]:8000"), Ok(tcp("::1", 8000)));
        assert_eq!(bind_addr("[::]:65535"), Ok(tcp("::", 65535)));
        assert_eq!(
            bind_addr("unix:/run/blitz.sock"),
            Ok(BindAddr::Unix("/run/blitz.sock".into()))
        );
        assert_eq!(
            bind_addr("unix:///run/blitz.sock"),
            Ok(BindAddr::Unix("/run/blitz.sock".into()))
        );
        assert_eq!(
            bind_addr("unix:blitz.sock"),
            Ok(BindAddr::Unix("blitz.sock".into()))
        );
    }

    #[test]
    fn bind_rejects() {
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            ":8000",
            "::1:8000",
            "[::1]",
            "[::1]8000",
            "[not-v6]:80",
            "[1.2.3.4]:80",
            "999.1.1.1:80",
            "bad host:80",
            "-bad:80",
            "a..b:80",
            "unix:",
            "unix://",
            "tcp://1.2.3.4:80",
        ] {
            assert!(bind_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bind_displays_as_written() {
        for text in [
            "127.0.0.1:8000",
            "[::1]:8000",
            "localhost:0",
            "unix:/run/blitz.sock",
        ] {
            assert_eq!(bind_addr(text).map(|b| b.to_string()), Ok(text.to_string()));
        }
        // Shown as `unix:PATH`, `//run/x` would read back as the relative `run/x`.
        let doubled = bind_addr("unix:////run/x.sock");
        assert_eq!(doubled, Ok(BindAddr::Unix("//run/x.sock".into())));
        let shown = doubled.map(|b| b.to_string());
        assert_eq!(shown.as_deref(), Ok("unix:////run/x.sock"));
        assert_eq!(
            bind_addr("unix:////run/x.sock"),
            bind_addr(&shown.unwrap_or_default())
        );
    }

    #[test]
    fn bind_list_splits_on_commas() {
        assert_eq!(
            bind_list("127.0.0.1:8000, [::1]:8000"),
            Ok(vec![tcp("127.0.0.1", 8000), tcp("::1", 8000)])
        );
        let err = bind_list("127.0.0.1:8000,nope").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(bind_list("127.0.0.1:8000,").is_err());
    }

    #[test]
    fn trusted_proxy_forms() {
        assert_eq!(trusted_proxies("*"), Ok(TrustedProxies::Any));
        assert_eq!(trusted_proxies(" * "), Ok(TrustedProxies::Any));
        assert_eq!(
            trusted_proxies("127.0.0.1, ::1"),
            Ok(TrustedProxies::List(vec![
                "127.0.0.1".parse().unwrap(),
                "::1".parse().unwrap()
            ]))
        );
        assert_eq!(trusted_proxies(""), Ok(TrustedProxies::List(vec![])));
        for bad in ["localhost", "10.0.0.0/8", "1.2.3.4,*", "1.2.3"] {
            assert!(trusted_proxies(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trusts_ipv4_mapped_as_ipv4() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let list = trusted_proxies("127.0.0.1,::1").unwrap();
        assert!(list.trusts(ip("127.0.0.1")));
        assert!(list.trusts(ip("::ffff:127.0.0.1")));
        assert!(list.trusts(ip("::1")));
        assert!(!list.trusts(ip("10.0.0.1")));
        // A mapped address in the list matches the plain v4 peer too.
        assert!(trusted_proxies("::ffff:10.0.0.1")
            .unwrap()
            .trusts(ip("10.0.0.1")));
        assert!(TrustedProxies::Any.trusts(ip("203.0.113.9")));
        assert!(!trusted_proxies("").unwrap().trusts(ip("127.0.0.1")));
        assert_eq!(list.to_string(), "127.0.0.1,::1");
    }

    #[test]
    fn redis_urls() {
        for good in [
            "redis://redis:6379/1",
            "redis://localhost",
            "redis://:secret@redis.internal:6379/0",
            "redis://user:secret@10.0.0.5:6380/",
            "redis://[::1]:6379/2",
            "unix:///run/redis/redis.sock",
            "unix:///run/redis.sock?db=1&password=x",
        ] {
            assert_eq!(redis_url(good), Ok(good.to_string()), "{good:?}");
        }
        for bad in [
            "",
            "redis:6379",
            "http://redis:6379",
            "redis://",
            "redis://:6379",
            "redis://h:99999",
            "redis://h/abc",
            "redis://h/1/2",
            "unix://",
            "unix://relative.sock",
            "redis://h 1",
            // What the redis crate refuses must not pass here: no TLS in this
            // build, and it will not connect to a wildcard address.
            "rediss://cache.example.com:6380",
            "redis://0.0.0.0:6379",
        ] {
            assert!(redis_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn smtp_urls() {
        for good in [
            "smtp://mail.example.com",
            "smtp://user:pass@mail.example.com:587",
            "smtps://user:pass@mail.example.com:465/",
            "smtp://localhost:25?tls=required",
        ] {
            assert_eq!(smtp_url(good), Ok(good.to_string()), "{good:?}");
        }
        for bad in [
            "",
            "mail.example.com",
            "http://mail",
            "smtp://",
            "smtp://h/path",
            "smtp://h:0",
        ] {
            assert!(smtp_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http_urls() {
        assert_eq!(
            http_url("https://blitz.example.com"),
            Ok("https://blitz.example.com".into())
        );
        assert_eq!(
            http_url("http://127.0.0.1:8000/"),
            Ok("http://127.0.0.1:8000".into())
        );
        assert_eq!(
            http_url("https://example.com/blitz/"),
            Ok("https://example.com/blitz".into())
        );
        assert_eq!(
            http_url("http://[::1]:8000"),
            Ok("http://[::1]:8000".into())
        );
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://u:p@example.com",
            "https://example.com/?q=1",
            "https://example.com/#x",
            "https://exa mple.com",
        ] {
            assert!(http_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mask_hides_passwords_only() {
        let cases = [
            ("redis://:secret@redis:6379/1", "redis://:***@redis:6379/1"),
            ("redis://user:secret@redis", "redis://user:***@redis"),
            ("smtp://me:p@ss@mail:587", "smtp://me:***@mail:587"),
            ("smtp://me@mail:587", "smtp://me@mail:587"),
            ("redis://redis:6379", "redis://redis:6379"),
            (
                "unix:///run/r.sock?db=1&password=x",
                "unix:///run/r.sock?db=1&password=***",
            ),
            ("garbage:secret@host", "***@host"),
            ("no-secret-here", "no-secret-here"),
        ];
        for (input, masked) in cases {
            assert_eq!(mask_url_password(input), masked, "{input:?}");
        }
    }

    #[test]
    fn emails() {
        for good in [
            "admin@admin.com",
            "blitz@localhost",
            "a.b+tag@mail.example.org",
            " x@y.z ",
        ] {
            assert_eq!(email(good), Ok(good.trim().to_string()), "{good:?}");
        }
        for bad in [
            "",
            "admin",
            "@admin.com",
            "admin@",
            "admin@admin",
            "a@b@c.com",
            "a b@c.com",
            "a@b..com",
            "a@.com",
            "<a@b.com>",
            "a\tb@c.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mailboxes() {
        assert_eq!(mailbox("blitz@localhost"), Ok("blitz@localhost".into()));
        assert_eq!(
            mailbox("Blitz <noreply@example.com>"),
            Ok("Blitz <noreply@example.com>".into())
        );
        for bad in [
            "",
            "Blitz",
            "Blitz <noreply@example.com",
            "Blitz <>",
            "Blitz\r\nBcc: x <a@b.com>",
        ] {
            assert!(mailbox(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_key_hex() {
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let key = secret_key(hex64).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(&key[..3], &[0x00, 0x11, 0x22]);
        assert_eq!(key[31], 0xff);
        // Hex-only values are never reinterpreted as base64.
        assert!(secret_key(&hex64[..62]).is_err());
        assert!(secret_key(&format!("{hex64}0")).is_err());
    }

    #[test]
    fn secret_key_base64() {
        let bytes: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(250))
            .collect();
        let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
        assert!(standard.contains(['+', '/']) || url_safe.contains(['-', '_']));
        for text in [&standard, &unpadded, &url_safe] {
            assert_eq!(secret_key(text).as_ref(), Ok(&bytes), "{text:?}");
        }
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert!(secret_key(&short).is_err());
        for bad in ["", "not base64 at all!", "zzzz"] {
            assert!(secret_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert_eq!(password("12345678"), Ok("12345678".into()));
        assert_eq!(password("pässwörd"), Ok("pässwörd".into()));
        assert!(password("1234567").is_err());
        assert!(password("").is_err());
    }

    #[test]
    fn header_values() {
        assert_eq!(
            header_value("default-src 'self'"),
            Ok("default-src 'self'".into())
        );
        for bad in ["", "a\r\nX-Evil: 1", "a\nb", "caf\u{e9}", "a\u{7f}"] {
            assert!(header_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_text_counts_characters() {
        assert_eq!(
            short_text(&"é".repeat(500), 500).map(|s| s.chars().count()),
            Ok(500)
        );
        assert!(short_text(&"a".repeat(501), 500).is_err());
    }

    #[test]
    fn paper_prices_is_walk_or_a_replay_path() {
        assert_eq!(paper_prices("walk"), Ok(PaperPricesSource::Walk));
        assert_eq!(paper_prices(" WALK "), Ok(PaperPricesSource::Walk));
        assert_eq!(
            paper_prices("Bybit"),
            Ok(PaperPricesSource::Live(crate::market::Venue::Bybit))
        );
        assert_eq!(
            paper_prices("bingx"),
            Ok(PaperPricesSource::Live(crate::market::Venue::Bingx))
        );
        let replay = |p: &str| Ok(PaperPricesSource::Replay(PathBuf::from(p)));
        assert_eq!(paper_prices("replay:/data/p.csv"), replay("/data/p.csv"));
        assert_eq!(paper_prices("Replay: prices.csv "), replay("prices.csv"));
        assert_eq!(paper_prices("replay:C:/a:b.csv"), replay("C:/a:b.csv"));
        for bad in [
            "",
            "random",
            "replay",
            "replay:",
            "replay:  ",
            "file:/p.csv",
            "/p.csv",
        ] {
            assert_eq!(
                paper_prices(bad),
                Err(Expected::new(
                    "`walk`, `bybit`, `bingx` or `replay:PATH` (a CSV file of prices)"
                )),
                "{bad:?}"
            );
        }
        assert_eq!(
            paper_prices("replay:/data/p.csv").unwrap().to_string(),
            "replay:/data/p.csv"
        );
        assert_eq!(PaperPricesSource::Walk.to_string(), "walk");
    }
}

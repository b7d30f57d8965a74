//! Operating the accounts feature against the real binary: mail delivery (outbox
//! files, SMTP, an SMTP outage and its retry), admin seeding, the admin CLI
//! (`migrate`, `user`, `token`), the SQLite schema and the secrets key file.

mod common;

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::api::{call, login, login_resp, register, token_after};
use common::{blitz_cmd, children_with_title, wait_for, Options, Server};
use rusqlite::OptionalExtension;
use tempfile::TempDir;

const ADMIN_PW: &str = "admin-password-1";
const PW: &str = "correct-horse-1";
const DB: &str = "instance/database.db";

/// Starts `blitz serve` again in `dir` (same database, key file and outbox).
fn serve_in(dir: TempDir, env: &[(&str, &str)]) -> Server {
    Server::start_in(
        dir,
        Options {
            env: env.to_vec(),
            ..Options::default()
        },
    )
}

/// Stops the server gracefully and hands back its directory and its error log; the
/// log file is removed so the next server in the directory starts a fresh one.
fn stop(s: Server) -> (TempDir, String) {
    s.terminate()
}

fn server_env(env: &[(&str, &str)]) -> Server {
    Server::with(Options {
        workers: 2,
        env: env.to_vec(),
        ..Options::default()
    })
}

fn outbox(s: &Server) -> PathBuf {
    s.path("instance/outbox")
}

/// A connection to the server's database file (as an operator's sqlite3 would be).
fn open_db(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

#[derive(Debug)]
struct QueuedMail {
    id: i64,
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    sent_at: Option<i64>,
    last_error: Option<String>,
}

fn queued_mail(db: &Path, to: &str) -> Option<QueuedMail> {
    open_db(db)
        .query_row(
            "SELECT id, created_at, attempts, next_attempt_at, sent_at, last_error
             FROM mail_queue WHERE recipient = ?1 ORDER BY id DESC LIMIT 1",
            [to],
            |r| {
                Ok(QueuedMail {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    attempts: r.get(2)?,
                    next_attempt_at: r.get(3)?,
                    sent_at: r.get(4)?,
                    last_error: r.get(5)?,
                })
            },
        )
        .optional()
        .unwrap()
}

/// The `.eml` files of the outbox (name, text), oldest first.
fn eml_files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".eml"))
                .map(|n| {
                    let text = fs::read_to_string(dir.join(&n)).unwrap_or_default();
                    (n, text)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The error-log lines whose `msg` contains `needle`, parsed.
fn log_lines_with(log: &str, needle: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["msg"].as_str().is_some_and(|m| m.contains(needle)))
        .collect()
}

fn bearer_me(port: u16, token: &str) -> common::Resp {
    let auth = format!("Bearer {token}");
    call(port, "GET", "/api/auth/me", &[("Authorization", &auth)], "")
}

// ---------------------------------------------------------------------------
// A tiny SMTP sink: enough of RFC 5321 (plus AUTH PLAIN/LOGIN) for lettre.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Received {
    from: String,
    rcpt: Vec<String>,
    data: String,
}

#[derive(Default)]
struct SinkLog {
    auth: Vec<(String, String)>,
    mails: Vec<Received>,
}

struct SmtpSink {
    port: u16,
    log: Arc<Mutex<SinkLog>>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        SmtpSink::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> SmtpSink {
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(SinkLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let log3 = log2.clone();
                std::thread::spawn(move || {
                    let _ = smtp_session(conn, &log3);
                });
            }
        });
        SmtpSink { port, log, stop }
    }

    fn mails(&self) -> Vec<Received> {
        self.log.lock().unwrap().mails.clone()
    }

    fn auths(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().auth.clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn b64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn angle_addr(s: &str) -> String {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.split_whitespace().next().unwrap_or("").to_string(),
    }
}

fn smtp_session(stream: TcpStream, log: &Mutex<SinkLog>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let mut read_line = move || -> io::Result<Option<String>> {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
    };
    let mut mail = Received::default();
    w.write_all(b"220 sink.test ESMTP ready\r\n")?;
    while let Some(cmd) = read_line()? {
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n"
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let mut arg = cmd[10..].trim().to_string();
            if arg.is_empty() {
                w.write_all(b"334 \r\n")?;
                arg = read_line()?.unwrap_or_default();
            }
            let raw = b64(&arg);
            let parts: Vec<&str> = raw.split('\0').collect();
            let (user, pass) = match parts.as_slice() {
                [_, u, p] => (u.to_string(), p.to_string()),
                _ => (String::new(), String::new()),
            };
            log.lock().unwrap().auth.push((user, pass));
            "235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("AUTH LOGIN") {
            let arg = cmd[10..].trim().to_string();
            let user = if arg.is_empty() {
                w.write_all(b"334 VXNlcm5hbWU6\r\n")?;
                b64(&read_line()?.unwrap_or_default())
            } else {
                b64(&arg)
            };
            w.write_all(b"334 UGFzc3dvcmQ6\r\n")?;
            let pass = b64(&read_line()?.unwrap_or_default());
            log.lock().unwrap().auth.push((user, pass));
            "235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = Received {
                from: angle_addr(&cmd[10..]),
                ..Received::default()
            };
            "250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(angle_addr(&cmd[8..]));
            "250 OK\r\n"
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let Some(line) = read_line()? else {
                    return Ok(());
                };
                if line == "." {
                    break;
                }
                let line = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(line);
                data.push_str("\r\n");
            }
            mail.data = data;
            log.lock().unwrap().mails.push(std::mem::take(&mut mail));
            "250 OK queued\r\n"
        } else if upper.starts_with("RSET") {
            mail = Received::default();
            "250 OK\r\n"
        } else if upper.starts_with("NOOP") {
            "250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            "502 Command not implemented\r\n"
        };
        w.write_all(reply.as_bytes())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Development mail: the outbox.
// ---------------------------------------------------------------------------

#[test]
fn registration_mail_lands_in_the_outbox_with_a_single_use_verify_link() {
    let s = server_env(&[
        ("ADMIN_PASSWORD", ADMIN_PW),
        ("PUBLIC_URL", "https://blitz.example"),
    ]);
    // Mail is delivered by its own process.
    let mailers = children_with_title(s.pid(), "blitz: mailer");
    assert_eq!(mailers.len(), 1, "one mailer process: {mailers:?}");

    let to = "alice@example.com";
    let r = register(s.port, to, PW);
    assert_eq!(r.status, 201, "{}", r.text());

    let dir = outbox(&s);
    let mut mail = None;
    wait_for(Duration::from_secs(10), "the .eml in the outbox", || {
        mail = eml_files(&dir)
            .into_iter()
            .find(|(_, text)| text.contains(&format!("To: {to}")));
        mail.is_some()
    });
    let (name, text) = mail.unwrap();
    assert!(
        text.contains("Subject: Confirm your Blitz account"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("Message-ID: <")),
        "no Message-ID header: {text}"
    );
    let marker = "https://blitz.example/verify/";
    let token = token_after(&text, marker).unwrap_or_else(|| panic!("no {marker}: {text}"));
    assert!(token.len() >= 20, "token {token:?} is too short");

    // Named <created_at>-<id>.eml after its queue row, which is marked sent; the
    // temporary file it was written through is gone.
    let mut row = None;
    wait_for(
        Duration::from_secs(10),
        "mail_queue row marked sent",
        || {
            row = queued_mail(&s.path(DB), to).filter(|m| m.sent_at.is_some());
            row.is_some()
        },
    );
    let row = row.unwrap();
    assert_eq!(name, format!("{}-{}.eml", row.created_at, row.id));
    assert_eq!(row.last_error, None);
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".eml"))
        .collect();
    assert!(leftovers.is_empty(), "stray files: {leftovers:?}");
    wait_for(Duration::from_secs(5), "\"mail sent\" logged", || {
        s.log_count("mail sent") == 1
    });

    // Not verified yet: no login.
    assert_ne!(login_resp(s.port, to, PW).status, 200);

    // The link's path works on this server (PUBLIC_URL is only the public name).
    let path = format!("/verify/{token}");
    let first = s.get(&path);
    assert_eq!(first.status, 200, "{}", first.text());
    let ctype = first.header("content-type").unwrap_or_default().to_string();
    assert!(ctype.starts_with("text/html"), "content-type {ctype}");
    assert!(
        first.text().to_ascii_lowercase().contains("<html"),
        "{}",
        first.text()
    );
    let again = s.get(&path);
    assert_eq!(again.status, 400, "a used link: {}", again.text());
    assert!(again
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));

    let b = login(s.port, to, PW);
    assert!(b.user_id > 0);
}

// ---------------------------------------------------------------------------
// 2. SMTP delivery.
// ---------------------------------------------------------------------------

#[test]
fn registration_mail_goes_over_smtp_with_the_configured_credentials() {
    let sink = SmtpSink::start();
    let url = format!("smtp://user:secret@127.0.0.1:{}", sink.port);
    let s = server_env(&[("ADMIN_PASSWORD", ADMIN_PW), ("SMTP_URL", &url)]);

    let to = "bob@example.com";
    let r = register(s.port, to, PW);
    assert_eq!(r.status, 201, "{}", r.text());
    wait_for(Duration::from_secs(10), "a mail at the SMTP sink", || {
        !sink.mails().is_empty()
    });
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m.rcpt, vec![to.to_string()]);
    assert!(m.from.contains('@'), "MAIL FROM {:?}", m.from);
    assert!(m.data.contains(&format!("To: {to}")), "{}", m.data);
    assert!(
        m.data.contains("Subject: Confirm your Blitz account"),
        "{}",
        m.data
    );
    assert!(
        m.data.lines().any(|l| l.starts_with("Message-ID: <")),
        "{}",
        m.data
    );
    // Without PUBLIC_URL, links name the port actually bound (the test binds :0).
    let link = format!("http://127.0.0.1:{}/verify/", s.port);
    assert!(m.data.contains(&link), "{link} not in {}", m.data);
    let token = token_after(&m.data, "/verify/").unwrap_or_else(|| panic!("{}", m.data));
    assert_eq!(
        sink.auths(),
        vec![("user".to_string(), "secret".to_string())],
        "SMTP AUTH credentials"
    );

    // It was the real link: it verifies the account.
    let v = s.get(&format!("/verify/{token}"));
    assert_eq!(v.status, 200, "{}", v.text());

    wait_for(Duration::from_secs(5), "mail_queue row marked sent", || {
        queued_mail(&s.path(DB), to).is_some_and(|m| m.sent_at.is_some())
    });
    wait_for(Duration::from_secs(5), "\"mail sent\" logged", || {
        s.log_count("mail sent") == 1
    });
    // Nothing went to the development outbox.
    assert!(eml_files(&outbox(&s)).is_empty(), "outbox used with SMTP");
    assert!(
        !outbox(&s).exists() || fs::read_dir(outbox(&s)).unwrap().next().is_none(),
        "outbox not empty"
    );
    // The SMTP password is not written to the log.
    assert!(!s.log().contains("secret@"), "SMTP password in the log");
}

// ---------------------------------------------------------------------------
// 3. An SMTP outage delays mail; it never loses it.
// ---------------------------------------------------------------------------

#[test]
fn smtp_outage_keeps_the_mail_queued_and_retries_it() {
    // A port where nothing listens (yet).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://user:secret@127.0.0.1:{port}");
    let s = server_env(&[("ADMIN_PASSWORD", ADMIN_PW), ("SMTP_URL", &url)]);

    let to = "carol@example.com";
    let r = register(s.port, to, PW);
    assert_eq!(
        r.status,
        201,
        "registration must not depend on SMTP: {}",
        r.text()
    );

    wait_for(Duration::from_secs(10), "the delivery failure log", || {
        s.log_count("mail delivery failed; will retry") >= 1
    });
    let mut row = None;
    wait_for(Duration::from_secs(5), "the failure recorded", || {
        row = queued_mail(&s.path(DB), to).filter(|m| m.attempts >= 1);
        row.is_some()
    });
    let row = row.unwrap();
    assert_eq!(row.sent_at, None, "{row:?}");
    assert!(
        row.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{row:?}"
    );
    assert!(
        row.next_attempt_at >= row.created_at + 9,
        "retry scheduled ~10 s later: {row:?}"
    );
    let failure = log_lines_with(&s.log(), "mail delivery failed; will retry")
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(failure["level"], "warning", "{failure}");
    assert_eq!(failure["retry_in_s"], 10, "{failure}");

    // SMTP comes back on the same port; the retry delivers the queued mail.
    let sink = SmtpSink::on(TcpListener::bind(("127.0.0.1", port)).expect("rebind the port"));
    wait_for(
        Duration::from_secs(40),
        "the retried mail at the sink",
        || !sink.mails().is_empty(),
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt, vec![to.to_string()]);
    assert!(
        token_after(&mails[0].data, "/verify/").is_some(),
        "{}",
        mails[0].data
    );

    let mut sent = None;
    wait_for(Duration::from_secs(5), "mail_queue row marked sent", || {
        sent = queued_mail(&s.path(DB), to).filter(|m| m.sent_at.is_some());
        sent.is_some()
    });
    let sent = sent.unwrap();
    assert_eq!(sent.id, row.id, "the same queued mail, not a new one");
    assert_eq!(sent.last_error, None, "{sent:?}");
    assert!(sent.attempts >= 2, "{sent:?}");

    // The retry honoured the back-off (master-clock timestamps of the log).
    wait_for(Duration::from_secs(5), "\"mail sent\" logged", || {
        s.log_count("mail sent") == 1
    });
    let log = s.log();
    let failed_at = log
        .lines()
        .find(|l| l.contains("\"mail delivery failed; will retry\""))
        .map(common::log_seconds)
        .unwrap();
    let sent_at = log
        .lines()
        .find(|l| l.contains("\"msg\":\"mail sent\""))
        .map(common::log_seconds)
        .unwrap();
    assert!(
        sent_at - failed_at >= 9.0,
        "retried after {} s, before the 10 s back-off",
        sent_at - failed_at
    );
}

// ---------------------------------------------------------------------------
// 4. Admin seeding.
// ---------------------------------------------------------------------------

const GENERATED: &str = "with generated password: ";

#[test]
fn first_start_seeds_an_admin_with_a_password_shown_once() {
    let s = server_env(&[]);
    let log = s.log();
    let lines = log_lines_with(&log, GENERATED);
    assert_eq!(lines.len(), 1, "generated-password lines:\n{log}");
    let line = &lines[0];
    assert_eq!(line["level"], "warning", "{line}");
    let msg = line["msg"].as_str().unwrap();
    let prefix = format!("created admin account admin@admin.com {GENERATED}");
    assert!(msg.starts_with(&prefix), "{msg}");
    let rest = &msg[prefix.len()..];
    let (password, tail) = rest.split_once(' ').expect("password then a note");
    assert_eq!(
        tail, "(shown only this once; change it after logging in)",
        "{msg}"
    );
    assert!(password.len() >= 12, "weak generated password {password:?}");

    let r = login_resp(s.port, "admin@admin.com", password);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["success"], true);
    assert_eq!(j["user"]["is_admin"], true, "{j}");
    assert_eq!(j["user"]["email"], "admin@admin.com");
    assert!(j["csrf_token"].is_string());

    // Restart on the same instance: nothing is created, nothing is shown.
    let (dir, _) = stop(s);
    let s = serve_in(dir, &[]);
    let log = s.log();
    assert!(log_lines_with(&log, GENERATED).is_empty(), "{log}");
    assert!(
        log_lines_with(&log, "created admin account").is_empty(),
        "{log}"
    );
    assert!(!log.contains(password), "the password reappeared:\n{log}");
    let r = login_resp(s.port, "admin@admin.com", password);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["is_admin"], true);
    let admins: i64 = open_db(&s.path(DB))
        .query_row("SELECT COUNT(*) FROM user WHERE is_admin = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(admins, 1);
}

#[test]
fn configured_admin_is_seeded_without_logging_its_password() {
    let pw = "correct-horse-9";
    let s = server_env(&[("ADMIN_EMAIL", "ops@example.com"), ("ADMIN_PASSWORD", pw)]);
    let r = login_resp(s.port, "ops@example.com", pw);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["is_admin"], true, "{}", r.text());
    // Only the configured account was created.
    assert_eq!(login_resp(s.port, "admin@admin.com", pw).status, 401);
    let log = s.log();
    assert!(!log.contains(pw), "ADMIN_PASSWORD in the log:\n{log}");
    assert!(log_lines_with(&log, GENERATED).is_empty(), "{log}");
    assert_eq!(
        log_lines_with(&log, "created admin account ops@example.com").len(),
        1,
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// 5. The admin CLI.
// ---------------------------------------------------------------------------

fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = blitz_cmd(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `blitz user create` on the CLI test's database; returns the output.
fn user_create(dir: &Path, email: &str, extra: &[&str], stdin: Option<&str>) -> Output {
    let mut args = vec!["user", "create", "--email", email, "--database", DB];
    args.extend_from_slice(extra);
    cli(dir, &args, &[], stdin)
}

/// The migration files of this checkout, in order (what `migrate` must apply).
fn migration_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn cli_migrates_creates_users_sets_passwords_and_issues_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // migrate: applies everything once, then is a no-op; both exit 0.
    let o = cli(d, &["migrate", "--database", DB], &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let expected: String = migration_names()
        .iter()
        .map(|n| format!("applied {n}\n"))
        .collect();
    assert!(expected.contains("applied 0001_accounts.sql\n"));
    assert_eq!(out(&o), expected);
    let o = cli(d, &["migrate"], &[("BLITZ_DB_PATH", DB)], None);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("database {DB} is up to date\n"));

    // user create with the password on stdin: nothing on stdout.
    let o = user_create(
        d,
        "carol@example.com",
        &["--password-stdin"],
        Some("carol-pass-1\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "");
    // Generated password: stdout is only that password.
    let o = user_create(d, "dave@example.com", &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let dave_pw = out(&o);
    assert_eq!(dave_pw.lines().count(), 1, "{dave_pw:?}");
    let dave_pw = dave_pw.trim_end_matches('\n').to_string();
    assert!(
        dave_pw.len() >= 12 && !dave_pw.contains(char::is_whitespace),
        "{dave_pw:?}"
    );
    let o = user_create(
        d,
        "eve@example.com",
        &["--admin", "--password-stdin"],
        Some("eve-password-1\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    // Usage errors: exit 2 naming the problem; a taken e-mail: exit 1.
    let o = user_create(
        d,
        "not-an-email",
        &["--password-stdin"],
        Some("long-enough-1\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--email"), "{}", err(&o));
    let o = user_create(
        d,
        "frank@example.com",
        &["--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("password"), "{}", err(&o));
    let o = user_create(
        d,
        "carol@example.com",
        &["--password-stdin"],
        Some("other-pass-1\n"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(!err(&o).is_empty());
    let o = user_create(d, "Carol@Example.COM", &[], None);
    assert_eq!(
        o.status.code(),
        Some(1),
        "e-mails are case-insensitive: {}",
        err(&o)
    );
    assert_eq!(out(&o), "", "no password printed for a failed create");

    // A server on that database. An admin exists (eve), so none is seeded.
    let s = serve_in(dir, &[]);
    assert!(log_lines_with(&s.log(), "created admin account").is_empty());
    assert_eq!(login_resp(s.port, "admin@admin.com", ADMIN_PW).status, 401);

    let r = login_resp(s.port, "carol@example.com", "carol-pass-1");
    assert_eq!(r.status, 200, "CLI users are verified: {}", r.text());
    assert_eq!(r.json()["user"]["is_admin"], false);
    let r = login_resp(s.port, "dave@example.com", &dave_pw);
    assert_eq!(r.status, 200, "the printed password works: {}", r.text());
    assert_eq!(r.json()["user"]["is_admin"], false);
    let r = login_resp(s.port, "eve@example.com", "eve-password-1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["is_admin"], true);

    // set-password: the old password stops working, so do existing sessions.
    let carol = login(s.port, "carol@example.com", "carol-pass-1");
    assert_eq!(carol.call(s.port, "GET", "/api/auth/me", "").status, 200);
    let d = s.dir.path();
    let o = cli(
        d,
        &[
            "user",
            "set-password",
            "--email",
            "carol@example.com",
            "--password-stdin",
            "--database",
            DB,
        ],
        &[],
        Some("carol-pass-2\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "");
    assert_eq!(
        login_resp(s.port, "carol@example.com", "carol-pass-1").status,
        401
    );
    let r = login_resp(s.port, "carol@example.com", "carol-pass-2");
    assert_eq!(r.status, 200, "{}", r.text());
    // Workers trust a resolved session for up to a second; a change made outside
    // the server (this CLI) shows within that.
    let t = std::time::Instant::now();
    common::wait_for(
        std::time::Duration::from_secs(3),
        "old session to end",
        || carol.call(s.port, "GET", "/api/auth/me", "").status == 401,
    );
    assert!(
        t.elapsed() < std::time::Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let o = cli(
        d,
        &[
            "user",
            "set-password",
            "--email",
            "nobody@example.com",
            "--password-stdin",
            "--database",
            DB,
        ],
        &[],
        Some("whatever-pass-1\n"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));

    // token create: stdout is only the token, which is a bearer for that user.
    let o = cli(
        d,
        &[
            "token",
            "create",
            "--email",
            "dave@example.com",
            "--name",
            "ci",
            "--database",
            DB,
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let token = out(&o);
    assert_eq!(token.lines().count(), 1, "{token:?}");
    let token = token.trim_end_matches('\n');
    assert!(token.starts_with("blitz_"), "{token:?}");
    let me = bearer_me(s.port, token);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["user"]["email"], "dave@example.com");
    assert_eq!(bearer_me(s.port, "blitz_not-a-real-token").status, 401);
    let o = cli(
        d,
        &[
            "token",
            "create",
            "--email",
            "nobody@example.com",
            "--database",
            DB,
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(out(&o), "");
}

// ---------------------------------------------------------------------------
// 6. Storage and the secrets key.
// ---------------------------------------------------------------------------

fn index_names(db: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .unwrap();
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    names
}

fn migrations_rows(db: &Path) -> Vec<(i64, String)> {
    let c = open_db(db);
    let mut stmt = c
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

#[test]
fn schema_wal_indexes_migrations_and_secret_key_across_restarts() {
    let s = server_env(&[("ADMIN_PASSWORD", ADMIN_PW)]);
    let db_path = s.path(DB);
    {
        let db = open_db(&db_path);
        let mode: String = db
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let names = index_names(&db);
        for idx in [
            "idx_users_email",
            "idx_users_verification_token",
            "idx_trades_user_id",
            "idx_bot_events_user_id",
            "idx_user_bots_status",
        ] {
            assert!(names.iter().any(|n| n == idx), "{idx} missing: {names:?}");
        }
        let mut stmt = db
            .prepare("EXPLAIN QUERY PLAN SELECT * FROM user WHERE email = ?")
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(["admin@admin.com"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|d| d.contains("idx_users_email")),
            "plan: {plan:?}"
        );
    }
    let expected: Vec<(i64, String)> = migration_names()
        .into_iter()
        .enumerate()
        .map(|(i, n)| (i as i64 + 1, n))
        .collect();
    assert_eq!(migrations_rows(&db_path), expected);

    // The generated secrets key: private and stable.
    let key_path = s.path("instance/secret_key");
    let meta = fs::metadata(&key_path).expect("instance/secret_key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = fs::read_to_string(&key_path).unwrap();
    let hex = key.trim();
    assert_eq!(hex.len(), 64, "{key:?}");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{key:?}");
    assert!(!s.log().contains(hex), "the key is in the log");

    // Stop, migrate by hand, start again: nothing is applied twice.
    let (dir, _) = stop(s);
    let o = cli(dir.path(), &["migrate", "--database", DB], &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("database {DB} is up to date\n"));
    let s = serve_in(dir, &[("ADMIN_PASSWORD", ADMIN_PW)]);
    assert!(log_lines_with(&s.log(), "applied migration").is_empty());
    assert_eq!(migrations_rows(&db_path), expected);
    let mode: String = open_db(&db_path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    assert_eq!(fs::read_to_string(&key_path).unwrap(), key, "key changed");
    let meta = fs::metadata(&key_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The server still works on the restarted files.
    assert_eq!(login_resp(s.port, "admin@admin.com", ADMIN_PW).status, 200);
}

#[test]
fn configured_secret_key_creates_no_key_file() {
    let key = "ab".repeat(32);
    let s = server_env(&[("ADMIN_PASSWORD", ADMIN_PW), ("SECRET_KEY", &key)]);
    assert!(s.path(DB).exists(), "the instance dir is in use");
    assert!(
        !s.path("instance/secret_key").exists(),
        "a key file was created although SECRET_KEY is set"
    );
    assert!(!s.log().contains(&key), "SECRET_KEY in the log");
}

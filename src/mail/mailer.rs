//! The mailer process (`blitz: mailer`): delivers the mail queue, oldest first, and
//! retries failures with back-off. A mail outage delays mail; it never loses it,
//! because the queue row was committed with the registration or reset.

use std::time::Duration;

use blitz_master::ChildCtx;
use slog::{error, info, warn, Logger};

use super::{sealing, DeliverError, Delivery};
use crate::background::{self, Background};
use crate::config::Config;
use crate::log::Sink;
use crate::secrets::SecretKey;
use crate::store::{self, mail_queue, Db};

/// How often the queue is polled when idle: the delay before a new mail leaves.
const POLL: Duration = Duration::from_millis(300);
const BATCH: u32 = 20;
/// Retry delay after the n-th failure: 10 s doubling, at most an hour.
fn retry_after_s(attempts: i64) -> i64 {
    (10_i64 << attempts.clamp(0, 9)).min(3600)
}

pub fn run(ctx: ChildCtx, config: &Config, log: Logger, sinks: Vec<Sink>) -> i32 {
    let bg = match Background::start(&ctx, sinks) {
        Ok(bg) => bg,
        Err(e) => {
            error!(log, "cannot install signal handlers"; "error" => %e);
            return 1;
        }
    };
    let lock_path = config.instance_dir().join("mailer.lock");
    let _lock = match background::exclusive(&ctx, &bg, &lock_path, &log, &|| {}) {
        Ok(Some(lock)) => lock,
        Ok(None) => return 0,
        Err(e) => {
            error!(log, "cannot lock {}", lock_path.display(); "error" => %e);
            return 1;
        }
    };
    let delivery = match Delivery::new(config.smtp_url.as_deref(), config.instance_dir()) {
        Ok(d) => d,
        Err(e) => {
            error!(log, "mail delivery is not possible"; "error" => %e);
            return 1;
        }
    };
    let key = match SecretKey::resolve(config.secret_key.as_deref(), config.instance_dir()) {
        Ok(k) => k,
        Err(e) => {
            error!(log, "no secret key; queued mail cannot be opened"; "error" => %e);
            return 1;
        }
    };
    info!(log, "mailer started"; "delivery" => match &delivery {
        Delivery::Smtp(_) => "smtp".to_string(),
        Delivery::Outbox(dir) => dir.display().to_string(),
    });
    let mut db = Db::new(&config.database, 1);
    while bg.pause(&ctx, POLL) {
        if let Err(e) = drain(&mut db, &delivery, &key, config, &log, &bg) {
            error!(log, "mail queue unavailable"; "error" => %e);
        }
    }
    info!(log, "mailer stopped");
    0
}

/// Sends everything due now; stops early when asked to stop.
fn drain(
    db: &mut Db,
    delivery: &Delivery,
    key: &SecretKey,
    config: &Config,
    log: &Logger,
    bg: &Background,
) -> Result<(), store::StoreError> {
    loop {
        let due = mail_queue::due(&*db.conn()?, store::now(), BATCH)?;
        if due.is_empty() {
            return Ok(());
        }
        for mail in &due {
            if bg.stopping() {
                return Ok(());
            }
            let outcome = match sealing::open_body(key, mail) {
                Ok(body) => delivery.send(&config.mail_from, mail, body),
                Err(e) => Err(DeliverError::Sealed(e)),
            };
            let conn = db.conn()?;
            match outcome {
                Ok(dest) => {
                    mail_queue::mark_sent(&conn, mail.id, store::now())?;
                    info!(log, "mail sent"; "to" => &mail.recipient,
                        "subject" => &mail.subject, "destination" => dest);
                }
                Err(e) => record_failure(&conn, mail, &e, log)?,
            }
        }
    }
}

fn record_failure(
    conn: &crate::store::Conn,
    mail: &mail_queue::Mail,
    e: &DeliverError,
    log: &Logger,
) -> Result<(), store::StoreError> {
    crate::metrics::error(crate::metrics::ErrorKind::MailDelivery);
    if e.is_permanent() {
        error!(log, "mail cannot be delivered; giving up"; "to" => &mail.recipient,
            "mail_id" => mail.id, "error" => %e);
        return mail_queue::mark_failed(conn, mail.id, &e.to_string(), i64::MAX);
    }
    let wait = retry_after_s(mail.attempts);
    warn!(log, "mail delivery failed; will retry"; "to" => &mail.recipient,
        "mail_id" => mail.id, "attempt" => mail.attempts + 1, "retry_in_s" => wait,
        "error" => %e);
    mail_queue::mark_failed(conn, mail.id, &e.to_string(), store::now() + wait)
}

#[cfg(test)]
mod tests {
    #[test]
    fn back_off_doubles_and_caps() {
        use super::retry_after_s;
        assert_eq!(
            [0, 1, 2, 8, 50].map(retry_after_s),
            [10, 20, 40, 2560, 3600]
        );
    }
}

//! Delivering one message: over SMTP when `SMTP_URL` is set, otherwise as an `.eml`
//! file in `<instance dir>/outbox/` (development mode).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};

use crate::store::mail_queue::Mail;

/// Bounds one SMTP conversation so a hung server cannot stall the queue for long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("invalid message: {0}")]
    Message(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("outbox {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DeliverError {
    /// A message that can never be sent (bad address) is not retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliverError::Message(_) => true,
            DeliverError::Smtp(e) => e.is_permanent(),
            DeliverError::Outbox { .. } => false,
        }
    }
}

pub enum Delivery {
    Smtp(Box<SmtpTransport>),
    Outbox(PathBuf),
}

impl Delivery {
    /// SMTP from `smtp_url`, else the outbox directory (created if missing).
    pub fn new(smtp_url: Option<&str>, instance_dir: &Path) -> Result<Delivery, DeliverError> {
        match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Ok(Delivery::Smtp(Box::new(transport)))
            }
            None => {
                let dir = instance_dir.join("outbox");
                std::fs::create_dir_all(&dir).map_err(|source| DeliverError::Outbox {
                    path: dir.clone(),
                    source,
                })?;
                Ok(Delivery::Outbox(dir))
            }
        }
    }

    /// Sends `mail`; returns where it went (the `.eml` path, or the SMTP recipient).
    pub fn send(&self, from: &str, mail: &Mail) -> Result<String, DeliverError> {
        let message = build(from, mail)?;
        match self {
            Delivery::Smtp(t) => {
                t.send(&message)?;
                Ok(format!("smtp:{}", mail.recipient))
            }
            Delivery::Outbox(dir) => write_eml(dir, mail, &message.formatted()),
        }
    }
}

fn build(from: &str, mail: &Mail) -> Result<Message, DeliverError> {
    let bad = |e: &dyn std::fmt::Display| DeliverError::Message(e.to_string());
    Message::builder()
        .message_id(None)
        .from(from.parse().map_err(|e| bad(&e))?)
        .to(mail.recipient.parse().map_err(|e| bad(&e))?)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| bad(&e))
}

/// Writes `<created_at>-<id>.eml` through a temporary name and a rename, so a reader
/// of the outbox never sees half a message.
fn write_eml(dir: &Path, mail: &Mail, bytes: &[u8]) -> Result<String, DeliverError> {
    let name = format!("{}-{}.eml", mail.created_at, mail.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |source| DeliverError::Outbox {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path.display().to_string())
}

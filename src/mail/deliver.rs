//! Delivering one message: over SMTP when `SMTP_URL` is set, otherwise as an `.eml`
//! file in `<instance dir>/outbox/` (development mode). The outbox holds live links,
//! so it is the service user's alone: the directory mode 0700, each file 0600.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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
    /// The stored body does not open with this instance's key.
    #[error("{0}")]
    Sealed(#[from] crate::secrets::SecretError),
}

impl DeliverError {
    /// A message that can never be sent (bad address) is not retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliverError::Message(_) => true,
            DeliverError::Smtp(e) => e.is_permanent(),
            // Retried: the operator may put the right SECRET_KEY back.
            DeliverError::Outbox { .. } | DeliverError::Sealed(_) => false,
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
                private_dir(&dir).map_err(|source| DeliverError::Outbox {
                    path: dir.clone(),
                    source,
                })?;
                Ok(Delivery::Outbox(dir))
            }
        }
    }

    /// Sends `mail` with its opened `body`; returns where it went (the `.eml` path,
    /// or the SMTP recipient).
    pub fn send(&self, from: &str, mail: &Mail, body: String) -> Result<String, DeliverError> {
        let message = build(from, mail, body)?;
        match self {
            Delivery::Smtp(t) => {
                t.send(&message)?;
                Ok(format!("smtp:{}", mail.recipient))
            }
            Delivery::Outbox(dir) => write_eml(dir, mail, &message.formatted()),
        }
    }
}

fn build(from: &str, mail: &Mail, body: String) -> Result<Message, DeliverError> {
    let bad = |e: &dyn std::fmt::Display| DeliverError::Message(e.to_string());
    Message::builder()
        .message_id(None)
        .from(from.parse().map_err(|e| bad(&e))?)
        .to(mail.recipient.parse().map_err(|e| bad(&e))?)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| bad(&e))
}

/// Creates the outbox with mode 0700, or narrows an existing one to it (an older
/// release created it with the umask's mode).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Writes `<created_at>-<id>.eml` (mode 0600) through a temporary name and a rename,
/// so a reader of the outbox never sees half a message.
fn write_eml(dir: &Path, mail: &Mail, bytes: &[u8]) -> Result<String, DeliverError> {
    let name = format!("{}-{}.eml", mail.created_at, mail.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |source| DeliverError::Outbox {
        path: path.clone(),
        source,
    };
    // A temporary file left by a crash is replaced, keeping the mode.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_and_its_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = tmp.path().join("outbox");
        std::fs::create_dir(&outbox).unwrap();
        std::fs::set_permissions(&outbox, Permissions::from_mode(0o755)).unwrap();
        let Delivery::Outbox(dir) = Delivery::new(None, tmp.path()).unwrap() else {
            panic!("no SMTP_URL: the outbox")
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let mail = Mail {
            id: 7,
            recipient: "a@x.io".into(),
            subject: "s".into(),
            body: String::new(),
            created_at: 1,
            attempts: 0,
        };
        let d = Delivery::Outbox(dir.clone());
        let path = d.send("blitz@localhost", &mail, "hello".into()).unwrap();
        assert_eq!(mode(Path::new(&path)), 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().contains("hello"));
    }
}

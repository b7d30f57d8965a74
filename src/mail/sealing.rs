//! Mail bodies at rest. A queued mail holds a one-time link (verification, password
//! reset), so its body is sealed with the instance key like exchange keys
//! (`secrets`), bound to its recipient; raw database and WAL bytes never show a
//! link. The mailer opens it to deliver and erases it once delivered.
//! See docs/operations.md, Mail.

use crate::store::sql::Conn;

use crate::secrets::{SecretError, SecretKey};
use crate::store::{mail_queue, StoreError};

fn context(recipient: &str) -> String {
    format!("mail:{recipient}")
}

/// The body as it is stored in `mail_queue`.
pub fn seal_body(key: &SecretKey, recipient: &str, body: &str) -> String {
    key.seal(body, &context(recipient))
}

/// The text to deliver. A body queued by an older release (before sealing) is
/// plaintext and is delivered as it is.
pub fn open_body(key: &SecretKey, mail: &mail_queue::Mail) -> Result<String, SecretError> {
    if SecretKey::is_sealed(&mail.body) {
        key.open(&mail.body, &context(&mail.recipient))
    } else {
        Ok(mail.body.clone())
    }
}

/// What `seal_stored` changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upgraded {
    pub sealed: usize,
    pub erased: usize,
}

/// Seals the bodies of unsent mails an older release queued in plaintext, and
/// empties those of delivered ones (run by the master at start, in one
/// transaction). Plaintext cells are overwritten in place with `secure_delete` on,
/// so the old text does not linger in freed space of the database file.
pub fn seal_stored(conn: &mut Conn, key: &SecretKey) -> Result<Upgraded, StoreError> {
    if conn.kind() == crate::store::Kind::Sqlite {
        conn.execute_batch("PRAGMA secure_delete = ON")?;
    }
    let tx = conn.transaction_immediate()?;
    let legacy = mail_queue::unsealed(&tx, SecretKey::is_sealed)?;
    for mail in &legacy {
        mail_queue::set_body(&tx, mail.id, &seal_body(key, &mail.recipient, &mail.body))?;
    }
    let erased = mail_queue::erase_sent_bodies(&tx)?;
    tx.commit()?;
    let done = Upgraded {
        sealed: legacy.len(),
        erased,
    };
    if done != Upgraded::default() {
        // Copy the rewritten pages into the database file now, over the old ones
        // (best effort: a reader of an older release may hold the WAL open).
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |_| Ok(()))?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_plaintext_rows_are_sealed_and_sent_ones_erased() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, _) = crate::store::open_migrated(&dir.path().join("db")).unwrap();
        let key = SecretKey::derive(b"k");
        let link = "https://x/verify/SECRET-LINK-1";
        let old = mail_queue::enqueue(&conn, "a@x.io", "s", link, 1).unwrap();
        let sent = mail_queue::enqueue(&conn, "b@x.io", "s", "https://x/reset/OLD", 1).unwrap();
        mail_queue::mark_sent(&conn, sent, 2).unwrap();
        conn.execute(
            "UPDATE mail_queue SET body = 'https://x/reset/OLD' WHERE id = ?1",
            [sent],
        )
        .unwrap();
        let new =
            mail_queue::enqueue(&conn, "c@x.io", "s", &seal_body(&key, "c@x.io", "hi"), 1).unwrap();
        let done = seal_stored(&mut conn, &key).unwrap();
        assert_eq!(
            done,
            Upgraded {
                sealed: 1,
                erased: 1
            }
        );
        let due = mail_queue::due(&conn, 10, 10).unwrap();
        let body = |id| due.iter().find(|m| m.id == id).unwrap();
        assert!(SecretKey::is_sealed(&body(old).body));
        assert_eq!(open_body(&key, body(old)).unwrap(), link);
        assert_eq!(open_body(&key, body(new)).unwrap(), "hi");
        // A plaintext row met by the mailer before the master sealed it (queued by
        // an older release's worker during an upgrade) is delivered as it is.
        let mut legacy = mail_queue::due(&conn, 10, 10).unwrap().remove(0);
        legacy.body = "plain text".into();
        assert_eq!(open_body(&key, &legacy).unwrap(), "plain text");
        let left: String = conn
            .query_row("SELECT body FROM mail_queue WHERE id = ?1", [sent], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(left, "");
        // Run again: nothing left to do.
        assert_eq!(seal_stored(&mut conn, &key).unwrap(), Upgraded::default());
    }

    #[test]
    fn a_body_opens_only_for_its_recipient() {
        let key = SecretKey::derive(b"k");
        let mail = |to: &str, body: String| mail_queue::Mail {
            id: 1,
            recipient: to.into(),
            subject: String::new(),
            body,
            created_at: 0,
            attempts: 0,
        };
        let sealed = seal_body(&key, "a@x.io", "link");
        assert!(!sealed.contains("link"));
        assert_eq!(
            open_body(&key, &mail("a@x.io", sealed.clone())).unwrap(),
            "link"
        );
        assert!(open_body(&key, &mail("b@x.io", sealed)).is_err());
    }
}

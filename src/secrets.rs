//! Secrets at rest: exchange API keys/secrets, Telegram tokens and the bodies of
//! queued mails (which hold one-time links) are sealed with XChaCha20-Poly1305
//! under the instance key before they reach the database. The same key, through a
//! derived MAC key, signs the login form's CSRF token (`auth::csrf`).
//!
//! The instance key comes from `SECRET_KEY` or, when unset, from
//! `<instance dir>/secret_key` (32 random bytes in hex, mode 0600), generated on first
//! start. Each value is bound to its owner and field (associated data), so a sealed
//! value copied into another user's row or column does not open.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::auth::token::random_bytes;

pub const KEY_FILE: &str = "secret_key";
const FORMAT: &str = "v1.";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret key file {0} must hold 64 hex digits")]
    KeyFormat(PathBuf),
    #[error("a stored secret cannot be decrypted (was SECRET_KEY changed?)")]
    Open,
}

/// The 256-bit key that seals secrets. Not `Debug`, not `Display`.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Derives the sealing key from operator material (`SECRET_KEY` bytes or the
    /// key file), with a purpose label so the same material keys nothing else alike.
    pub fn derive(material: &[u8]) -> SecretKey {
        let mut h = Sha256::new();
        h.update(b"blitz secrets at rest v1\0");
        h.update(material);
        SecretKey(h.finalize().into())
    }

    /// `SECRET_KEY` if configured, else the instance key file (created if missing).
    pub fn resolve(
        configured: Option<&[u8]>,
        instance_dir: &Path,
    ) -> Result<SecretKey, SecretError> {
        match configured {
            Some(material) => Ok(SecretKey::derive(material)),
            None => Ok(SecretKey::derive(&load_or_create(
                &instance_dir.join(KEY_FILE),
            )?)),
        }
    }

    /// Seals `plaintext` for `context` (e.g. `user:7:api_secret`).
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce = random_bytes::<NONCE_LEN>();
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption only fails for messages beyond 256 GiB; ours are short strings.
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        format!("{FORMAT}{}", URL_SAFE_NO_PAD.encode(raw))
    }

    /// Whether `stored` has the sealed format (a value stored before sealing was
    /// introduced, such as a queued mail of an older release, does not).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(FORMAT)
    }

    /// HMAC-SHA256 of `msg` for `purpose`, under a key derived from the sealing key
    /// (one key never serves two primitives).
    pub fn mac(&self, purpose: &str, msg: &[u8]) -> [u8; 32] {
        use hmac::{KeyInit as _, Mac};
        let mut derive = Sha256::new();
        derive.update(b"blitz mac key v1\0");
        derive.update(self.0);
        let key: [u8; 32] = derive.finalize().into();
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let raw = sealed
            .strip_prefix(FORMAT)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|r| r.len() > NONCE_LEN)
            .ok_or(SecretError::Open)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SecretError::Open)?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretError::Open)
    }
}

/// A user's exchange and Telegram secrets in plaintext (only in memory).
#[derive(Default, PartialEq, Eq)]
pub struct Credentials {
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub telegram_token: Option<String>,
}

/// The same secrets sealed for their owner, with the key's last four characters
/// (the only part ever shown, as `***abcd`): the key pair goes to an exchange
/// account (`store::exchange_accounts`), the token to the user's row.
pub struct SealedRow {
    pub api_key: Option<(String, String)>,
    pub api_secret: Option<String>,
    pub telegram_token: Option<String>,
}

fn context(user_id: i64, field: &str) -> String {
    format!("user:{user_id}:{field}")
}

impl SecretKey {
    pub fn seal_credentials(&self, user_id: i64, c: &Credentials) -> SealedRow {
        let seal = |v: &Option<String>, field| {
            v.as_deref().map(|p| self.seal(p, &context(user_id, field)))
        };
        SealedRow {
            api_key: c.api_key.as_deref().map(|k| {
                let skip = k.chars().count().saturating_sub(4);
                let last4: String = k.chars().skip(skip).collect();
                (self.seal(k, &context(user_id, "api_key")), last4)
            }),
            api_secret: seal(&c.api_secret, "api_secret"),
            telegram_token: seal(&c.telegram_token, "telegram_token"),
        }
    }

    pub fn open_credentials(
        &self,
        user_id: i64,
        stored: &crate::store::users::StoredCredentials,
    ) -> Result<Credentials, SecretError> {
        let open = |v: &Option<String>, field| {
            v.as_deref()
                .map(|s| self.open(s, &context(user_id, field)))
                .transpose()
        };
        Ok(Credentials {
            api_key: open(&stored.api_key, "api_key")?,
            api_secret: open(&stored.api_secret, "api_secret")?,
            telegram_token: open(&stored.telegram_token, "telegram_token")?,
        })
    }
}

/// Reads the key file, or creates it with fresh random bytes. `create_new` makes
/// the creation atomic: two processes starting at once end up with the same key.
fn load_or_create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            let hex = hex::encode(random_bytes::<32>());
            f.write_all(format!("{hex}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            decode_hex(&hex).ok_or_else(|| SecretError::KeyFormat(path.to_path_buf()))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mut f = std::fs::File::open(path).map_err(io)?;
            if f.metadata().map_err(io)?.permissions().mode() & 0o077 != 0 {
                // Tighten rather than refuse: the operator may have copied the file.
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
            let mut text = String::new();
            f.read_to_string(&mut text).map_err(io)?;
            decode_hex(text.trim()).ok_or_else(|| SecretError::KeyFormat(path.to_path_buf()))
        }
        Err(e) => Err(io(e)),
    }
}

/// Exactly 32 bytes in hex (64 digits).
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(s, &mut key).ok()?;
    Some(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_context() {
        let k = SecretKey::derive(b"0123456789abcdef0123456789abcdef");
        let s = k.seal("my-api-secret", "user:1:api_secret");
        assert!(s.starts_with("v1.") && !s.contains("my-api-secret"));
        assert_ne!(
            s,
            k.seal("my-api-secret", "user:1:api_secret"),
            "fresh nonce"
        );
        assert_eq!(k.open(&s, "user:1:api_secret").unwrap(), "my-api-secret");
        assert!(k.open(&s, "user:2:api_secret").is_err());
        assert!(SecretKey::derive(b"other key material, 32 bytes....")
            .open(&s, "user:1:api_secret")
            .is_err());
        assert!(k.open("v1.garbage", "x").is_err());
    }

    /// A value sealed outside this code (Python: SHA-256 key derivation, HChaCha20,
    /// then the `cryptography` package's ChaCha20-Poly1305), so stored secrets keep
    /// opening whatever version of the AEAD crate seals them.
    #[test]
    fn opens_a_value_sealed_by_an_independent_implementation() {
        let k = SecretKey::derive(b"test key material");
        let sealed = "v1.ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7vNEfdRKunYBBk0nbDp0N3lm_Qrr54TFAvZmvjVo";
        assert_eq!(
            k.open(sealed, "user:1:api_secret").unwrap(),
            "my-api-secret"
        );
        assert!(k.open(sealed, "user:2:api_secret").is_err());
    }

    /// Every value of every table, as `sqlite3 .dump` would print them.
    fn dump(conn: &crate::store::Conn) -> String {
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map((), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = String::new();
        for t in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query(()).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for i in 0..n {
                    let v: crate::store::sql::Value<'static> = row.get(i).unwrap();
                    out.push_str(&format!("{v:?}|"));
                }
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn stored_credentials_never_hold_plaintext() {
        use crate::store::users;
        let dir = tempfile::tempdir().unwrap();
        let (conn, _) = crate::store::open_migrated(&dir.path().join("db.sqlite")).unwrap();
        let new = users::NewUser {
            email: "s@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let id = users::create(&conn, &new, 1).unwrap();
        let key = SecretKey::resolve(None, dir.path()).unwrap();
        let plain = Credentials {
            api_key: Some("APIKEY-PLAINTEXT-wxyz".into()),
            api_secret: Some("SECRET-PLAINTEXT-1234".into()),
            telegram_token: Some("TELEGRAM-PLAINTEXT-99".into()),
        };
        let sealed = key.seal_credentials(id, &plain);
        let (api_key, last4) = sealed.api_key.clone().unwrap();
        let account = crate::store::exchange_accounts::NewAccount {
            name: "Bybit",
            exchange: "bybit",
            api_key_enc: &api_key,
            api_key_last4: &last4,
            api_secret_enc: sealed.api_secret.as_deref().unwrap(),
        };
        let account = crate::store::exchange_accounts::create(&conn, id, &account, 1).unwrap();
        let token = sealed.telegram_token.as_deref().unwrap();
        users::set_telegram_token(&conn, id, token).unwrap();
        // What an operator's `sqlite3 db .dump` shows, and every value read directly.
        let cli = std::process::Command::new("sqlite3")
            .arg(dir.path().join("db.sqlite"))
            .arg(".dump")
            .output()
            .expect("the sqlite3 command-line tool (tests/run installs it)");
        assert!(cli.status.success());
        let cli_dump = String::from_utf8_lossy(&cli.stdout).into_owned();
        let sealed_secret = sealed.api_secret.as_deref().unwrap();
        assert!(cli_dump.contains(sealed_secret), "the row is in the dump");
        for text in [dump(&conn), cli_dump] {
            for secret in ["APIKEY-PLAINTEXT", "SECRET-PLAINTEXT", "TELEGRAM-PLAINTEXT"] {
                assert!(!text.contains(secret), "{secret} in the dump");
            }
        }
        let stored = crate::store::exchange_accounts::credentials(&conn, id, account)
            .unwrap()
            .unwrap();
        assert_eq!(stored.api_key_last4.as_deref(), Some("wxyz"));
        let telegram = users::credentials(&conn, id).unwrap().unwrap();
        let stored = users::StoredCredentials {
            telegram_token: telegram.telegram_token,
            ..stored
        };
        assert!(key.open_credentials(id, &stored).unwrap() == plain);
        // Sealed for one user, a value does not open for another.
        assert!(key.open_credentials(id + 1, &stored).is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::resolve(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = SecretKey::resolve(None, dir.path()).unwrap();
        assert_eq!(b.open(&a.seal("x", "c"), "c").unwrap(), "x");
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(
            SecretKey::resolve(None, dir.path()),
            Err(SecretError::KeyFormat(_))
        ));
    }
}

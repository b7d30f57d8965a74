//! Secrets at rest: exchange API keys/secrets and Telegram tokens are sealed with
//! XChaCha20-Poly1305 under the instance key before they reach the database.
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
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        format!("{FORMAT}{}", URL_SAFE_NO_PAD.encode(raw))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let raw = sealed
            .strip_prefix(FORMAT)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|r| r.len() > NONCE_LEN)
            .ok_or(SecretError::Open)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretError::Open)
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
            let hex: String = random_bytes::<32>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
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

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
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

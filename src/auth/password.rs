//! Password hashing: Argon2id with OWASP's recommended minimum parameters
//! (19 MiB memory, 2 passes, 1 lane), in the PHC string format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MEMORY_KIB: u32 = 19_456;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;
pub const MIN_LEN: usize = 8;
/// Longer input only costs hashing time; no real password is this long.
pub const MAX_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn hasher() -> Argon2<'static> {
    // The constants are valid Argon2 parameters; a unit test constructs them.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Nanoseconds this process has spent hashing, ever: the worker's hashing budget
/// (`http::hash_budget`) charges a request the growth of this across its handler,
/// not the handler's whole time (which includes waits for the database lock).
static HASHING_NS: AtomicU64 = AtomicU64::new(0);

/// Total time this process has spent hashing or verifying passwords.
pub fn hashing_time() -> Duration {
    Duration::from_nanos(HASHING_NS.load(Ordering::Relaxed))
}

/// Runs `f`, adding its wall-clock time to `HASHING_NS`.
fn timed<T>(f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    HASHING_NS.fetch_add(ns, Ordering::Relaxed);
    out
}

pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = super::token::random_bytes::<16>();
    timed(|| hash_with_salt(password, &salt))
}

fn hash_with_salt(password: &str, salt: &[u8; 16]) -> Result<String, HashError> {
    let hashed: PasswordHash = hasher()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hashed.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => timed(|| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }),
        Err(_) => false,
    }
}

/// Spends the same time as `verify` against a real hash, for logins with an unknown
/// e-mail, so response time does not reveal which e-mails have accounts.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("not a real password").unwrap_or_default());
    let _ = verify(password, stored);
}

/// The length rule (at least 8 characters); the error is the message for the field.
pub fn check_new(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < MIN_LEN {
        Err("must be at least 8 characters")
    } else if password.len() > MAX_LEN {
        Err("must be at most 1024 bytes")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_valid_and_recorded_in_the_hash() {
        assert!(Params::new(MEMORY_KIB, PASSES, LANES, None).is_ok());
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));
        assert_ne!(hash("correct horse").unwrap(), h, "salted");
    }

    /// A hash stored by the previous release (argon2 0.5): it still verifies, and
    /// the same password and salt still give the same string.
    #[test]
    fn hashes_from_argon2_0_5_still_verify() {
        let stored = "$argon2id$v=19$m=19456,t=2,p=1$N6WzA6PJJ+B7771pXbmdhQ$\
                      H4BEwNZs7I0j9kBZvnPDBxcM6DLDovXnoej53PwLbd8";
        assert!(verify("correct horse battery", stored));
        assert!(!verify("correct horse", stored));
        let salt = [
            55, 165, 179, 3, 163, 201, 39, 224, 123, 239, 189, 105, 93, 185, 157, 133,
        ];
        assert_eq!(
            hash_with_salt("correct horse battery", &salt).unwrap(),
            stored
        );
    }

    #[test]
    fn hashing_time_counts_hashes_and_verifications() {
        let before = hashing_time();
        let h = hash("correct horse").unwrap();
        let after_hash = hashing_time();
        assert!(after_hash > before);
        assert!(verify("correct horse", &h));
        assert!(hashing_time() > after_hash);
    }

    #[test]
    fn length_rule() {
        assert!(check_new("1234567").is_err());
        assert!(check_new("12345678").is_ok());
        assert!(check_new(&"x".repeat(1025)).is_err());
    }
}

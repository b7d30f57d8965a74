//! Time-based one-time passwords (RFC 6238) as authenticator apps make them:
//! HMAC-SHA-1, 6 digits, 30-second steps, secrets of 20 random bytes in base32.
//!
//! Written over the RustCrypto `hmac` and `sha1` crates (HOTP is one HMAC and a
//! truncation); which steps a login may still use is the caller's business (see
//! `auth::two_factor`, which refuses a step already used).

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_S: i64 = 30;
pub const DIGITS: usize = 6;
/// Steps either side of the current one that are still accepted (clock drift and
/// the seconds it takes to type a code).
pub const DRIFT_STEPS: i64 = 1;
pub const SECRET_BYTES: usize = 20;

/// The 30-second step that `unix_s` falls in.
pub fn step_at(unix_s: i64) -> i64 {
    unix_s.div_euclid(STEP_S)
}

/// HOTP (RFC 4226) for `counter`, as a zero-padded 6-digit string.
pub fn code(secret: &[u8], counter: u64) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", word % 1_000_000)
}

/// The step within `now ± DRIFT_STEPS` whose code is `given`, newest first.
/// Compared in constant time, so timing does not reveal a right prefix.
pub fn matching_step(secret: &[u8], given: &str, now_s: i64) -> Option<i64> {
    if given.len() != DIGITS || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_s);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS).rev().find(|&step| {
        u64::try_from(step)
            .is_ok_and(|c| bool::from(code(secret, c).as_bytes().ct_eq(given.as_bytes())))
    })
}

/// A new random secret, base32 without padding (32 characters).
pub fn new_secret() -> String {
    BASE32_NOPAD.encode(&super::token::random_bytes::<SECRET_BYTES>())
}

/// The bytes of a base32 secret as `new_secret` writes it.
pub fn decode_secret(b32: &str) -> Option<Vec<u8>> {
    BASE32_NOPAD.decode(b32.as_bytes()).ok()
}

/// The `otpauth://` URI that authenticator apps read from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, b32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        label(issuer),
        label(account),
        label(issuer)
    )
}

/// Percent-encodes all but unreserved characters and `@` (which a path allows and
/// apps show as typed).
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the 8-digit values' last six digits.
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            let step = u64::try_from(step_at(t)).unwrap();
            assert_eq!(code(secret, step), want, "T = {t}");
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_nothing_else() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let at = |s: i64| code(secret, u64::try_from(step_at(now) + s).unwrap());
        for drift in [-1, 0, 1] {
            assert_eq!(
                matching_step(secret, &at(drift), now),
                Some(step_at(now) + drift)
            );
        }
        for far in [-2, 2] {
            assert_eq!(matching_step(secret, &at(far), now), None);
        }
        for junk in ["", "12345", "1234567", "05047a", " 50471"] {
            assert_eq!(matching_step(secret, junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn secrets_are_20_random_bytes_in_base32() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(decode_secret(&a).map(|s| s.len()), Some(SECRET_BYTES));
        // RFC 4648's example: "foobar" is MZXW6YTBOI.
        assert_eq!(decode_secret("MZXW6YTBOI").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode_secret("not base32!"), None);
    }

    #[test]
    fn otpauth_uri_names_issuer_account_and_parameters() {
        assert_eq!(
            otpauth_uri("Blitz", "a.b+c@x.io", "ABC"),
            "otpauth://totp/Blitz:a.b%2Bc@x.io?secret=ABC&issuer=Blitz\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}

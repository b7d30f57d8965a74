//! Random secrets (session cookies, API tokens, one-time links, CSRF) and the hash
//! under which they are stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so leaked tokens are easy to recognise and scan for.
pub const API_TOKEN_PREFIX: &str = "blitz_";

/// `N` bytes from the operating system's CSPRNG.
///
/// Panics only if the kernel cannot supply randomness, where continuing with a
/// predictable secret would be worse than stopping.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("the operating system's random source failed: {e}");
    }
    buf
}

/// 256 random bits as 43 URL-safe characters.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_token())
}

/// SHA-256 in hex: how every token is stored. Tokens carry 256 random bits, so a
/// fast hash is enough (nothing to brute-force) and keeps lookups cheap.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A password of 20 URL-safe random characters (~120 bits), for generated passwords.
pub fn random_password() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<15>())
}

/// Whether `s` could be a token we issued (bounded length, URL-safe alphabet), so
/// garbage is rejected before it reaches the database.
pub fn looks_like_token(s: &str) -> bool {
    (20..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_is_sha256_hex() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(looks_like_token(&a) && looks_like_token(&new_api_token()));
        assert!(!looks_like_token("short") && !looks_like_token("has space in it......"));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(random_password().len(), 20);
    }
}

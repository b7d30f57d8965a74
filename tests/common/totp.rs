//! TOTP codes as an authenticator app computes them (RFC 6238: HMAC-SHA-1, 6
//! digits, 30 s), written apart from the server's own, so the tests check it
//! against an independent implementation.

use hmac::{Hmac, KeyInit, Mac};

/// The current 30-second step.
pub fn now_step() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_secs() / 30
}

/// The code of `step` for a base32 secret (as `POST /api/auth/2fa/setup` returns it).
pub fn code(secret_b32: &str, step: u64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .expect("base32 secret");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = usize::from(h[19] & 0xf);
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// A 6-digit code that is none of the codes the server accepts around `step`.
pub fn wrong_code(secret_b32: &str, step: u64) -> String {
    let taken: Vec<String> = (step - 2..=step + 2).map(|s| code(secret_b32, s)).collect();
    (0..)
        .map(|i| format!("{:06}", (i * 7919) % 1_000_000))
        .find(|c| !taken.contains(c))
        .unwrap()
}

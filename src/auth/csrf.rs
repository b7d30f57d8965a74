//! CSRF: the session's token, handed out masked, the login form's token from
//! before there is a session, and the strict-mode Origin/Referer check for HTTPS.
//! See docs/http-api.md, Sessions and CSRF.
//!
//! Each session has one secret token. Clients receive it XOR-masked with fresh random
//! bytes (`mask || token ^ mask`), so every response carries a different-looking value
//! (no BREACH-style recovery from compressed pages) and all of them validate.
//!
//! The login form (login CSRF: another site logging a victim into the attacker's
//! account) has no session yet: the login page sets a nonce in the `blitz_login`
//! cookie and puts MAC(instance key, nonce) in the form. Another site can neither
//! read the cookie nor compute the MAC, so it cannot post a form that matches the
//! cookie the victim's browser sends. The nonce itself is random bytes and their
//! MAC: one who can plant a cookie still cannot choose a nonce of their own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::token::random_bytes;
use crate::secrets::SecretKey;

const LEN: usize = 32;

/// A new session secret, stored with the session.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<LEN>())
}

/// A freshly masked form of the session's secret, for a response.
pub fn masked(secret: &str) -> String {
    let Some(secret) = decode::<LEN>(secret) else {
        return String::new();
    };
    let mask = random_bytes::<LEN>();
    let mut out = [0u8; LEN * 2];
    for i in 0..LEN {
        out[i] = mask[i];
        out[LEN + i] = secret[i] ^ mask[i];
    }
    URL_SAFE_NO_PAD.encode(out)
}

/// Whether a presented (masked) token belongs to the session's secret.
pub fn matches(presented: &str, secret: &str) -> bool {
    let (Some(p), Some(s)) = (decode::<{ LEN * 2 }>(presented), decode::<LEN>(secret)) else {
        return false;
    };
    let mut unmasked = [0u8; LEN];
    for i in 0..LEN {
        unmasked[i] = p[i] ^ p[LEN + i];
    }
    unmasked.ct_eq(&s).into()
}

/// Random bytes at the start of a login nonce; a MAC of them fills the rest.
const NONCE_RANDOM: usize = LEN / 2;

/// A new login-form nonce, for the `blitz_login` cookie: random bytes and their
/// MAC under the instance key, so that only this server can make one.
pub fn new_login_nonce(key: &SecretKey) -> String {
    let random = random_bytes::<NONCE_RANDOM>();
    let mut nonce = [0u8; LEN];
    nonce[..NONCE_RANDOM].copy_from_slice(&random);
    nonce[NONCE_RANDOM..].copy_from_slice(&nonce_mac(key, &random));
    URL_SAFE_NO_PAD.encode(nonce)
}

fn nonce_mac(key: &SecretKey, random: &[u8]) -> [u8; LEN - NONCE_RANDOM] {
    let mac = key.mac("login nonce", random);
    let mut out = [0u8; LEN - NONCE_RANDOM];
    out.copy_from_slice(&mac[..LEN - NONCE_RANDOM]);
    out
}

/// Whether a cookie value is a nonce this server made (a page reuses it, so that
/// two open login tabs both stay valid). A nonce of the attacker's choosing, planted
/// in the victim's browser (from a sibling subdomain, say), fails here: without
/// the key no one can make one that passes.
pub fn is_login_nonce(key: &SecretKey, nonce: &str) -> bool {
    let Some(raw) = decode::<LEN>(nonce) else {
        return false;
    };
    let (random, mac) = raw.split_at(NONCE_RANDOM);
    nonce_mac(key, random).ct_eq(mac).into()
}

/// The login form's token for the cookie's nonce.
pub fn login_token(key: &SecretKey, nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.mac("login csrf", nonce.as_bytes()))
}

/// Whether the cookie's nonce is one of ours and the form's token belongs to it.
pub fn login_matches(key: &SecretKey, nonce: &str, presented: &str) -> bool {
    is_login_nonce(key, nonce)
        && login_token(key, nonce)
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
}

fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() > N * 2 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

/// Strict mode for HTTPS: the `Origin` (or, without one, the `Referer`) must be
/// `https://<host>` where host is the request's `Host` (port included when present).
pub fn same_origin(host: &str, origin: Option<&str>, referer: Option<&str>) -> bool {
    let source = match (origin, referer) {
        (Some(o), _) => o,
        (None, Some(r)) => r,
        (None, None) => return false,
    };
    let Some(rest) = source.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Userinfo in a Referer ("https://evil@host/") must not pass for the host.
    !authority.is_empty() && !authority.contains('@') && authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_and_validate() {
        let secret = new_secret();
        let (a, b) = (masked(&secret), masked(&secret));
        assert_ne!(a, b);
        assert!(matches(&a, &secret) && matches(&b, &secret));
        assert!(!matches(&a, &new_secret()));
        assert!(!matches(&secret, &secret), "the raw secret is not a token");
        assert!(!matches("", &secret) && !matches("!!", &secret));
    }

    #[test]
    fn login_tokens_belong_to_their_nonce_and_key() {
        let key = SecretKey::derive(b"instance key material");
        let nonce = new_login_nonce(&key);
        let token = login_token(&key, &nonce);
        assert!(login_matches(&key, &nonce, &token));
        assert!(!login_matches(&key, &new_login_nonce(&key), &token));
        assert!(!login_matches(&SecretKey::derive(b"other"), &nonce, &token));
        assert!(!login_matches(&key, &nonce, ""));
        assert!(!login_matches(&key, "", &login_token(&key, "")));
        assert!(!login_matches(&key, &nonce, &nonce));
    }

    /// A cookie-planting attacker picks a well-formed nonce and computes nothing
    /// else: without the key, neither the nonce nor its form token passes.
    #[test]
    fn only_server_issued_nonces_are_accepted() {
        let key = SecretKey::derive(b"instance key material");
        let nonce = new_login_nonce(&key);
        assert!(is_login_nonce(&key, &nonce));
        assert_ne!(nonce, new_login_nonce(&key));
        assert!(!is_login_nonce(&SecretKey::derive(b"other"), &nonce));
        let chosen = URL_SAFE_NO_PAD.encode([7u8; LEN]);
        assert!(!is_login_nonce(&key, &chosen));
        assert!(!login_matches(&key, &chosen, &login_token(&key, &chosen)));
        // One bit changed anywhere breaks it.
        let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        raw[0] ^= 1;
        let flipped = URL_SAFE_NO_PAD.encode(&raw);
        assert!(!login_matches(&key, &flipped, &login_token(&key, &flipped)));
        assert!(!is_login_nonce(&key, "") && !is_login_nonce(&key, "!!"));
    }

    #[test]
    fn strict_origin_rules() {
        let h = "shop.example:8443";
        assert!(same_origin(h, Some("https://shop.example:8443"), None));
        assert!(same_origin(
            h,
            None,
            Some("https://SHOP.example:8443/settings?x=1")
        ));
        assert!(!same_origin(
            h,
            Some("https://evil.example"),
            Some("https://shop.example:8443/")
        ));
        assert!(!same_origin(h, Some("http://shop.example:8443"), None));
        assert!(!same_origin(h, Some("null"), None));
        assert!(!same_origin(h, None, Some("https://x@shop.example:8443/")));
        assert!(!same_origin(h, None, None));
        assert!(!same_origin(
            "shop.example",
            Some("https://shop.example.evil"),
            None
        ));
    }
}

//! The `blitz_session` cookie and the login form's `blitz_login` cookie: reading
//! them from requests, writing `Set-Cookie`.

pub const NAME: &str = "blitz_session";
/// 24 hours, the session lifetime.
pub const MAX_AGE_S: i64 = 86_400;
/// The login form's CSRF nonce (`auth::csrf`), sent only to `/login`.
pub const LOGIN_NAME: &str = "blitz_login";
/// A login page left open longer than this must be reloaded.
pub const LOGIN_MAX_AGE_S: i64 = 3_600;

/// The session cookie's value from the request's `Cookie` headers, if present.
pub fn session_value<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<&'a str> {
    named(cookie_headers, NAME)
}

/// The value of the cookie `name` from the request's `Cookie` headers, if present.
pub fn named<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    for header in cookie_headers {
        let Ok(text) = std::str::from_utf8(header) else {
            continue;
        };
        for pair in text.split(';') {
            if let Some((k, v)) = blitz_worker::trim_ows_str(pair).split_once('=') {
                if k == name {
                    return Some(v.trim_matches('"'));
                }
            }
        }
    }
    None
}

/// `Set-Cookie` that starts a session.
pub fn set(value: &str, secure: bool) -> String {
    format!(
        "{NAME}={value}; Max-Age={MAX_AGE_S}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` of the login form's nonce.
pub fn set_login(nonce: &str, secure: bool) -> String {
    format!(
        "{LOGIN_NAME}={nonce}; Max-Age={LOGIN_MAX_AGE_S}; Path=/login; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie from the browser.
pub fn clear(secure: bool) -> String {
    format!(
        "{NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cookie_among_others() {
        let h: [&[u8]; 2] = [b"a=1; theme=dark", b"x=y; blitz_session=abc123; z=2"];
        assert_eq!(session_value(h.iter().copied()), Some("abc123"));
        let none: [&[u8]; 1] = [b"blitz_session_old=1"];
        assert_eq!(session_value(none.iter().copied()), None);
        // A no-break space is part of the name, not whitespace around it.
        let nbsp: [&[u8]; 1] = ["a=1;\u{a0}blitz_session=abc".as_bytes()];
        assert_eq!(session_value(nbsp.iter().copied()), None);
    }

    #[test]
    fn attributes() {
        assert_eq!(
            set("v", false),
            "blitz_session=v; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(set("v", true).ends_with("; Secure"));
        assert!(clear(false).contains("Max-Age=0"));
    }
}

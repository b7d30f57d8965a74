//! Who is asking: the request-scoped identity every handler receives (anonymous, or
//! a user via a session cookie or a bearer token; admin is the user's role flag).

use crate::store::sql::Conn;
use blitz_worker::trim_ows_str;

use super::{cookie, token};
use crate::store::{sessions, tokens, users::User, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Browser session: CSRF applies to unsafe methods.
    Session { id: i64, csrf_secret: String },
    /// `Authorization: Bearer`: exempt from CSRF (no ambient credential).
    Bearer { token_id: i64 },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub via: Via,
}

#[derive(Debug, Clone, Default)]
pub enum Identity {
    #[default]
    Anonymous,
    User(Principal),
}

impl Identity {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Identity::Anonymous => None,
            Identity::User(p) => Some(p),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.principal().is_some_and(|p| p.user.is_admin)
    }

    pub fn user_id(&self) -> Option<i64> {
        self.principal().map(|p| p.user.id)
    }
}

/// The credentials a request carries.
pub struct Credentials<'a> {
    pub authorization: Option<&'a [u8]>,
    pub cookies: Vec<&'a [u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A bearer token was presented and is unknown, revoked or its user disabled:
    /// answered 401 rather than silently treated as anonymous.
    #[error("invalid bearer token")]
    BadBearer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves the identity: a bearer token wins over a cookie; an unknown or expired
/// cookie is simply anonymous (the browser may hold a stale one).
pub fn resolve(conn: &Conn, creds: &Credentials<'_>, now: i64) -> Result<Identity, IdentityError> {
    if let Some(bearer) = creds.authorization.and_then(bearer_token) {
        if !token::looks_like_token(bearer) {
            return Err(IdentityError::BadBearer);
        }
        let found = tokens::lookup(conn, &token::hash(bearer))?.ok_or(IdentityError::BadBearer)?;
        let stale = found
            .token
            .last_used_at
            .is_none_or(|t| now - t >= tokens::TOUCH_INTERVAL_S);
        if stale {
            tokens::touch(conn, found.token.id, now)?;
        }
        return Ok(Identity::User(Principal {
            user: found.user,
            via: Via::Bearer {
                token_id: found.token.id,
            },
        }));
    }
    let Some(value) = cookie::session_value(creds.cookies.iter().copied()) else {
        return Ok(Identity::Anonymous);
    };
    if !token::looks_like_token(value) {
        return Ok(Identity::Anonymous);
    }
    Ok(match sessions::lookup(conn, &token::hash(value), now)? {
        Some(s) => Identity::User(Principal {
            user: s.user,
            via: Via::Session {
                id: s.id,
                csrf_secret: s.csrf_token,
            },
        }),
        None => Identity::Anonymous,
    })
}

/// What identifies the credentials for `auth::cache`: the hash of the bearer token
/// (which wins) or of the session cookie; `None` without credentials.
pub fn cache_key(creds: &Credentials<'_>) -> Option<String> {
    if let Some(bearer) = creds.authorization.and_then(bearer_token) {
        return token::looks_like_token(bearer).then(|| format!("b{}", token::hash(bearer)));
    }
    let value = cookie::session_value(creds.cookies.iter().copied())?;
    token::looks_like_token(value).then(|| format!("c{}", token::hash(value)))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(header: &[u8]) -> Option<&str> {
    let text = trim_ows_str(std::str::from_utf8(header).ok()?);
    let (scheme, rest) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| trim_ows_str(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        // Only spaces and tabs surround HTTP tokens, never Unicode spaces.
        assert_eq!(
            bearer_token("Bearer abc\u{a0}".as_bytes()),
            Some("abc\u{a0}")
        );
    }
}

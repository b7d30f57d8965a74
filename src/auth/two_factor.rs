//! Two-factor login: enrolment (setup, then enable with a first code), the login
//! ticket between a right password and the code, recovery codes, and turning it
//! off. See docs/http-api.md, Two-factor login.
//!
//! Invariants: the TOTP secret is only stored sealed with the instance key, bound
//! to its user; a code's 30-second step is spent once per user (replay refused);
//! recovery codes and tickets are only stored hashed and are single-use; every
//! wrong code counts toward the failed-login limit and the account's own limit
//! on wrong codes (`login_limit::CODE_LIMIT`, across all addresses), and a ticket
//! dies after `TICKET_MAX_FAILURES` wrong codes or `TICKET_TTL_S` seconds.

use crate::store::sql::Conn;

use super::accounts::{self, AccountError, LoggedIn};
use super::{login_limit, password, token, totp};
use crate::coord::Backend;
use crate::secrets::{SecretError, SecretKey};
use crate::store::{self, sessions, tokens, two_factor as stored, users, StoreError};

/// The issuer authenticator apps show next to the account.
pub const ISSUER: &str = "Blitz";
pub const RECOVERY_CODES: usize = 10;
pub const TICKET_TTL_S: i64 = 300;
/// Fewer than the failed-login limit (5 a minute), so a ticket dies before that
/// limit is what stops its guesses.
pub const TICKET_MAX_FAILURES: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error("Two-factor login is already on")]
    AlreadyOn,
    #[error("Two-factor login is off")]
    NotOn,
    /// Enable without a setup first.
    #[error("No two-factor setup in progress")]
    NotPending,
    /// A wrong code from a logged-in user (enable, disable): an input error.
    #[error("Invalid code")]
    InvalidCode,
    #[error("Password is incorrect")]
    WrongPassword,
    /// A wrong code at login.
    #[error("Invalid two-factor code")]
    LoginCode,
    /// Unknown, expired, used or burnt ticket: the password step must be redone.
    #[error("Login ticket invalid or expired; log in again")]
    LoginTicket,
    /// A page form posted with a bearer token instead of a session.
    #[error("Two-factor login can only be changed from a logged-in session")]
    NeedsSession,
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<StoreError> for TwoFactorError {
    fn from(e: StoreError) -> Self {
        TwoFactorError::Account(e.into())
    }
}

impl From<crate::store::SqlError> for TwoFactorError {
    fn from(e: crate::store::SqlError) -> Self {
        TwoFactorError::Account(e.into())
    }
}

impl From<SecretError> for TwoFactorError {
    fn from(e: SecretError) -> Self {
        TwoFactorError::Account(AccountError::Internal(e.to_string()))
    }
}

/// What an authenticator app needs: the base32 secret and the `otpauth://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

fn context(user_id: i64) -> String {
    format!("user:{user_id}:totp_secret")
}

fn enrolment(email: &str, secret: String) -> Enrolment {
    Enrolment {
        otpauth_uri: totp::otpauth_uri(ISSUER, email, &secret),
        secret,
    }
}

/// A new pending secret (replacing an earlier pending one); the active state is
/// unchanged until `enable` sees a code from it.
pub fn setup(
    conn: &mut Conn,
    key: &SecretKey,
    user: &users::User,
) -> Result<Enrolment, TwoFactorError> {
    let tx = conn.transaction_immediate()?;
    if stored::get(&tx, user.id)?.enabled() {
        return Err(TwoFactorError::AlreadyOn);
    }
    let secret = totp::new_secret();
    stored::set_pending(
        &tx,
        user.id,
        &key.seal(&secret, &context(user.id)),
        store::now(),
    )?;
    tx.commit()?;
    Ok(enrolment(&user.email, secret))
}

/// The setup waiting for its first code, if any (for the account page's QR code).
pub fn pending(
    conn: &Conn,
    key: &SecretKey,
    user: &users::User,
) -> Result<Option<Enrolment>, TwoFactorError> {
    let s = stored::get(conn, user.id)?;
    match s.pending {
        Some(sealed) if !s.enabled() => {
            let secret = key.open(&sealed, &context(user.id))?;
            Ok(Some(enrolment(&user.email, secret)))
        }
        _ => Ok(None),
    }
}

/// Unused recovery codes left (for the account page).
pub fn recovery_left(conn: &Conn, user_id: i64) -> Result<i64, TwoFactorError> {
    Ok(stored::recovery_left(conn, user_id)?)
}

/// Turns the pending secret on if `code` is current for it; returns the recovery
/// codes, in plaintext only here (they are stored hashed).
///
/// Every other session and every API token of the user is revoked with it: they
/// were won with the password alone, and an account that shows two-factor login
/// on (which `ADMIN_REQUIRE_2FA` trusts) must not keep such credentials. The
/// enabling session (`keep_session`) has just shown a code and stays.
pub fn enable(
    conn: &mut Conn,
    key: &SecretKey,
    user_id: i64,
    code: &str,
    keep_session: i64,
) -> Result<Vec<String>, TwoFactorError> {
    let tx = conn.transaction_immediate()?;
    let s = stored::get(&tx, user_id)?;
    if s.enabled() {
        return Err(TwoFactorError::AlreadyOn);
    }
    let sealed = s.pending.ok_or(TwoFactorError::NotPending)?;
    let secret = secret_bytes(key, user_id, &sealed)?;
    let now = store::now();
    let step =
        totp::matching_step(&secret, &compact(code), now).ok_or(TwoFactorError::InvalidCode)?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(user_id, c)).collect();
    if !stored::enable(&tx, user_id, step, &hashes, now)? {
        return Err(TwoFactorError::NotPending);
    }
    sessions::revoke_others(&tx, user_id, Some(keep_session), now)?;
    tokens::revoke_all(&tx, user_id)?;
    tx.commit()?;
    Ok(codes)
}

/// Turns two-factor login off by an operator (the user lost their authenticator
/// and recovery codes): forgets the secret, the recovery codes and the login
/// tickets, and ends every session of the user, which were won with the factor
/// now gone. False when the user had no two-factor login (nothing changes then).
pub fn reset(conn: &mut Conn, user_id: i64) -> Result<bool, TwoFactorError> {
    let tx = conn.transaction_immediate()?;
    let s = stored::get(&tx, user_id)?;
    if s.secret.is_none() && s.pending.is_none() {
        return Ok(false);
    }
    stored::disable(&tx, user_id)?;
    sessions::revoke_others(&tx, user_id, None, store::now())?;
    tx.commit()?;
    Ok(true)
}

/// Turns two-factor login off; needs the password and a code (TOTP or recovery).
/// Wrong answers count toward the failed-login limit like a login's.
pub fn disable(
    conn: &mut Conn,
    limiter: &dyn Backend,
    key: &SecretKey,
    user: &users::User,
    pass: &str,
    code: &str,
    client_ip: &str,
) -> Result<(), TwoFactorError> {
    if !stored::get(conn, user.id)?.enabled() {
        return Err(TwoFactorError::NotOn);
    }
    let ip = crate::coord::ip_key(client_ip);
    let attempt = login_limit::begin(limiter, &user.email, &ip)
        .map_err(|retry_after_s| AccountError::TooManyAttempts { retry_after_s })?;
    if !password::verify(pass, &user.password_hash) {
        return Err(TwoFactorError::WrongPassword);
    }
    let code_attempt = match login_limit::begin_code(limiter, user.id) {
        Ok(a) => a,
        Err(retry_after_s) => {
            attempt.not_failed(limiter);
            return Err(AccountError::TooManyAttempts { retry_after_s }.into());
        }
    };
    let tx = conn.transaction_immediate()?;
    if !spend_code(&tx, key, user.id, code, store::now())? {
        return Err(TwoFactorError::InvalidCode);
    }
    stored::disable(&tx, user.id)?;
    tx.commit()?;
    code_attempt.right(limiter);
    attempt.succeeded(limiter);
    Ok(())
}

/// The ticket a right password earns a two-factor user: what `verify_login` takes
/// with the code. Stored hashed, valid `TICKET_TTL_S` seconds.
pub fn begin_login(conn: &Conn, user_id: i64) -> Result<String, StoreError> {
    let ticket = token::random_token();
    let now = store::now();
    stored::create_ticket(
        conn,
        &token::hash(&ticket),
        user_id,
        now,
        now + TICKET_TTL_S,
    )?;
    Ok(ticket)
}

/// The second step of a login: a live ticket and a right code start the session.
/// A wrong code counts against the ticket and the failed-login limit.
pub fn verify_login(
    conn: &mut Conn,
    limiter: &dyn Backend,
    key: &SecretKey,
    ticket: &str,
    code: &str,
    client_ip: &str,
) -> Result<LoggedIn, TwoFactorError> {
    if !token::looks_like_token(ticket) {
        return Err(TwoFactorError::LoginTicket);
    }
    let hash = token::hash(ticket);
    let now = store::now();
    let found = stored::live_ticket(conn, &hash, now, TICKET_MAX_FAILURES)?
        .ok_or(TwoFactorError::LoginTicket)?;
    let user = users::by_id(conn, found.user_id)?.ok_or(TwoFactorError::LoginTicket)?;
    let ip = crate::coord::ip_key(client_ip);
    let attempt = login_limit::begin(limiter, &user.email, &ip)
        .map_err(|retry_after_s| AccountError::TooManyAttempts { retry_after_s })?;
    let code_attempt = match login_limit::begin_code(limiter, user.id) {
        Ok(a) => a,
        Err(retry_after_s) => {
            attempt.not_failed(limiter);
            return Err(AccountError::TooManyAttempts { retry_after_s }.into());
        }
    };
    // One write transaction: the ticket is re-read inside it, so two requests with
    // the same ticket cannot both finish, nor both miss a failure.
    let tx = conn.transaction_immediate()?;
    if stored::live_ticket(&tx, &hash, now, TICKET_MAX_FAILURES)? != Some(found) {
        return Err(TwoFactorError::LoginTicket);
    }
    if !spend_code(&tx, key, user.id, code, now)? {
        stored::ticket_failed(&tx, found.id)?;
        tx.commit()?;
        return Err(TwoFactorError::LoginCode);
    }
    stored::use_ticket(&tx, found.id, now)?;
    tx.commit()?;
    code_attempt.right(limiter);
    attempt.succeeded(limiter);
    // The account may have changed in the minutes since the password step.
    if user.disabled {
        return Err(AccountError::Disabled.into());
    }
    if !user.verified {
        return Err(AccountError::NotVerified.into());
    }
    Ok(accounts::start_session(conn, user)?)
}

/// Spends `code` if it is a TOTP code of a step newer than the last one used, or
/// an unused recovery code. False for anything else, and when 2FA is off.
fn spend_code(
    conn: &Conn,
    key: &SecretKey,
    user_id: i64,
    code: &str,
    now: i64,
) -> Result<bool, TwoFactorError> {
    let Some(sealed) = stored::get(conn, user_id)?.secret else {
        return Ok(false);
    };
    let code = compact(code);
    if code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        let secret = secret_bytes(key, user_id, &sealed)?;
        return match totp::matching_step(&secret, &code, now) {
            Some(step) => Ok(stored::use_step(conn, user_id, step)?),
            None => Ok(false),
        };
    }
    // Ours are 16 characters; anything much longer is not worth a hash.
    if code.is_empty() || code.len() > 64 {
        return Ok(false);
    }
    Ok(stored::use_recovery(
        conn,
        user_id,
        &recovery_hash(user_id, &code),
        now,
    )?)
}

fn secret_bytes(key: &SecretKey, user_id: i64, sealed: &str) -> Result<Vec<u8>, TwoFactorError> {
    let b32 = key.open(sealed, &context(user_id))?;
    totp::decode_secret(&b32)
        .ok_or_else(|| AccountError::Internal("stored TOTP secret is not base32".into()).into())
}

/// The code as typed, without the spaces and dashes people add or copy along,
/// lower-case (recovery codes are shown lower-case).
fn compact(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// 80 random bits as four groups of four base32 characters: `abcd-efgh-ijkl-mnop`.
fn new_recovery_code() -> String {
    let raw = data_encoding::BASE32_NOPAD
        .encode(&token::random_bytes::<10>())
        .to_lowercase();
    let groups: Vec<&str> = [0, 4, 8, 12].iter().map(|&i| &raw[i..i + 4]).collect();
    groups.join("-")
}

/// How a recovery code is stored: SHA-256 over the user id and the compact code.
/// 80 random bits leave nothing to brute-force, and the id keeps one user's
/// hashes from matching another's.
fn recovery_hash(user_id: i64, code: &str) -> String {
    token::hash(&format!("{user_id}:{}", compact(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_random_grouped_and_hashed_as_typed() {
        let a = new_recovery_code();
        assert_eq!(a.len(), 19, "{a}");
        assert_eq!(a.matches('-').count(), 3, "{a}");
        assert_ne!(a, new_recovery_code());
        let typed = format!(" {} ", a.to_uppercase().replace('-', " "));
        assert_eq!(recovery_hash(7, &typed), recovery_hash(7, &a));
        assert_ne!(recovery_hash(8, &a), recovery_hash(7, &a));
        assert!(!recovery_hash(7, &a).contains(&a.replace('-', "")));
    }
}

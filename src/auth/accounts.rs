//! The account operations, independent of HTTP: each takes a connection and
//! plain inputs and returns a typed outcome; `crate::http` maps them to responses.

use std::collections::BTreeMap;

use crate::store::sql::Conn;

use super::login_limit;
use super::{csrf, normalize_email, password, token};
use crate::coord::Backend;
use crate::mail::compose::{self, Composed};
use crate::mail::sealing;
use crate::secrets::SecretKey;
use crate::store::{self, mail_queue, resets, sessions, tokens, two_factor, users, StoreError};

pub const VERIFY_TTL_S: i64 = 24 * 3600;
pub const RESET_TTL_S: i64 = 3600;
/// At most one reset mail per account in this many seconds.
pub const RESET_MAIL_INTERVAL_S: i64 = 60;
pub const SESSION_TTL_S: i64 = super::cookie::MAX_AGE_S;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// 400 with per-field messages.
    #[error("invalid input")]
    Invalid(BTreeMap<&'static str, String>),
    #[error("e-mail already registered")]
    EmailTaken,
    /// Unknown e-mail and wrong password alike.
    #[error("Invalid email or password")]
    BadCredentials,
    #[error("Email not verified")]
    NotVerified,
    #[error("Account disabled")]
    Disabled,
    #[error("too many failed logins")]
    TooManyAttempts { retry_after_s: u64 },
    #[error("Invalid or expired token")]
    InvalidToken,
    #[error("Current password is incorrect")]
    WrongPassword,
    #[error("not found")]
    NotFound,
    /// The user already holds `TOKENS_PER_USER` API tokens.
    #[error("too many API tokens")]
    TooManyTokens,
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

impl From<crate::store::SqlError> for AccountError {
    fn from(e: crate::store::SqlError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

impl From<password::HashError> for AccountError {
    fn from(e: password::HashError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

fn invalid(field: &'static str, msg: &str) -> AccountError {
    AccountError::Invalid(BTreeMap::from([(field, msg.to_string())]))
}

fn email_field(raw: &str) -> Result<String, AccountError> {
    normalize_email(raw).ok_or_else(|| invalid("email", "must be a valid e-mail address"))
}

fn new_password(field: &'static str, raw: &str) -> Result<String, AccountError> {
    password::check_new(raw).map_err(|m| invalid(field, m))?;
    Ok(password::hash(raw)?)
}

/// Where mailed links point and the key that seals queued mail.
pub struct Mailing<'a> {
    pub public_url: &'a str,
    pub key: &'a SecretKey,
}

/// Creates an unverified account and queues its verification mail in the same
/// transaction: once this returns, the mail will be delivered (or retried).
pub fn register(
    conn: &mut Conn,
    email: &str,
    pass: &str,
    mailing: &Mailing<'_>,
) -> Result<i64, AccountError> {
    // Both fields are checked before failing, so the client sees every problem.
    let (email, hash) = match (email_field(email), new_password("password", pass)) {
        (Ok(e), Ok(h)) => (e, h),
        (Err(AccountError::Invalid(mut a)), Err(AccountError::Invalid(b))) => {
            a.extend(b);
            return Err(AccountError::Invalid(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let verify = token::random_token();
    let now = store::now();
    let tx = conn.transaction_immediate()?;
    let new = users::NewUser {
        email: &email,
        password_hash: &hash,
        is_admin: false,
        verification: Some((&token::hash(&verify), now + VERIFY_TTL_S)),
    };
    let id = users::create(&tx, &new, now).map_err(|e| match e {
        StoreError::Conflict => AccountError::EmailTaken,
        e => e.into(),
    })?;
    let mail = compose::verification(mailing.public_url, &verify);
    queue(&tx, mailing.key, &email, mail, now)?;
    tx.commit()?;
    Ok(id)
}

/// Queues a mail, its body sealed: the one-time link never reaches the disk
/// readable.
fn queue(
    conn: &Conn,
    key: &SecretKey,
    to: &str,
    mail: Composed,
    now: i64,
) -> Result<(), StoreError> {
    let sealed = sealing::seal_body(key, to, &mail.body);
    mail_queue::enqueue(conn, to, mail.subject, &sealed, now).map(|_| ())
}

/// Uses a verification token (single use, 24 h).
pub fn verify(conn: &Conn, raw_token: &str) -> Result<(), AccountError> {
    let ok = token::looks_like_token(raw_token)
        && users::verify_by_token(conn, &token::hash(raw_token), store::now())?;
    ok.then_some(()).ok_or(AccountError::InvalidToken)
}

pub struct LoggedIn {
    /// The cookie value; only its hash is stored.
    pub cookie: String,
    pub csrf_token: String,
    pub user: users::User,
}

/// What a right password leads to: a session, or for a two-factor user the ticket
/// to send with the code (`two_factor::verify_login`).
pub enum LoginStep {
    Done(LoggedIn),
    SecondFactor { ticket: String },
}

/// Checks the limiter, then the password, then the account state, in that order:
/// an unverified or disabled account is only revealed to whoever knows its password.
pub fn login(
    conn: &mut Conn,
    limiter: &dyn Backend,
    email: &str,
    pass: &str,
    client_ip: &str,
) -> Result<LoginStep, AccountError> {
    // Not an address: still limited, under a bounded key (the body may be large).
    let email = normalize_email(email).unwrap_or_else(|| {
        email
            .trim()
            .chars()
            .take(254)
            .collect::<String>()
            .to_lowercase()
    });
    let ip = crate::coord::ip_key(client_ip);
    let attempt = login_limit::begin(limiter, &email, &ip)
        .map_err(|retry_after_s| AccountError::TooManyAttempts { retry_after_s })?;
    let user = users::by_email(conn, &email)?;
    let good = match &user {
        Some(u) => password::verify(pass, &u.password_hash),
        None => {
            password::verify_dummy(pass);
            false
        }
    };
    let user = match user {
        Some(u) if good => u,
        // The attempt keeps its places in the windows: a failure.
        _ => return Err(AccountError::BadCredentials),
    };
    if user.two_factor {
        // Not a failure, but the e-mail's failures stay until the code is right:
        // the password alone must not reset the count that wrong codes add to.
        attempt.first_factor_passed(limiter);
    } else {
        attempt.succeeded(limiter);
    }
    if !user.verified {
        return Err(AccountError::NotVerified);
    }
    if user.disabled {
        return Err(AccountError::Disabled);
    }
    if user.two_factor {
        let ticket = super::two_factor::begin_login(conn, user.id)?;
        return Ok(LoginStep::SecondFactor { ticket });
    }
    start_session(conn, user).map(LoginStep::Done)
}

pub(crate) fn start_session(conn: &Conn, user: users::User) -> Result<LoggedIn, AccountError> {
    let cookie = token::random_token();
    let secret = csrf::new_secret();
    let now = store::now();
    sessions::create(
        conn,
        &token::hash(&cookie),
        &secret,
        user.id,
        now,
        now + SESSION_TTL_S,
    )?;
    Ok(LoggedIn {
        cookie,
        csrf_token: csrf::masked(&secret),
        user,
    })
}

pub fn logout(conn: &Conn, session_id: i64) -> Result<(), AccountError> {
    Ok(sessions::revoke(conn, session_id, store::now())?)
}

/// What a password change leaves valid besides the session that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiTokens {
    /// Every API token of the user dies with the old password (the default: a
    /// leaked password may have minted them).
    Revoke,
    /// The caller asked to keep them (`"keep_tokens": true`).
    Keep,
}

/// A password change as asked: the current password, the new one, and what stays
/// valid besides the session that asked for it.
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub keep_session: Option<i64>,
    pub api_tokens: ApiTokens,
}

/// Changes the password and revokes every other session of the user (the current
/// one, if the request came with a session, stays valid) and, unless kept, every
/// API token.
///
/// A wrong current password counts as a failed login of the account from the
/// client's address (`login_limit`): a leaked session or token must not be able
/// to try passwords without limit.
pub fn change_password(
    conn: &mut Conn,
    limiter: &dyn Backend,
    client_ip: &str,
    user: &users::User,
    change: &PasswordChange<'_>,
) -> Result<(), AccountError> {
    let ip = crate::coord::ip_key(client_ip);
    let attempt = login_limit::begin(limiter, &user.email, &ip)
        .map_err(|retry_after_s| AccountError::TooManyAttempts { retry_after_s })?;
    if !password::verify(change.current, &user.password_hash) {
        return Err(AccountError::WrongPassword);
    }
    // Not a failure; earlier ones stay counted for their minute.
    attempt.not_failed(limiter);
    let hash = new_password("new_password", change.new)?;
    let tx = conn.transaction_immediate()?;
    users::set_password(&tx, user.id, &hash)?;
    sessions::revoke_others(&tx, user.id, change.keep_session, store::now())?;
    if change.api_tokens == ApiTokens::Revoke {
        tokens::revoke_all(&tx, user.id)?;
    }
    resets::revoke_all(&tx, user.id, store::now())?;
    two_factor::delete_tickets(&tx, user.id)?;
    tx.commit()?;
    Ok(())
}

/// Queues a reset mail if the account exists; says nothing either way.
pub fn forgot(conn: &mut Conn, email: &str, mailing: &Mailing<'_>) -> Result<(), AccountError> {
    let Some(email) = normalize_email(email) else {
        return Ok(());
    };
    let Some(user) = users::by_email(conn, &email)? else {
        return Ok(());
    };
    if user.disabled {
        return Ok(());
    }
    let now = store::now();
    // One reset mail per account per interval: the endpoint is anonymous, so without
    // this anyone could flood a mailbox.
    if resets::created_since(conn, user.id, now - RESET_MAIL_INTERVAL_S)? {
        return Ok(());
    }
    let reset = token::random_token();
    let tx = conn.transaction()?;
    resets::create(&tx, &token::hash(&reset), user.id, now, now + RESET_TTL_S)?;
    let mail = compose::password_reset(mailing.public_url, &reset);
    queue(&tx, mailing.key, &email, mail, now)?;
    tx.commit()?;
    Ok(())
}

/// Sets a new password with a reset token (single use, 1 h). The link reached the
/// mailbox, so the address is verified too; every session and every API token is
/// revoked (whoever asked for the reset may not be the only one who knew the old
/// password).
pub fn reset(conn: &mut Conn, raw_token: &str, new: &str) -> Result<(), AccountError> {
    let hash = new_password("new_password", new)?;
    if !token::looks_like_token(raw_token) {
        return Err(AccountError::InvalidToken);
    }
    let now = store::now();
    let tx = conn.transaction_immediate()?;
    let user_id =
        resets::consume(&tx, &token::hash(raw_token), now)?.ok_or(AccountError::InvalidToken)?;
    users::set_password(&tx, user_id, &hash)?;
    users::set_verified(&tx, user_id, true, now)?;
    sessions::revoke_others(&tx, user_id, None, now)?;
    tokens::revoke_all(&tx, user_id)?;
    // Any other reset link mailed earlier dies with this one, and so do login
    // tickets won with the old password.
    resets::revoke_all(&tx, user_id, now)?;
    two_factor::delete_tickets(&tx, user_id)?;
    tx.commit()?;
    Ok(())
}

/// Whether a reset link is still usable (for the reset page).
pub fn reset_link_valid(conn: &Conn, raw_token: &str) -> Result<bool, AccountError> {
    Ok(token::looks_like_token(raw_token)
        && resets::is_valid(conn, &token::hash(raw_token), store::now())?)
}

pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub token: String,
}

pub const TOKEN_NAME_MAX: usize = 100;
/// Active API tokens one user may hold: enough for every script, and a bound on
/// what the token list and the settings page show.
pub const TOKENS_PER_USER: i64 = 100;

/// Mints a token unless the user already holds `TOKENS_PER_USER` (counted and
/// inserted in one write transaction, so parallel requests cannot pass the limit).
pub fn create_token(conn: &mut Conn, user_id: i64, name: &str) -> Result<NewToken, AccountError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > TOKEN_NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(invalid("name", "must be 1-100 printable characters"));
    }
    let token = token::new_api_token();
    let tx = conn.transaction_immediate()?;
    if tokens::count(&tx, user_id)? >= TOKENS_PER_USER {
        return Err(AccountError::TooManyTokens);
    }
    let id = tokens::create(&tx, &token::hash(&token), name, user_id, store::now())?;
    tx.commit()?;
    Ok(NewToken {
        id,
        name: name.to_string(),
        token,
    })
}

pub fn delete_token(conn: &Conn, user_id: i64, id: i64) -> Result<(), AccountError> {
    tokens::delete(conn, user_id, id)?
        .then_some(())
        .ok_or(AccountError::NotFound)
}

/// Creates a verified account (CLI and admin seeding).
pub fn create_verified(
    conn: &Conn,
    email: &str,
    pass: &str,
    is_admin: bool,
) -> Result<i64, AccountError> {
    let email = email_field(email)?;
    let hash = new_password("password", pass)?;
    let new = users::NewUser {
        email: &email,
        password_hash: &hash,
        is_admin,
        verification: None,
    };
    users::create(conn, &new, store::now()).map_err(|e| match e {
        StoreError::Conflict => AccountError::EmailTaken,
        e => e.into(),
    })
}

/// Sets a password directly (CLI, an operator's reset): revokes every session of
/// the account and, unless kept, every API token, like a reset by mail.
pub fn set_password(
    conn: &mut Conn,
    email: &str,
    pass: &str,
    api_tokens: ApiTokens,
) -> Result<(), AccountError> {
    let email = email_field(email)?;
    let hash = new_password("password", pass)?;
    let tx = conn.transaction_immediate()?;
    let user = users::by_email(&tx, &email)?.ok_or(AccountError::NotFound)?;
    users::set_password(&tx, user.id, &hash)?;
    sessions::revoke_others(&tx, user.id, None, store::now())?;
    resets::revoke_all(&tx, user.id, store::now())?;
    two_factor::delete_tickets(&tx, user.id)?;
    if api_tokens == ApiTokens::Revoke {
        tokens::revoke_all(&tx, user.id)?;
    }
    tx.commit()?;
    Ok(())
}

/// Property tests: whatever strings reach the account operations (the JSON fields
/// of the account endpoints), the outcome is a documented refusal or success,
/// never an internal error (a 500).
#[cfg(test)]
mod properties {
    use blitz_master::Scoreboard;
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;
    use crate::coord::local::{Layout, LocalBackend};

    struct World {
        _dir: tempfile::TempDir,
        _sb: Scoreboard,
        conn: Conn,
        limiter: LocalBackend,
        key: SecretKey,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _) = store::open_migrated(&dir.path().join("db")).unwrap();
        let layout = Layout::new(&Config::for_tests().rate_limits, 5, 20);
        let sb = Scoreboard::create(layout.region_bytes()).unwrap();
        layout.store(&sb).unwrap();
        let limiter = LocalBackend::new(&sb, 30);
        World {
            _dir: dir,
            _sb: sb,
            conn,
            limiter,
            key: SecretKey::derive(b"k"),
        }
    }

    fn not_internal<T>(r: Result<T, AccountError>) -> Result<(), TestCaseError> {
        match r {
            Err(AccountError::Internal(e)) => Err(TestCaseError::fail(e)),
            _ => Ok(()),
        }
    }

    proptest! {
        // Each case hashes a few passwords (tens of milliseconds each).
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn account_operations_never_fail_internally(
            email in prop_oneof![".{0,300}", "[a-z]{1,8}@[a-z]{1,8}\\.io"],
            password in ".{0,40}",
            token in ".{0,64}",
            name in ".{0,120}",
            ip in prop_oneof!["[0-9.:a-f]{0,40}", ".{0,20}"],
        ) {
            let mut w = world();
            let mailing = Mailing { public_url: "http://x", key: &w.key };
            not_internal(register(&mut w.conn, &email, &password, &mailing))?;
            not_internal(login(&mut w.conn, &w.limiter, &email, &password, &ip))?;
            not_internal(verify(&w.conn, &token))?;
            not_internal(forgot(&mut w.conn, &email, &mailing))?;
            not_internal(reset(&mut w.conn, &token, &password))?;
            not_internal(reset_link_valid(&w.conn, &token))?;
            let owner = users::NewUser {
                email: "owner@x.io",
                password_hash: "not a hash",
                is_admin: false,
                verification: None,
            };
            let owner = users::create(&w.conn, &owner, 1).unwrap();
            not_internal(create_token(&mut w.conn, owner, &name))?;
        }
    }
}

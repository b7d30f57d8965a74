//! The first admin: created by the master on start when no account has the
//! admin role. There is no built-in password: `ADMIN_PASSWORD` or a generated one,
//! which is logged exactly once, at creation.

use crate::store::sql::Conn;

use super::accounts::{self, AccountError};
use super::{normalize_email, password, token};
use crate::store::{self, sessions, users};

pub enum Seeded {
    /// An admin already existed; nothing changed.
    Existing,
    /// Created (or promoted) `email`; `generated` is the password if we made it up.
    Created {
        email: String,
        generated: Option<String>,
    },
}

pub fn ensure_admin(
    conn: &mut Conn,
    email: &str,
    configured_password: Option<&str>,
) -> Result<Seeded, AccountError> {
    if users::any_admin(conn)? {
        return Ok(Seeded::Existing);
    }
    let generated = configured_password.is_none().then(token::random_password);
    let pass = configured_password
        .or(generated.as_deref())
        .unwrap_or_default();
    let email = normalize_email(email).unwrap_or_else(|| email.to_lowercase());
    match users::by_email(conn, &email)? {
        None => {
            accounts::create_verified(conn, &email, pass, true)?;
        }
        // The named account exists without the role (an admin was demoted or the
        // address registered): make it the admin, with the configured password.
        Some(user) => {
            let hash = password::hash(pass)?;
            let tx = conn.transaction()?;
            users::set_password(&tx, user.id, &hash)?;
            users::set_admin(&tx, user.id, true)?;
            users::set_verified(&tx, user.id, true, store::now())?;
            users::set_disabled(&tx, user.id, false)?;
            sessions::revoke_others(&tx, user.id, None, store::now())?;
            tx.commit()?;
        }
    }
    Ok(Seeded::Created { email, generated })
}

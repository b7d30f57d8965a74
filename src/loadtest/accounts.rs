//! The simulated users' credentials: API tokens read from a file (one per line, as
//! `blitz token create` prints them), or made in the server's database for
//! `loadtest-<n>@loadtest.invalid` accounts (created once, verified, with one
//! fresh token per run; their earlier load-test tokens are removed).

use std::path::Path;

use crate::auth::{password, token};
use crate::store::{self, tokens, users};

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no tokens")]
    Empty(String),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Sql(#[from] crate::store::SqlError),
    #[error("cannot hash the load-test password: {0}")]
    Hash(String),
}

pub fn from_file(path: &Path) -> Result<Vec<String>, AccountsError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(AccountsError::Empty(path.display().to_string()));
    }
    Ok(tokens)
}

/// Makes `n` load-test accounts (as needed) and a token for each.
pub fn provision(database: &store::Engine, n: usize) -> Result<Vec<String>, AccountsError> {
    let (conn, _) = store::connect_migrated(database)?;
    // Nobody logs in as these users: one hash of a random password serves them all
    // (hashing is deliberately slow).
    let hash = password::hash(&token::random_password())
        .map_err(|e| AccountsError::Hash(e.to_string()))?;
    // Immediate: a deferred transaction that reads first and then writes gets
    // "database is locked" at once, without waiting, when the running server
    // (its bot runner) committed in between.
    let tx = conn.transaction_immediate()?;
    let now = store::now();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("loadtest-{i}@loadtest.invalid");
        let id = match users::by_email(&tx, &email)? {
            Some(u) => u.id,
            None => users::create(
                &tx,
                &users::NewUser {
                    email: &email,
                    password_hash: &hash,
                    is_admin: false,
                    verification: None,
                },
                now,
            )?,
        };
        tx.execute(
            "DELETE FROM api_tokens WHERE user_id = ?1 AND name = 'loadtest'",
            [id],
        )?;
        let t = token::new_api_token();
        tokens::create(&tx, &token::hash(&t), "loadtest", id, now)?;
        out.push(t);
    }
    tx.commit()?;
    Ok(out)
}

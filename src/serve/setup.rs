//! What the master does once, before forking: migrate the database, make sure an
//! admin exists, make sure the secrets key exists and seal mail that an older
//! release queued in plaintext. Every connection opened here
//! is closed again before the first fork.

use slog::{info, warn, Logger};

use crate::auth::admin_seed::{self, Seeded};
use crate::config::Config;
use crate::secrets::SecretKey;
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot open database: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot create the admin account: {0}")]
    Admin(#[from] crate::auth::AccountError),
    #[error("cannot set up the secrets key: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

pub fn prepare(config: &Config, log: &Logger) -> Result<(), SetupError> {
    let (mut conn, applied) = store::connect_migrated(&config.database)?;
    for name in applied {
        info!(log, "applied migration {name}");
    }
    let seeded = admin_seed::ensure_admin(
        &mut conn,
        &config.admin_email,
        config.admin_password.as_deref(),
    )?;
    // Environment defaults only where the database has no value yet. The
    // built-in defaults (off, no banner) are not stored, so an operator can still
    // set a default later while no admin has chosen a value.
    let now = store::now();
    if config.maintenance_mode_default {
        store::settings::set_default(&conn, store::settings::MAINTENANCE, "true", now)?;
    }
    if !config.broadcast_banner.is_empty() {
        let banner = &config.broadcast_banner;
        store::settings::set_default(&conn, store::settings::BANNER, banner, now)?;
    }
    // Generates `<instance dir>/secret_key` on first start when SECRET_KEY is unset.
    let key = SecretKey::resolve(config.secret_key.as_deref(), config.instance_dir())?;
    // Mail queued by an older release holds its link in plaintext.
    let upgraded = crate::mail::sealing::seal_stored(&mut conn, &key)?;
    drop(conn);
    match seeded {
        Seeded::Existing => {}
        Seeded::Created {
            email,
            generated: None,
        } => info!(log, "created admin account {email} with ADMIN_PASSWORD"),
        Seeded::Created {
            email,
            generated: Some(password),
        } => warn!(
            log,
            "created admin account {email} with generated password: {password} \
             (shown only this once; change it after logging in)"
        ),
    }
    if upgraded != crate::mail::sealing::Upgraded::default() {
        info!(log, "sealed queued mail of an older release";
            "sealed" => upgraded.sealed, "erased" => upgraded.erased);
    }
    Ok(())
}

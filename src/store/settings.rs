//! `settings`: instance-wide values that admins change at runtime (the
//! maintenance mode and banner), kept across restarts.

use crate::params;
use crate::store::sql::{Conn, OptionalExt};

use super::StoreError;

pub const MAINTENANCE: &str = "maintenance_enabled";
pub const BANNER: &str = "banner_message";

pub fn get(conn: &Conn, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn set(conn: &Conn, key: &str, value: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
    )?
    .execute(params![key, value, now])?;
    Ok(())
}

/// Sets `key` only if the database has no value for it yet (environment defaults
/// never override what an admin chose).
pub fn set_default(conn: &Conn, key: &str, value: &str, now: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![key, value, now])?;
    Ok(n == 1)
}

/// The maintenance flag and the banner message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    pub maintenance: bool,
    pub banner: String,
}

pub fn notice(conn: &Conn) -> Result<Notice, StoreError> {
    Ok(Notice {
        maintenance: get(conn, MAINTENANCE)?.as_deref() == Some("true"),
        banner: get(conn, BANNER)?.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_once_and_values_persist() {
        let c = crate::store::testing::migrated();
        assert_eq!(notice(&c).unwrap(), Notice::default());
        assert!(set_default(&c, MAINTENANCE, "true", 1).unwrap());
        set(&c, MAINTENANCE, "false", 2).unwrap();
        assert!(
            !set_default(&c, MAINTENANCE, "true", 3).unwrap(),
            "the admin's choice stays"
        );
        set(&c, BANNER, "hello", 4).unwrap();
        assert_eq!(
            notice(&c).unwrap(),
            Notice {
                maintenance: false,
                banner: "hello".into()
            }
        );
    }
}

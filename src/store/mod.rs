//! Storage (C8): SQLite through per-process r2d2 pools created after fork.
//!
//! Each table is read and written through exactly one module here, with plain Rust
//! types in and out; handlers never write SQL.

pub mod admin;
pub mod bots;
mod db;
pub mod mail_queue;
pub mod migrate;
pub mod resets;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod trades;
pub mod users;

pub use db::{open, open_migrated, Db, StoreError};

/// Unix seconds, the unit of every `*_at` column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix milliseconds, for the `*_ms` columns.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! Storage (C8): SQLite through per-process r2d2 pools created after fork.

mod db;

pub use db::{prepare, Db, StoreError};

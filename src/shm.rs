//! The application region of the master's shared segment: one `#[repr(C)]` struct
//! whose fields are the fixed tables (their layout and size checked by the
//! compiler), followed by the rate-limit tables, whose size depends on the
//! configured limits (`coord::local::Layout`).
//!
//! Invariants: the master maps the region zeroed before forking and every field is
//! atomics only, so zero is a valid value of each and every process may read and
//! write it concurrently. This module is a leaf: the modules that give the tables
//! their meaning import it, never the other way round — except for the price
//! board, whose table type (`market::board::Table`, atomics only as well) keeps its
//! slot layout private to its module.

use std::sync::atomic::AtomicU64;

use blitz_master::Scoreboard;

/// Cells of the per-user operation guard table (`coord::guards`): 512 KiB, whose
/// pages are touched only as users act.
pub const GUARD_CELLS: usize = 65_536;
/// Words of the rate-limit layout record (`coord::local::Layout`).
pub const LIMITS_HEADER_WORDS: usize = 32;
/// Bytes reserved for `Region`; the rate-limit tables start here.
pub const FIXED_BYTES: usize = 1024 * 1024;

/// What the bot runner publishes for `/readyz` (`runner::stats` reads and writes it).
#[repr(C)]
pub struct RunnerStats {
    /// Bots the runner runs.
    pub running: AtomicU64,
    /// Bots the database says should run, at the last check.
    pub db_running: AtomicU64,
    /// When that check was made (Unix ms).
    pub checked_ms: AtomicU64,
    /// While a new runner waits for the old one to stop (binary upgrade), when it
    /// last said so (Unix ms).
    pub standby_ms: AtomicU64,
}

#[repr(C)]
pub struct Region {
    pub runner: RunnerStats,
    /// Moves when an admin changes maintenance or the banner (`http::notice`).
    pub notice_version: AtomicU64,
    /// Until when Redis is considered down, instance-wide (`coord::breaker`).
    pub redis_down_until: AtomicU64,
    /// Moves when any credential may have been revoked (`auth::cache`).
    pub auth_epoch: AtomicU64,
    /// The per-user operation guards (`coord::guards`).
    pub guards: [AtomicU64; GUARD_CELLS],
    /// The rate-limit tables' shape, recorded by the master (`coord::local`).
    pub limits_header: [AtomicU64; LIMITS_HEADER_WORDS],
    /// The 128-bit key that places keys in the rate-limit tables, drawn by the
    /// master (`coord::local`).
    pub limits_hash_key: [AtomicU64; 2],
    /// The price board the market-data process fills (`market::board`).
    pub prices: crate::market::board::Table,
}

const _: () = assert!(std::mem::size_of::<Region>() <= FIXED_BYTES);
// The region is page aligned, so any field alignment up to a page holds.
const _: () = assert!(std::mem::align_of::<Region>() <= 4096);

/// The fixed tables of `sb`'s application region.
pub fn region(sb: &Scoreboard) -> &'static Region {
    let (base, len) = sb.app_region();
    assert!(
        std::mem::size_of::<Region>() <= len,
        "application region too small"
    );
    // SAFETY: the region is page aligned and at least `Region`'s size (checked);
    // `Region` is atomics only, valid when zeroed, and these bytes are its alone
    // (the rate-limit tables start at `FIXED_BYTES`). The mapping lives as long
    // as the process.
    unsafe { &*(base.as_ptr() as *const Region) }
}

/// `len` atomics at `offset` in the rate-limit part of `sb`'s application region.
///
/// # Safety
/// The bytes must be this table's alone (`offset` at or past `FIXED_BYTES`, tables
/// not overlapping) and used only through atomics.
pub unsafe fn table(sb: &Scoreboard, offset: usize, len: usize) -> &'static [AtomicU64] {
    let (base, region) = sb.app_region();
    assert!(offset >= FIXED_BYTES && offset + len * 8 <= region && offset.is_multiple_of(8));
    // SAFETY: per the function's contract; the mapping lives as long as the process.
    unsafe { std::slice::from_raw_parts(base.as_ptr().add(offset) as *const AtomicU64, len) }
}

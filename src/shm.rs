//! The layout of the application region of the master's shared segment: each
//! table's offset, in one place so that none overlaps another.

use blitz_master::Scoreboard;

/// The bot runner's published counts (`runner::stats`).
pub const RUNNER_STATS: usize = 0;
/// The maintenance/banner version (`http::notice`).
pub const NOTICE: usize = 64;
/// Whether Redis is considered down, instance-wide (`coord::breaker`).
pub const REDIS_STATE: usize = 72;
/// Credentials epoch: moves when any credential may have been revoked
/// (`auth::cache`).
pub const AUTH_EPOCH: usize = 80;
/// The per-user operation guards (`coord::guards`), 512 KiB (pages touched only
/// as users act).
pub const GUARDS: usize = 128;
/// The rate-limit tables' shape (`coord::local`), 256 bytes.
pub const LIMITS_HEADER: usize = GUARDS + 8 * crate::coord::guards::CELLS;
/// Bytes of the fixed tables above; the rate-limit tables follow, sized from the
/// configured limits (`coord::local::Layout`).
pub const FIXED_BYTES: usize = 1024 * 1024;
const _: () = assert!(LIMITS_HEADER + 256 <= FIXED_BYTES);

/// A `T` at `offset` in `sb`'s application region.
///
/// # Safety
/// `T` must be valid when zeroed and accessed only through atomics, its alignment
/// must divide `offset` (the region is page aligned), and no other table may use
/// the same bytes.
pub unsafe fn at<T>(sb: &Scoreboard, offset: usize) -> &'static T {
    let (base, len) = sb.app_region();
    assert!(
        offset + std::mem::size_of::<T>() <= len
            && offset.checked_rem(std::mem::align_of::<T>()) == Some(0)
    );
    // SAFETY: per the function's contract; the mapping lives as long as the process.
    unsafe { &*(base.as_ptr().add(offset) as *const T) }
}

/// `len` atomics at `offset` in `sb`'s application region.
///
/// # Safety
/// As for `at`: the bytes are this table's alone and used only through atomics.
pub unsafe fn words(
    sb: &Scoreboard,
    offset: usize,
    len: usize,
) -> &'static [std::sync::atomic::AtomicU64] {
    let (base, region) = sb.app_region();
    assert!(offset + len * 8 <= region && offset.checked_rem(8) == Some(0));
    // SAFETY: per the function's contract; the mapping lives as long as the process.
    unsafe {
        std::slice::from_raw_parts(
            base.as_ptr().add(offset) as *const std::sync::atomic::AtomicU64,
            len,
        )
    }
}

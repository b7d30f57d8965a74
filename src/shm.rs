//! The layout of the application region of the master's shared segment: each
//! table's offset, in one place so that none overlaps another.

use blitz_master::Scoreboard;

/// The bot runner's published counts (`runner::stats`).
pub const RUNNER_STATS: usize = 0;
/// The maintenance/banner version (`http::notice`).
pub const NOTICE: usize = 64;
/// The per-user operation guards (`http::guard_table`), 64 KiB.
pub const GUARDS: usize = 128;
/// First free byte for later tables.
pub const FREE: usize = GUARDS + 8 * crate::http::GUARD_CELLS;
const _: () = assert!(FREE <= crate::serve::APP_REGION_BYTES);

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

//! Resident memory of a child, for `--max-worker-memory`.

/// Resident set size in bytes, from `/proc/PID/statm` (second field, in pages).
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_rss_is_plausible() {
        let rss = super::rss_bytes(std::process::id() as i32).unwrap();
        assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
    }
}

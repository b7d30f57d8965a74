//! Private resident memory of a child, for `--max-worker-memory`.

/// Resident pages that are not file-backed or shared, in bytes, from
/// `/proc/PID/statm` (resident minus shared). The shared segments every process
/// maps (scoreboard, metrics) would otherwise count against every worker.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let mut fields = text.split_whitespace().skip(1);
    let resident: u64 = fields.next()?.parse().ok()?;
    let shared: u64 = fields.next()?.parse().ok()?;
    let pages = resident.saturating_sub(shared);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_rss_is_plausible() {
        let rss = super::rss_bytes(std::process::id() as i32).unwrap();
        assert!(rss > 0 && rss < 1 << 40, "{rss}");
    }
}

//! `process_*` metrics of every process of the instance, read from `/proc` at
//! scrape time (the scraping worker and its siblings run as the same user).

use std::fs;

/// One process's figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: f64,
    pub cpu_seconds: f64,
    pub open_fds: f64,
    pub start_time_seconds: f64,
}

/// Figures of `pid`, or `None` if it is gone.
pub fn stats(pid: i32) -> Option<ProcessStats> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // `fields[0]` is field 3 (state) of proc(5).
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let tick = clock_ticks();
    let open_fds = fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    Some(ProcessStats {
        resident_bytes: field(24)? * page_size(),
        cpu_seconds: (field(14)? + field(15)?) / tick,
        open_fds: open_fds as f64,
        start_time_seconds: boot_time() + field(22)? / tick,
    })
}

fn clock_ticks() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

fn page_size() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096.0, |p| p as f64)
}

/// Seconds since the epoch at boot (`btime` of /proc/stat, read once: the file is
/// long and the value never changes).
fn boot_time() -> f64 {
    static BOOT: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = stats(std::process::id() as i32).unwrap();
        assert!(s.resident_bytes > 1e6, "{s:?}");
        assert!(s.open_fds >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0);
        assert_eq!(stats(i32::MAX), None);
    }
}

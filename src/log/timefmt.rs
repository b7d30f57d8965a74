//! Wall-clock timestamps in the formats the logs and health endpoints use.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 UTC with millisecond precision and a `Z`, e.g. `2026-11-28T16:00:00.123Z`.
pub fn rfc3339_now() -> String {
    let t = OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Unix seconds as RFC 3339 UTC (`2026-11-28T16:00:00Z`), for stored timestamps.
pub fn rfc3339(unix_s: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Caches per-second renderings of the clock (RFC 3339 and the access log's
/// `[28/Nov/2026:16:00:00 +0000]`), so hot paths do not format dates per request.
#[derive(Default)]
pub struct SecondClock {
    second: u64,
    rfc3339: String,
    clf: String,
}

impl SecondClock {
    fn refresh(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now == self.second && !self.rfc3339.is_empty() {
            return;
        }
        self.second = now;
        let t =
            OffsetDateTime::from_unix_timestamp(now as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.rfc3339 = t.format(&Rfc3339).unwrap_or_default();
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        self.clf = format!(
            "[{:02}/{}/{}:{:02}:{:02}:{:02} +0000]",
            t.day(),
            MONTHS[t.month() as usize - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }

    /// `2026-11-28T16:00:00Z`
    pub fn rfc3339(&mut self) -> &str {
        self.refresh();
        &self.rfc3339
    }

    /// `[28/Nov/2026:16:00:00 +0000]`
    pub fn clf(&mut self) -> &str {
        self.refresh();
        &self.clf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_well_formed() {
        let s = rfc3339_now();
        assert!(s.ends_with('Z') && s.len() == 24, "{s}");
        let mut c = SecondClock::default();
        let r = c.rfc3339().to_string();
        assert!(r.ends_with('Z') && r.len() == 20, "{r}");
        let clf = c.clf();
        assert!(clf.starts_with('[') && clf.ends_with(" +0000]"), "{clf}");
    }
}

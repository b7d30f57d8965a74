//! Wall-clock timestamps in the formats the logs and health endpoints use.
//!
//! Invariant: every rendering is UTC with fixed-width fields (RFC 3339 with a `Z`,
//! the access log's `+0000`), so log lines sort and parse the same way whatever
//! the machine's time zone. A timestamp out of range renders as the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::DateTime;
use jiff::tz::Offset;
use jiff::Timestamp;

/// RFC 3339 UTC with millisecond precision and a `Z`, e.g. `2026-11-28T16:00:00.123Z`.
pub fn rfc3339_now() -> String {
    rfc3339_millis(Timestamp::now())
}

/// Unix seconds as RFC 3339 UTC (`2026-11-28T16:00:00Z`), for stored timestamps.
pub fn rfc3339(unix_s: i64) -> String {
    rfc3339_seconds(utc_seconds(unix_s))
}

/// The civil UTC time of `unix_s`; the epoch when it is out of jiff's range.
fn utc_seconds(unix_s: i64) -> DateTime {
    let t = Timestamp::from_second(unix_s).unwrap_or(Timestamp::UNIX_EPOCH);
    Offset::UTC.to_datetime(t)
}

fn rfc3339_millis(t: Timestamp) -> String {
    let t = Offset::UTC.to_datetime(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn rfc3339_seconds(t: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The access log's `[28/Nov/2026:16:00:00 +0000]`.
fn clf(t: DateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "[{:02}/{}/{}:{:02}:{:02}:{:02} +0000]",
        t.day(),
        MONTHS[t.month() as usize - 1],
        t.year(),
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
        self.set(now);
    }

    fn set(&mut self, unix_s: u64) {
        self.second = unix_s;
        let t = utc_seconds(i64::try_from(unix_s).unwrap_or(0));
        self.rfc3339 = rfc3339_seconds(t);
        self.clf = clf(t);
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

    /// The exact bytes, checked against `date -u`, so a change of date crate
    /// cannot change what the logs and APIs print.
    #[test]
    fn formats_are_exact() {
        let t = Timestamp::new(1_795_881_600, 123_987_654).unwrap();
        assert_eq!(rfc3339_millis(t), "2026-11-28T16:00:00.123Z");
        let t = Timestamp::new(951_782_400, 7_000_000).unwrap();
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(1_795_881_600), "2026-11-28T16:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00Z");

        let mut c = SecondClock::default();
        c.set(1_795_881_600);
        assert_eq!(c.rfc3339, "2026-11-28T16:00:00Z");
        assert_eq!(c.clf, "[28/Nov/2026:16:00:00 +0000]");
        c.set(951_782_405);
        assert_eq!(c.rfc3339, "2000-02-29T00:00:05Z");
        assert_eq!(c.clf, "[29/Feb/2000:00:00:05 +0000]");
    }
}

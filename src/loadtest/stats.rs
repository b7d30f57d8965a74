//! What the simulated users saw, per endpoint: latencies, statuses, failures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

#[derive(Default, Clone)]
pub struct Endpoint {
    /// Microseconds, one per answered request.
    pub latencies_us: Vec<u32>,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connect, write or read failed).
    pub transport_errors: u64,
}

impl Endpoint {
    pub fn record(&mut self, status: u16, took: Duration) {
        self.latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        *self.statuses.entry(status).or_default() += 1;
    }

    pub fn merge(&mut self, other: Endpoint) {
        self.latencies_us.extend(other.latencies_us);
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }
}

/// One row of the report.
#[derive(Serialize)]
pub struct Row {
    pub endpoint: String,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Answers that mean the request failed (5xx, and 4xx other than 409 and
    /// 429, which are the product's normal "not now" answers) plus requests without
    /// an answer.
    pub errors: u64,
}

/// Whether an answer means the request failed: a server error, or a refusal that
/// a well-configured run never sees (401 from a stale token, 404, 400 ...).
pub fn failed(status: u16) -> bool {
    status >= 500 || (status >= 400 && status != 409 && status != 429)
}

/// The `q`-quantile (nearest rank) of sorted values, in ms.
fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

pub fn row(name: &str, mut e: Endpoint, elapsed: Duration) -> Row {
    e.latencies_us.sort_unstable();
    let answered = e.latencies_us.len() as u64;
    let server_errors: u64 = e
        .statuses
        .iter()
        .filter(|(s, _)| failed(**s))
        .map(|(_, n)| n)
        .sum();
    let requests = answered + e.transport_errors;
    Row {
        endpoint: name.to_string(),
        requests,
        per_second: requests as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: quantile(&e.latencies_us, 0.50),
        p90_ms: quantile(&e.latencies_us, 0.90),
        p99_ms: quantile(&e.latencies_us, 0.99),
        max_ms: quantile(&e.latencies_us, 1.0),
        statuses: e.statuses,
        errors: server_errors + e.transport_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut e = Endpoint::default();
        for ms in 1..=100u64 {
            e.record(if ms == 100 { 503 } else { 200 }, Duration::from_millis(ms));
        }
        e.transport_errors = 2;
        let r = row("GET /x", e, Duration::from_secs(2));
        assert_eq!(
            (r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!((r.requests, r.errors), (102, 3));
        assert_eq!(r.per_second, 51.0);
        assert_eq!(r.statuses[&200], 99);
    }

    #[test]
    fn refusals_other_than_not_now_are_failures() {
        for (status, failed_) in [
            (200, false),
            (409, false),
            (429, false),
            (401, true),
            (404, true),
            (503, true),
        ] {
            assert_eq!(failed(status), failed_, "{status}");
        }
    }
}

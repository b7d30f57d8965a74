//! Tools of the exchange-scale benchmark (tests/exchange_scale.rs): the price path
//! it drives the fake with, a process's CPU time and memory from /proc, a
//! histogram's quantile from a Prometheus scrape, a nearest-rank percentile and
//! paced parallel calls (setting up a thousand accounts without flooding the fake).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

/// A deterministic price path: from `base` straight down to `low`, then a triangle
/// wave between `low` and `high` with `period` per round trip, at constant speed,
/// on the exchange's tick of 0.1. Going down first fills the ladders' legs that
/// every bot placed at `base`; each rise passes the take-profits.
#[derive(Clone, Copy, Debug)]
pub struct Wave {
    pub base: f64,
    pub low: f64,
    pub high: f64,
    pub period: Duration,
}

impl Wave {
    /// The price `t` after the path began.
    pub fn at(&self, t: Duration) -> Decimal {
        let span = self.high - self.low;
        let speed = 2.0 * span / self.period.as_secs_f64();
        let travelled = speed * t.as_secs_f64();
        let first = self.base - self.low;
        let price = if travelled < first {
            self.base - travelled
        } else {
            let s = travelled - first;
            let legs = (s / span).floor();
            let r = s - legs * span;
            if (legs as u64).is_multiple_of(2) {
                self.low + r
            } else {
                self.high - r
            }
        };
        Decimal::new((price * 10.0).round() as i64, 1)
    }
}

/// (utime + stime) in clock ticks, and VmRSS in kB, of `pid`.
pub fn cpu_ticks_and_rss_kb(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let after = &stat[stat.rfind(')').expect("comm ends with )") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    (ticks, rss)
}

pub fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .expect("CLK_TCK") as f64
}

/// Cumulative bucket counts by upper bound (`+Inf` as infinity) of every series of
/// histogram `family` in a Prometheus text scrape whose labels include `label`
/// (e.g. `exchange="bybit"`), summed over those series.
pub fn histogram_buckets(scrape: &str, family: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{family}_bucket{{");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in scrape.lines().filter(|l| l.starts_with(&prefix)) {
        let Some((labels, value)) = line[prefix.len()..].rsplit_once("} ") else {
            continue;
        };
        if !labels.contains(label) {
            continue;
        }
        let Some(le) = labels
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("le=\""))
            .map(|v| v.trim_end_matches('"'))
        else {
            continue;
        };
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().expect("le is a number")
        };
        let n: f64 = value.trim().parse().expect("bucket count is a number");
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += n;
    }
    let mut out: Vec<(f64, f64)> = by_le.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The `q` quantile of cumulative buckets as Prometheus' `histogram_quantile`
/// computes it: linear interpolation inside the bucket that holds rank
/// `q × count` (from 0 for the first bucket); a rank in `+Inf` answers the
/// largest finite bound. None without observations.
pub fn quantile_of_buckets(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            if count == below {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / (count - below));
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

/// Nearest-rank percentile `q` (0..=1) of `values`; None when empty.
pub fn percentile(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// `f(i)` for every `i < n` on `threads` threads, call `i` starting no earlier
/// than `i / per_second` after the first: a steady rate, as many users arriving
/// one after another would make. The answers, in order of `i`.
pub fn paced<T: Send>(
    n: usize,
    per_second: f64,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let begun = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let due = begun + Duration::from_secs_f64(i as f64 / per_second);
                // Pacing, not waiting for a condition: nothing to poll.
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let r = f(i);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every call ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wave_goes_down_first_then_swings() {
        let w = Wave {
            base: 100.0,
            low: 90.0,
            high: 110.0,
            period: Duration::from_secs(40),
        };
        // 1 per second: 10 s down, then 20 s up, 20 s down.
        let at = |s: u64| w.at(Duration::from_secs(s));
        assert_eq!(at(0), Decimal::new(1000, 1));
        assert_eq!(at(5), Decimal::new(950, 1));
        assert_eq!(at(10), Decimal::new(900, 1));
        assert_eq!(at(30), Decimal::new(1100, 1));
        assert_eq!(at(40), Decimal::new(1000, 1));
        assert_eq!(at(50), Decimal::new(900, 1));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let scrape = "x_bucket{exchange=\"bybit\",le=\"0.1\"} 50\n\
                      x_bucket{exchange=\"bybit\",le=\"0.2\"} 90\n\
                      x_bucket{exchange=\"bybit\",le=\"+Inf\"} 100\n\
                      x_bucket{exchange=\"bingx\",le=\"0.1\"} 7\n";
        let b = histogram_buckets(scrape, "x", "exchange=\"bybit\"");
        assert_eq!(b.len(), 3);
        assert_eq!(quantile_of_buckets(&b, 0.5), Some(0.1));
        let p70 = quantile_of_buckets(&b, 0.7).unwrap();
        assert!((p70 - 0.15).abs() < 1e-9, "{p70}");
        assert_eq!(quantile_of_buckets(&b, 0.99), Some(0.2));
        assert_eq!(quantile_of_buckets(&[], 0.99), None);
    }

    #[test]
    fn nearest_rank() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 0.99), Some(99));
        assert_eq!(percentile(&mut [], 0.99), None);
    }
}

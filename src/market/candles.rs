//! Candles (C15): the intervals the API offers, one candle, and the aggregation of
//! the paper exchange's one-minute buckets into longer intervals.
//!
//! Invariant: every list of candles here is oldest first, one candle per interval
//! start, and each candle's start is a multiple of its interval (UTC).

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::money;

/// A candle interval of `GET /api/markets/candles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

impl Interval {
    pub const ALL: [Interval; 6] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ];

    /// The API's name (`1m` … `1d`), which is also BingX's.
    pub fn name(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.name() == s)
    }

    pub fn millis(self) -> i64 {
        const MIN: i64 = 60_000;
        match self {
            Interval::M1 => MIN,
            Interval::M5 => 5 * MIN,
            Interval::M15 => 15 * MIN,
            Interval::H1 => 60 * MIN,
            Interval::H4 => 240 * MIN,
            Interval::D1 => 1440 * MIN,
        }
    }

    /// How long a cached copy is served before one process fetches it again: a
    /// short candle changes every few seconds on a chart, a daily one hardly
    /// (docs/http-api.md, Markets). `base_ms` is `CANDLES_REFRESH_MS`.
    pub fn refresh_ms(self, base_ms: u64) -> i64 {
        let factor = match self {
            Interval::M1 | Interval::M5 => 1,
            Interval::M15 => 3,
            Interval::H1 | Interval::H4 | Interval::D1 => 12,
        };
        i64::try_from(base_ms.saturating_mul(factor)).unwrap_or(i64::MAX)
    }
}

/// One candle: its start (Unix ms) and prices; volume in the base asset (0 for
/// paper, which records no trades).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub start_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

impl Candle {
    /// `[t_ms, open, high, low, close, volume]`, prices as JSON numbers.
    pub fn to_json(&self) -> Value {
        json!([
            self.start_ms,
            money::json(self.open),
            money::json(self.high),
            money::json(self.low),
            money::json(self.close),
            money::json(self.volume)
        ])
    }
}

/// The last `limit` candles of `all` (oldest first).
pub fn last(all: &[Candle], limit: usize) -> &[Candle] {
    &all[all.len().saturating_sub(limit)..]
}

/// `candles` sorted oldest first with one candle per start (an exchange that
/// sends newest first, or repeats the open candle, is put right).
pub fn in_order(mut candles: Vec<Candle>) -> Vec<Candle> {
    candles.sort_by_key(|c| c.start_ms);
    candles.dedup_by_key(|c| c.start_ms);
    candles
}

/// One-minute buckets (oldest first) merged into candles of `interval`: the first
/// open, the highest high, the lowest low, the last close of each period.
pub fn aggregate(minutes: &[Candle], interval: Interval) -> Vec<Candle> {
    let width = interval.millis();
    let mut out: Vec<Candle> = Vec::new();
    for m in minutes {
        let start = m.start_ms - m.start_ms.rem_euclid(width);
        match out.last_mut() {
            Some(c) if c.start_ms == start => {
                c.high = c.high.max(m.high);
                c.low = c.low.min(m.low);
                c.close = m.close;
                c.volume += m.volume;
            }
            _ => out.push(Candle {
                start_ms: start,
                ..*m
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    fn minute(start_ms: i64, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Candle {
        Candle {
            start_ms,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: Decimal::ZERO,
        }
    }

    #[test]
    fn intervals_parse_by_name_and_know_their_width_and_refresh() {
        for i in Interval::ALL {
            assert_eq!(Interval::parse(i.name()), Some(i));
        }
        assert_eq!(Interval::parse("2m"), None);
        assert_eq!(Interval::H4.millis(), 14_400_000);
        assert_eq!(Interval::M5.refresh_ms(5000), 5000);
        assert_eq!(Interval::M15.refresh_ms(5000), 15_000);
        assert_eq!(Interval::D1.refresh_ms(5000), 60_000);
    }

    #[test]
    fn minutes_aggregate_into_aligned_periods() {
        // A multiple of five minutes.
        let base = 1_700_000_100_000;
        let ms = [
            minute(base, dec!(10), dec!(12), dec!(9), dec!(11)),
            minute(base + 60_000, dec!(11), dec!(15), dec!(10), dec!(14)),
            minute(base + 240_000, dec!(14), dec!(14), dec!(8), dec!(9)),
            minute(base + 300_000, dec!(9), dec!(10), dec!(9), dec!(10)),
        ];
        let five = aggregate(&ms, Interval::M5);
        assert_eq!(
            five,
            [
                minute(base, dec!(10), dec!(15), dec!(8), dec!(9)),
                minute(base + 300_000, dec!(9), dec!(10), dec!(9), dec!(10)),
            ]
        );
        assert_eq!(aggregate(&ms, Interval::M1), ms);
        assert_eq!(last(&five, 1), &five[1..]);
        assert_eq!(last(&five, 10), &five[..]);
    }

    #[test]
    fn exchange_lists_are_put_oldest_first_without_repeats() {
        let a = minute(60_000, dec!(1), dec!(1), dec!(1), dec!(1));
        let b = minute(120_000, dec!(2), dec!(2), dec!(2), dec!(2));
        assert_eq!(in_order(vec![b, a, b]), [a, b]);
        assert_eq!(
            a.to_json(),
            serde_json::json!([60000, 1.0, 1.0, 1.0, 1.0, 0.0])
        );
    }
}

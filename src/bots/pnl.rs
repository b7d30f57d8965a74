//! The PnL summary: one computation, used by the API, the admin API and the
//! pages, so every view of a user's results agrees. Days are calendar days in the
//! caller's time zone.
//! See docs/http-api.md, Trades and PnL.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::money;

/// One calendar day; money serialises as JSON numbers (`money::json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: String,
    #[serde(with = "crate::money::number")]
    pub pnl: Decimal,
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayPnl {
    pub date: String,
    #[serde(with = "crate::money::number")]
    pub pnl: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    #[serde(with = "crate::money::number")]
    pub total_pnl: Decimal,
    pub total_trades: u64,
    pub wins: u64,
    pub losses: u64,
    /// Percent of trades with a positive PnL, 0 when there are none (a statistic,
    /// not money: a float).
    pub win_rate: f64,
    pub best_day: Option<DayPnl>,
    pub worst_day: Option<DayPnl>,
    /// Every day of the period, oldest first, including days without trades.
    pub daily: Vec<Day>,
    pub days: u32,
    pub tz: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PnlError {
    #[error("unknown time zone; use an IANA name such as Europe/Berlin")]
    UnknownZone,
    #[error("date out of range")]
    Range,
}

/// The period's window: `days` calendar days ending today in `tz`.
pub struct Window {
    tz: TimeZone,
    tz_name: String,
    first: Date,
    days: u32,
    /// Unix seconds of the first day's start.
    pub since: i64,
}

pub fn window(tz_name: &str, days: u32, now: Timestamp) -> Result<Window, PnlError> {
    let tz = TimeZone::get(tz_name).map_err(|_| PnlError::UnknownZone)?;
    let today = now.to_zoned_datetime(tz.clone()).date();
    let first = today
        .checked_sub(i64::from(days.max(1) - 1).days())
        .map_err(|_| PnlError::Range)?;
    let since = first
        .to_zoned_datetime(tz.clone())
        .map_err(|_| PnlError::Range)?
        .timestamp()
        .as_second();
    Ok(Window {
        tz,
        tz_name: tz_name.to_string(),
        first,
        days: days.max(1),
        since,
    })
}

impl Window {
    fn date_of(&self, ts: i64) -> Option<Date> {
        Timestamp::from_second(ts)
            .ok()
            .map(|t| t.to_zoned_datetime(self.tz.clone()).date())
    }

    /// Summarises `(closed_at, pnl)` trades (those before the window are ignored).
    pub fn summarise(&self, trades: &[(i64, Decimal)]) -> Summary {
        let mut by_day: BTreeMap<Date, Day> = BTreeMap::new();
        let mut date = self.first;
        for _ in 0..self.days {
            by_day.insert(
                date,
                Day {
                    date: date.to_string(),
                    pnl: Decimal::ZERO,
                    trades: 0,
                    wins: 0,
                    losses: 0,
                },
            );
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        for &(ts, pnl) in trades.iter().filter(|t| t.0 >= self.since) {
            let Some(day) = self.date_of(ts).and_then(|d| by_day.get_mut(&d)) else {
                continue;
            };
            day.pnl += pnl;
            day.trades += 1;
            day.wins += u64::from(pnl > Decimal::ZERO);
            day.losses += u64::from(pnl < Decimal::ZERO);
        }
        let daily: Vec<Day> = by_day
            .into_values()
            .map(|d| Day {
                pnl: money::pnl(d.pnl),
                ..d
            })
            .collect();
        let traded = || daily.iter().filter(|d| d.trades > 0);
        let pick = |d: &Day| DayPnl {
            date: d.date.clone(),
            pnl: d.pnl,
        };
        let best_day = traded().max_by(|a, b| a.pnl.cmp(&b.pnl)).map(pick);
        let worst_day = traded().min_by(|a, b| a.pnl.cmp(&b.pnl)).map(pick);
        let total_trades: u64 = daily.iter().map(|d| d.trades).sum();
        let wins: u64 = daily.iter().map(|d| d.wins).sum();
        let losses: u64 = daily.iter().map(|d| d.losses).sum();
        let total_pnl = money::pnl(daily.iter().map(|d| d.pnl).sum());
        let win_rate = if total_trades == 0 {
            0.0
        } else {
            (wins as f64 * 10_000.0 / total_trades as f64).round() / 100.0
        };
        Summary {
            total_pnl,
            total_trades,
            wins,
            losses,
            win_rate,
            best_day,
            worst_day,
            daily,
            days: self.days,
            tz: self.tz_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn days_follow_the_time_zone() {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        // 23:30 UTC on the 9th is already the 10th in Berlin (UTC+1).
        let trades = [
            (at("2026-03-09T23:30:00Z"), money::dec!(5)),
            (at("2026-03-10T08:00:00Z"), money::dec!(-2)),
        ];
        let utc = window("UTC", 2, now).unwrap().summarise(&trades);
        assert_eq!(
            utc.daily.iter().map(|d| d.trades).collect::<Vec<_>>(),
            vec![1, 1]
        );
        let berlin = window("Europe/Berlin", 2, now).unwrap().summarise(&trades);
        assert_eq!(
            berlin.daily.iter().map(|d| d.trades).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(berlin.daily[1].date, "2026-03-10");
        assert_eq!(
            (
                berlin.total_pnl,
                berlin.wins,
                berlin.losses,
                berlin.win_rate
            ),
            (money::dec!(3), 1, 1, 50.0)
        );
        assert_eq!(
            utc.best_day,
            Some(DayPnl {
                date: "2026-03-09".into(),
                pnl: money::dec!(5)
            })
        );
        assert_eq!(
            utc.worst_day,
            Some(DayPnl {
                date: "2026-03-10".into(),
                pnl: money::dec!(-2)
            })
        );
    }

    #[test]
    fn the_window_starts_at_local_midnight() {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        let w = window("America/New_York", 1, now).unwrap();
        assert_eq!(w.since, at("2026-03-10T04:00:00Z"), "EDT began on 8 March");
        let s = w.summarise(&[(at("2026-03-10T03:59:59Z"), Decimal::ONE)]);
        assert_eq!((s.total_trades, s.daily.len(), s.best_day), (0, 1, None));
        assert_eq!(
            window("Mars/Olympus", 1, now).err(),
            Some(PnlError::UnknownZone)
        );
    }
}

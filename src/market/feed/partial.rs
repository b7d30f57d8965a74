//! A symbol's ticker as the venue sends it piecewise: Bybit's deltas carry only the
//! fields that changed, BingX sends the book, the last price and the mark on
//! separate channels. Pieces merge into the last known state; a quote exists once
//! the last price and both sides of the book are known.

use rust_decimal::Decimal;

use crate::market::Quote;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Partial {
    pub last: Option<Decimal>,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub mark: Option<Decimal>,
    pub funding_rate: Option<Decimal>,
    pub next_funding_ms: Option<i64>,
}

impl Partial {
    /// Overwrites the fields `newer` carries.
    pub fn merge(&mut self, newer: &Partial) {
        fn take<T: Copy>(old: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *old = new;
            }
        }
        take(&mut self.last, newer.last);
        take(&mut self.bid, newer.bid);
        take(&mut self.ask, newer.ask);
        take(&mut self.mark, newer.mark);
        take(&mut self.funding_rate, newer.funding_rate);
        take(&mut self.next_funding_ms, newer.next_funding_ms);
    }

    /// The fields of `other` this one lacks (nothing it already has).
    pub fn gaps_from(&self, other: &Partial) -> Partial {
        fn gap<T: Copy>(mine: Option<T>, theirs: Option<T>) -> Option<T> {
            if mine.is_none() {
                theirs
            } else {
                None
            }
        }
        Partial {
            last: gap(self.last, other.last),
            bid: gap(self.bid, other.bid),
            ask: gap(self.ask, other.ask),
            mark: gap(self.mark, other.mark),
            funding_rate: gap(self.funding_rate, other.funding_rate),
            next_funding_ms: gap(self.next_funding_ms, other.next_funding_ms),
        }
    }

    /// The quote at `time_ms`, once the last price and both sides of the book
    /// are known (the paper exchange fills at the book). A mark not received yet
    /// is the last price (BingX's channels arrive in any order).
    pub fn quote(&self, time_ms: i64) -> Option<Quote> {
        let last = self.last?;
        Some(Quote {
            last,
            bid: self.bid?,
            ask: self.ask?,
            mark: self.mark.unwrap_or(last),
            funding_rate: self.funding_rate,
            next_funding_ms: self.next_funding_ms,
            time_ms,
        })
    }
}

/// A price field as the venues send it (a JSON string, sometimes a number):
/// `Ok(None)` when absent or empty, an error when present and not a decimal
/// above zero — the caller then keeps the old quote (never a zero price).
pub fn price(v: Option<&serde_json::Value>) -> Result<Option<Decimal>, String> {
    match decimal(v)? {
        Some(d) if d <= Decimal::ZERO => Err(format!("price {d} is not above zero")),
        other => Ok(other),
    }
}

/// A decimal field (a funding rate may be negative).
pub fn decimal(v: Option<&serde_json::Value>) -> Result<Option<Decimal>, String> {
    use std::str::FromStr;
    let text = match v {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => return Ok(None),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("{other} is not a number")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| Some(d.normalize()))
        .map_err(|_| format!("{text:?} is not a decimal"))
}

/// A millisecond time field (a string or a number).
pub fn millis(v: Option<&serde_json::Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not a time")),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a time")),
        Some(other) => Err(format!("{other} is not a time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use serde_json::json;

    #[test]
    fn merge_overwrites_only_the_fields_sent() {
        let mut p = Partial {
            last: Some(dec!(100)),
            bid: Some(dec!(99)),
            ask: Some(dec!(101)),
            mark: Some(dec!(100)),
            funding_rate: Some(dec!(0.0001)),
            next_funding_ms: Some(5),
        };
        p.merge(&Partial {
            bid: Some(dec!(99.5)),
            ..Partial::default()
        });
        assert_eq!(p.bid, Some(dec!(99.5)));
        assert_eq!(p.last, Some(dec!(100)));
        assert_eq!(p.funding_rate, Some(dec!(0.0001)));
    }

    #[test]
    fn no_quote_without_the_last_price_and_the_book_and_the_mark_defaults() {
        assert_eq!(Partial::default().quote(1), None);
        let mut p = Partial {
            last: Some(dec!(7)),
            ask: Some(dec!(7.1)),
            ..Partial::default()
        };
        assert_eq!(p.quote(9), None, "no bid yet");
        p.bid = Some(dec!(6.9));
        let q = p.quote(9).unwrap();
        assert_eq!(
            (q.bid, q.ask, q.mark, q.time_ms),
            (dec!(6.9), dec!(7.1), dec!(7), 9)
        );
    }

    #[test]
    fn gaps_are_only_the_missing_fields() {
        let have = Partial {
            last: Some(dec!(7)),
            ..Partial::default()
        };
        let rest = Partial {
            last: Some(dec!(6)),
            bid: Some(dec!(5.9)),
            ask: Some(dec!(6.1)),
            ..Partial::default()
        };
        let gaps = have.gaps_from(&rest);
        assert_eq!(
            (gaps.last, gaps.bid, gaps.ask),
            (None, Some(dec!(5.9)), Some(dec!(6.1)))
        );
    }

    #[test]
    fn prices_must_be_decimals_above_zero() {
        assert_eq!(price(Some(&json!("64000.50"))), Ok(Some(dec!(64000.5))));
        assert_eq!(price(Some(&json!(2.5))), Ok(Some(dec!(2.5))));
        assert_eq!(price(Some(&json!(""))), Ok(None));
        assert_eq!(price(None), Ok(None));
        assert!(price(Some(&json!("0"))).is_err());
        assert!(price(Some(&json!("-1"))).is_err());
        assert!(price(Some(&json!("abc"))).is_err());
        assert!(price(Some(&json!([1]))).is_err());
        assert_eq!(decimal(Some(&json!("-0.0005"))), Ok(Some(dec!(-0.0005))));
        assert_eq!(
            millis(Some(&json!("1700000000000"))),
            Ok(Some(1_700_000_000_000))
        );
        assert!(millis(Some(&json!("soon"))).is_err());
    }
}

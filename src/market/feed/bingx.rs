//! BingX perpetual swap market stream and its REST twins.
//!
//! Stream: every frame is GZIP-compressed binary; the server sends `Ping` every
//! few seconds and drops a client that does not answer `Pong`. Per symbol three
//! channels are followed: `<S>@bookTicker` (best bid `b` and ask `a`),
//! `<S>@lastPrice` (`c`) and `<S>@markPrice` (`p`). A subscription is
//! `{"id":…,"reqType":"sub","dataType":…}`, acknowledged with `{"id":…,"code":0}`;
//! an answer names only the id, so the follower numbers its requests and keeps
//! what each one asked. The funding rate is not on the
//! stream: `premiumIndex` gives it with the mark.
//!
//! REST (public, every symbol when no `symbol` is given):
//! `/openApi/swap/v2/quote/ticker` (last price, and bid/ask where present) and
//! `/openApi/swap/v2/quote/premiumIndex` (mark, funding rate, next funding time).

use std::io::Read;

use serde_json::{json, Value};

use super::event::Event;
use super::partial::{self, Partial};

pub const REST_TICKER: &str = "/openApi/swap/v2/quote/ticker";
pub const REST_PREMIUM: &str = "/openApi/swap/v2/quote/premiumIndex";

/// `BTC/USDT` → `BTC-USDT`, as the REST adapter spells it.
pub fn venue_symbol(ours: &str) -> Option<String> {
    crate::exchange::bingx::pair(ours).ok()
}

/// The per-symbol channels followed.
pub const CHANNELS: [&str; 3] = ["bookTicker", "lastPrice", "markPrice"];

/// A (un)subscription request (`req`: `sub` or `unsub`) of one channel, with
/// the caller's request id: the answer names only the id.
pub fn request(symbol: &str, channel: &str, req: &str, id: &str) -> String {
    json!({"id": id, "reqType": req, "dataType": format!("{symbol}@{channel}")}).to_string()
}

/// Answer codes meaning "too many requests, try later" rather than "no".
fn rate_limited(code: i64, msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    matches!(code, 100410 | 109429) || msg.contains("too many") || msg.contains("frequen")
}

/// A binary frame's text (GZIP), at most 1 MiB of it.
pub fn gunzip(bytes: &[u8]) -> Result<String, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("not gzip text: {e}"))?;
    Ok(text)
}

/// One frame's text.
pub fn decode(text: &str) -> Result<Event, String> {
    if text == "Ping" {
        return Ok(Event::Answer("Pong".into()));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    // The JSON heartbeat of BingX's other streams, answered the same way.
    if let Some(ping) = v.get("ping") {
        return Ok(Event::Answer(
            json!({"pong": ping, "time": v.get("time")}).to_string(),
        ));
    }
    let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
    let data_type = v.get("dataType").and_then(Value::as_str).unwrap_or("");
    let id = v.get("id").and_then(Value::as_str);
    if code != 0 {
        let reason = v.get("msg").and_then(Value::as_str).unwrap_or("");
        return Ok(Event::RequestFailed {
            id: id.unwrap_or("").to_string(),
            reason: format!("code {code}: {reason}"),
            rate_limited: rate_limited(code, reason),
        });
    }
    let Some((symbol, channel)) = data_type.split_once('@') else {
        // An acknowledgement (`{"id":…,"code":0,"msg":""}`) has no data type.
        return id
            .map(|id| Event::Answered(id.to_string()))
            .ok_or_else(|| "no dataType".into());
    };
    let d = v.get("data").filter(|d| d.is_object()).ok_or("no data")?;
    let fields = match channel {
        "bookTicker" => Partial {
            bid: partial::price(d.get("b"))?,
            ask: partial::price(d.get("a"))?,
            ..Partial::default()
        },
        "lastPrice" => Partial {
            last: partial::price(d.get("c"))?,
            ..Partial::default()
        },
        "markPrice" => Partial {
            mark: partial::price(d.get("p"))?,
            ..Partial::default()
        },
        _ => return Ok(Event::Other),
    };
    if fields == Partial::default() {
        return Err(format!("{data_type}: no price"));
    }
    Ok(Event::Ticker {
        symbol: symbol.to_string(),
        fields,
        snapshot: false,
    })
}

/// `data` of a REST answer as a list (one symbol asked: an object).
fn data_list(body: &str) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let code = v.get("code").and_then(Value::as_i64).ok_or("no code")?;
    if code != 0 {
        let msg = v.get("msg").and_then(Value::as_str).unwrap_or("");
        return Err(format!("code {code}: {msg}"));
    }
    match v.get("data") {
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(o @ Value::Object(_)) => Ok(vec![o.clone()]),
        _ => Err("no data".into()),
    }
}

/// Only entries whose symbol `keep` accepts are read (and counted when bad).
fn each(
    body: &str,
    keep: &dyn Fn(&str) -> bool,
    read: impl Fn(&Value) -> Result<Partial, String>,
) -> Result<(Vec<(String, Partial)>, u64), String> {
    let mut bad = 0;
    let mut out = Vec::new();
    for item in data_list(body)? {
        let symbol = item.get("symbol").and_then(Value::as_str);
        if symbol.is_some_and(|s| !keep(s)) {
            continue;
        }
        match (symbol, read(&item)) {
            (Some(s), Ok(f)) if f != Partial::default() => out.push((s.to_string(), f)),
            _ => bad += 1,
        }
    }
    Ok((out, bad))
}

/// `quote/ticker`: last price (required), bid and ask where the answer has them.
pub fn rest_ticker(
    body: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(Vec<(String, Partial)>, u64), String> {
    each(body, keep, |d| {
        let last = partial::price(d.get("lastPrice"))?.ok_or("no lastPrice")?;
        Ok(Partial {
            last: Some(last),
            bid: partial::price(d.get("bidPrice"))?,
            ask: partial::price(d.get("askPrice"))?,
            ..Partial::default()
        })
    })
}

/// `quote/premiumIndex`: mark, funding rate and next funding time.
pub fn rest_premium(
    body: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(Vec<(String, Partial)>, u64), String> {
    each(body, keep, |d| {
        Ok(Partial {
            mark: partial::price(d.get("markPrice"))?,
            funding_rate: partial::decimal(d.get("lastFundingRate"))?,
            next_funding_ms: partial::millis(d.get("nextFundingTime"))?,
            ..Partial::default()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use std::io::Write;

    fn gzip(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_frames_decode_to_tickers() {
        let frame = gzip(
            r#"{"code":0,"dataType":"BTC-USDT@bookTicker","data":{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTC-USDT","b":"64000.1","B":"2","a":"64000.3","A":"1"}}"#,
        );
        let text = gunzip(&frame).unwrap();
        let Ok(Event::Ticker { symbol, fields, .. }) = decode(&text) else {
            panic!("{text}")
        };
        assert_eq!(symbol, "BTC-USDT");
        assert_eq!(
            (fields.bid, fields.ask),
            (Some(dec!(64000.1)), Some(dec!(64000.3)))
        );
        let last = r#"{"code":0,"dataType":"BTC-USDT@lastPrice","data":{"e":"lastPriceUpdate","E":1,"s":"BTC-USDT","c":"64000.2"}}"#;
        assert!(
            matches!(decode(last), Ok(Event::Ticker { fields, .. }) if fields.last == Some(dec!(64000.2)))
        );
        let mark = r#"{"code":0,"dataType":"BTC-USDT@markPrice","data":{"e":"markPriceUpdate","E":1,"s":"BTC-USDT","p":"64001"}}"#;
        assert!(
            matches!(decode(mark), Ok(Event::Ticker { fields, .. }) if fields.mark == Some(dec!(64001)))
        );
        assert!(gunzip(b"not gzip").is_err());
    }

    #[test]
    fn pings_are_answered_and_refusals_name_the_symbol() {
        assert_eq!(decode("Ping"), Ok(Event::Answer("Pong".into())));
        assert_eq!(
            decode(r#"{"id":"17","code":0,"msg":""}"#),
            Ok(Event::Answered("17".into()))
        );
        let refused = r#"{"id":"18","code":80015,"msg":"symbol not exist"}"#;
        assert!(matches!(decode(refused),
            Ok(Event::RequestFailed { id, rate_limited: false, .. }) if id == "18"));
        let busy = r#"{"id":"19","code":109429,"msg":"Too many invalid requests"}"#;
        assert!(matches!(decode(busy),
            Ok(Event::RequestFailed { id, rate_limited: true, .. }) if id == "19"));
        let sub = request("BTC-USDT", "lastPrice", "sub", "20");
        assert!(
            sub.contains(r#""reqType":"sub""#) && sub.contains(r#""id":"20""#),
            "{sub}"
        );
        assert!(sub.contains(r#""dataType":"BTC-USDT@lastPrice""#), "{sub}");
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [
            "{",
            r#"{"code":0,"dataType":"BTC-USDT@lastPrice","data":{"c":"x"}}"#,
            r#"{"code":0,"dataType":"BTC-USDT@lastPrice","data":{}}"#,
            r#"{"code":0,"dataType":"BTC-USDT@markPrice","data":{"p":"-3"}}"#,
            r#"{"code":0}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rest_answers_of_all_symbols() {
        let t = r#"{"code":0,"msg":"","data":[{"symbol":"BTC-USDT","lastPrice":"64000","bidPrice":"63999","askPrice":"64001"},{"symbol":"ETH-USDT","lastPrice":"bad"}]}"#;
        let (list, bad) = rest_ticker(t, &|_| true).unwrap();
        assert_eq!((list.len(), bad), (1, 1));
        assert_eq!(list[0].1.ask, Some(dec!(64001)));
        let p = r#"{"code":0,"msg":"","data":{"symbol":"BTC-USDT","markPrice":"64000.5","indexPrice":"64000","lastFundingRate":"0.0001","nextFundingTime":1700000000000}}"#;
        let (list, _) = rest_premium(p, &|_| true).unwrap();
        assert_eq!(list[0].1.funding_rate, Some(dec!(0.0001)));
        assert_eq!(list[0].1.next_funding_ms, Some(1_700_000_000_000));
        assert!(rest_ticker(r#"{"code":100400,"msg":"bad"}"#, &|_| true).is_err());
    }
}

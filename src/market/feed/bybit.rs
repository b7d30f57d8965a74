//! Bybit v5 public linear stream (`tickers.<SYMBOL>`) and its REST twin
//! `GET /v5/market/tickers?category=linear`, which answers every symbol at once.
//!
//! The stream sends a snapshot on subscription, then deltas that carry only the
//! fields that changed. The client pings every 20 s (`{"op":"ping"}`); a refused
//! subscription is `{"op":"subscribe","success":false,"req_id":…}`, and each
//! subscription is sent alone with the symbol as its `req_id` so a refusal names it.

use serde_json::{json, Value};

use super::event::Event;
use super::partial::{self, Partial};

pub const REST_TICKERS: &str = "/v5/market/tickers?category=linear";

/// `BTC/USDT` → `BTCUSDT`, as the REST adapter spells it.
pub fn venue_symbol(ours: &str) -> Option<String> {
    crate::exchange::bybit::pair(ours).ok()
}

pub fn subscribe(symbol: &str) -> String {
    json!({"req_id": symbol, "op": "subscribe", "args": [format!("tickers.{symbol}")]}).to_string()
}

pub fn unsubscribe(symbol: &str) -> String {
    json!({"req_id": symbol, "op": "unsubscribe", "args": [format!("tickers.{symbol}")]})
        .to_string()
}

pub fn ping() -> String {
    json!({"req_id": "ping", "op": "ping"}).to_string()
}

/// The ticker fields of one `data` object (stream or REST list entry).
fn fields(d: &Value) -> Result<Partial, String> {
    Ok(Partial {
        last: partial::price(d.get("lastPrice"))?,
        bid: partial::price(d.get("bid1Price"))?,
        ask: partial::price(d.get("ask1Price"))?,
        mark: partial::price(d.get("markPrice"))?,
        funding_rate: partial::decimal(d.get("fundingRate"))?,
        next_funding_ms: partial::millis(d.get("nextFundingTime"))?,
    })
}

/// One text frame of the stream.
pub fn decode(text: &str) -> Result<Event, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(op) = v.get("op").and_then(Value::as_str) {
        let ok = v.get("success").and_then(Value::as_bool).unwrap_or(true);
        if op == "subscribe" && !ok {
            let symbol = v.get("req_id").and_then(Value::as_str).unwrap_or("");
            let reason = v.get("ret_msg").and_then(Value::as_str).unwrap_or("");
            return Ok(Event::SubscribeFailed {
                symbol: symbol.to_string(),
                reason: reason.to_string(),
            });
        }
        return Ok(Event::Other);
    }
    let topic = v.get("topic").and_then(Value::as_str).ok_or("no topic")?;
    let Some(symbol) = topic.strip_prefix("tickers.") else {
        return Ok(Event::Other);
    };
    let data = v.get("data").filter(|d| d.is_object()).ok_or("no data")?;
    let snapshot = match v.get("type").and_then(Value::as_str) {
        Some("snapshot") => true,
        Some("delta") => false,
        other => return Err(format!("unknown message type {other:?}")),
    };
    Ok(Event::Ticker {
        symbol: symbol.to_string(),
        fields: fields(data)?,
        snapshot,
    })
}

/// The REST answer: every symbol's ticker. Entries that cannot be read are
/// left out and counted in the second value.
/// Only entries whose symbol `keep` accepts are read (and counted when bad).
pub fn rest_tickers(
    body: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(Vec<(String, Partial)>, u64), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let code = v
        .get("retCode")
        .and_then(Value::as_i64)
        .ok_or("no retCode")?;
    if code != 0 {
        let msg = v.get("retMsg").and_then(Value::as_str).unwrap_or("");
        return Err(format!("retCode {code}: {msg}"));
    }
    let list = v
        .pointer("/result/list")
        .and_then(Value::as_array)
        .ok_or("no result.list")?;
    let mut bad = 0;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let symbol = item.get("symbol").and_then(Value::as_str);
        if symbol.is_some_and(|s| !keep(s)) {
            continue;
        }
        match (symbol, fields(item)) {
            (Some(s), Ok(f)) if f.last.is_some() => out.push((s.to_string(), f)),
            _ => bad += 1,
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn a_snapshot_then_a_delta() {
        let snap = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",
            "lastPrice":"64000.5","bid1Price":"64000.4","ask1Price":"64000.6","markPrice":"64001",
            "fundingRate":"0.0001","nextFundingTime":"1700000000000"},"cs":1,"ts":1}"#;
        let Ok(Event::Ticker {
            symbol,
            fields,
            snapshot: true,
        }) = decode(snap)
        else {
            panic!("{:?}", decode(snap))
        };
        assert_eq!(symbol, "BTCUSDT");
        assert_eq!(fields.ask, Some(dec!(64000.6)));
        assert_eq!(fields.next_funding_ms, Some(1_700_000_000_000));
        let delta = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"63990"}}"#;
        let Ok(Event::Ticker {
            fields,
            snapshot: false,
            ..
        }) = decode(delta)
        else {
            panic!()
        };
        assert_eq!(
            fields,
            Partial {
                bid: Some(dec!(63990)),
                ..Partial::default()
            }
        );
    }

    #[test]
    fn subscription_answers_and_pongs() {
        let refused = r#"{"success":false,"ret_msg":"Invalid symbol :[tickers.NOPEUSDT]","conn_id":"x","req_id":"NOPEUSDT","op":"subscribe"}"#;
        assert!(
            matches!(decode(refused), Ok(Event::SubscribeFailed { symbol, .. }) if symbol == "NOPEUSDT")
        );
        let ok =
            r#"{"success":true,"ret_msg":"","conn_id":"x","req_id":"BTCUSDT","op":"subscribe"}"#;
        assert_eq!(decode(ok), Ok(Event::Other));
        let pong = r#"{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"ping","op":"ping"}"#;
        assert_eq!(decode(pong), Ok(Event::Other));
        assert!(subscribe("BTCUSDT").contains(r#""args":["tickers.BTCUSDT"]"#));
    }

    #[test]
    fn malformed_frames_are_errors_not_zero_prices() {
        for bad in [
            "{not json",
            r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"lastPrice":"abc"}}"#,
            r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"lastPrice":"0"}}"#,
            r#"{"topic":"tickers.BTCUSDT","type":"weird","data":{}}"#,
            r#"{"topic":"tickers.BTCUSDT","type":"delta"}"#,
            r#"{"hello":1}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rest_tickers_list_every_symbol_and_count_bad_entries() {
        let body = r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[
            {"symbol":"BTCUSDT","lastPrice":"64000","bid1Price":"63999","ask1Price":"64001","markPrice":"64000.2","fundingRate":"-0.0002","nextFundingTime":"1700000000000"},
            {"symbol":"ETHUSDT","lastPrice":"oops"}]},"time":1}"#;
        let (list, bad) = rest_tickers(body, &|_| true).unwrap();
        assert_eq!(bad, 1);
        assert_eq!(list[0].0, "BTCUSDT");
        assert_eq!(list[0].1.funding_rate, Some(dec!(-0.0002)));
        // Entries of symbols nobody follows are not even read.
        let (list, bad) = rest_tickers(body, &|s| s == "BTCUSDT").unwrap();
        assert_eq!((list.len(), bad), (1, 0));
        assert!(rest_tickers(r#"{"retCode":10001,"retMsg":"bad"}"#, &|_| true).is_err());
    }
}

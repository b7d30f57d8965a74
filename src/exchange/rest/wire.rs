//! Reading the exchanges' JSON answers into typed structs (the `types` module of
//! each adapter). Decimals and integers arrive as strings or as numbers depending on
//! the field and the exchange; the deserializers here read either from its text
//! (never through `f64`, which would turn `0.1` into `0.1000000000000000055…`). A
//! field the code needs that is missing or garbled is `ExchangeError::Malformed`
//! naming its path (`list[0].qty`), never a silent 0 (docs/bots.md, Money).

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::exchange::ExchangeError;
use crate::money;

/// Reads `text` (an answer's payload) as `T`. `what` names the answer in the
/// error (`order list`), the path names the field.
pub fn parse<'a, T: Deserialize<'a>>(what: &str, text: &'a str) -> Result<T, ExchangeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let why = without_position(&e.inner().to_string());
        let field = if path == "." {
            String::new()
        } else {
            format!(" field {path}:")
        };
        ExchangeError::Malformed(format!("{what}:{field} {why}"))
    })
}

/// Reads each entry of an all-symbols list on its own: a malformed entry (a
/// ticker with `lastPrice: ""`) is left out and described (`tickers[3]: field
/// lastPrice: …`) instead of failing the whole list.
pub fn parse_each<T: serde::de::DeserializeOwned>(
    what: &str,
    items: &[Box<RawValue>],
) -> (Vec<T>, Vec<String>) {
    let mut good = Vec::with_capacity(items.len());
    let mut bad = Vec::new();
    for (k, item) in items.iter().enumerate() {
        match parse(&format!("{what}[{k}]"), item.get()) {
            Ok(v) => good.push(v),
            Err(ExchangeError::Malformed(why)) => bad.push(why),
            Err(e) => bad.push(e.to_string()),
        }
    }
    (good, bad)
}

/// serde_json's message without its " at line 1 column 42" (one line of JSON: the
/// path says more).
fn without_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The text of a JSON scalar: a string's content, or a number's digits as sent.
/// `None` for JSON `null`.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    let s: Cow<str> = if text.starts_with('"') {
        Cow::Owned(serde_json::from_str::<String>(text).map_err(D::Error::custom)?)
    } else if text.starts_with(['{', '[', 't', 'f']) {
        return Err(D::Error::custom(format!("expected a number, got {text}")));
    } else {
        Cow::Borrowed(text)
    };
    Ok(Some(s.into_owned()))
}

/// A decimal the code needs: `"0.1"` or `0.1`; empty, `null` or garbled is an error.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    decimal_opt(d)?.ok_or_else(|| D::Error::custom("empty, expected a decimal number"))
}

/// A decimal the exchange leaves out when it does not apply (an unfilled order's
/// average price): `""` or `null` is `None` (so is an absent field, with
/// `#[serde(default)]`); garbled text is still an error.
pub fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match scalar_text(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => money::parse(&s).map(Some).map_err(D::Error::custom),
    }
}

/// An integer (a time in ms, a code): `"1700000000000"` or `1700000000000`.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = scalar_text(d)?.ok_or_else(|| D::Error::custom("null, expected an integer"))?;
    s.trim()
        .parse()
        .map_err(|_| D::Error::custom(format!("not an integer: {s:?}")))
}

/// A time the exchange leaves out when it does not apply: `""`, `null` or `0` is
/// `None` (so is an absent field, with `#[serde(default)]`).
pub fn int_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match scalar_text(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() || s.trim() == "0" => Ok(None),
        Some(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("not an integer: {s:?}"))),
    }
}

/// An identifier sent as a string or as a (possibly larger than 2^53) number,
/// kept as its text; `null` is empty.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_text(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[derive(Debug, Deserialize)]
    struct Row {
        #[serde(deserialize_with = "decimal")]
        qty: Decimal,
        #[serde(default, deserialize_with = "decimal_opt")]
        avg: Option<Decimal>,
        #[serde(deserialize_with = "int")]
        time: i64,
        #[serde(default, deserialize_with = "id")]
        id: String,
    }

    #[derive(Debug, Deserialize)]
    struct List {
        list: Vec<Row>,
    }

    fn rows(text: &str) -> Result<Vec<Row>, ExchangeError> {
        parse::<List>("test list", text).map(|l| l.list)
    }

    #[test]
    fn strings_and_numbers_are_read_from_their_text() {
        let r = rows(
            r#"{"list":[{"qty":"0.10","avg":"","time":"1700000000000","id":172998235239792314},
                        {"qty":0.1,"avg":0.3,"time":1700000000001,"id":"a-1"},
                        {"qty":1e-8,"time":5}]}"#,
        )
        .unwrap();
        assert_eq!(
            (r[0].qty, r[0].avg, r[0].time),
            (dec!(0.1), None, 1_700_000_000_000)
        );
        assert_eq!(r[0].id, "172998235239792314");
        // 0.1 and 0.3 as JSON numbers: exact, not the nearest binary float.
        assert_eq!(
            (r[1].qty, r[1].avg, r[1].id.as_str()),
            (dec!(0.1), Some(dec!(0.3)), "a-1")
        );
        assert_eq!(
            (r[2].qty, r[2].avg, r[2].id.as_str()),
            (dec!(0.00000001), None, "")
        );
    }

    #[test]
    fn missing_or_garbled_fields_are_malformed_naming_the_field() {
        let cases = [
            (
                r#"{"list":[{"time":1}]}"#,
                "test list: field list[0]: missing field `qty`",
            ),
            (
                r#"{"list":[{"qty":"0.1O","time":1}]}"#,
                "field list[0].qty: not a decimal",
            ),
            (
                r#"{"list":[{"qty":"","time":1}]}"#,
                "field list[0].qty: empty",
            ),
            (
                r#"{"list":[{"qty":null,"time":1}]}"#,
                "field list[0].qty: empty",
            ),
            (
                r#"{"list":[{"qty":true,"time":1}]}"#,
                "field list[0].qty: expected a number",
            ),
            (
                r#"{"list":[{"qty":"1","avg":"abc","time":1}]}"#,
                "field list[0].avg: not a decimal",
            ),
            (
                r#"{"list":[{"qty":"1","time":"12x"}]}"#,
                "field list[0].time: not an integer",
            ),
            (
                r#"{"list":[{"qty":"1","time":1.5}]}"#,
                "field list[0].time: not an integer",
            ),
            (r#"{"list":{}}"#, "field list: invalid type"),
            ("<html>", "test list: expected value"),
        ];
        for (text, says) in cases {
            match rows(text) {
                Err(ExchangeError::Malformed(m)) => assert!(m.contains(says), "{m:?} vs {says:?}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}

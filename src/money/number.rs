//! Serde for a `Decimal` held as a JSON number (`#[serde(with =
//! "crate::money::number")]`): written through `money::json`, read from the
//! number's text so `0.1` stays 0.1. A string holding a decimal is read too.

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    super::json(*d).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => super::parse(&s).map_err(D::Error::custom),
        v => super::from_json(&v).ok_or_else(|| D::Error::custom("expected a decimal number")),
    }
}

/// The same for `Option<Decimal>`: `null` when absent.
pub mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        super::super::json_opt(*d).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => super::super::parse(&s).map(Some).map_err(D::Error::custom),
            v => super::super::from_json(&v)
                .map(Some)
                .ok_or_else(|| D::Error::custom("expected a decimal number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Leg {
        #[serde(with = "crate::money::number")]
        amount: Decimal,
        #[serde(with = "crate::money::number::opt", default)]
        price: Option<Decimal>,
    }

    #[test]
    fn round_trips_as_json_numbers() {
        let leg = Leg {
            amount: dec!(0.1),
            price: None,
        };
        let text = serde_json::to_string(&leg).unwrap();
        assert_eq!(text, r#"{"amount":0.1,"price":null}"#);
        assert_eq!(serde_json::from_str::<Leg>(&text).unwrap(), leg);
        let read: Leg = serde_json::from_str(r#"{"amount":"2.50","price":30000.1}"#).unwrap();
        assert_eq!((read.amount, read.price), (dec!(2.5), Some(dec!(30000.1))));
        assert!(serde_json::from_str::<Leg>(r#"{"amount":true}"#).is_err());
    }
}

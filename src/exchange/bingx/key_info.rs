//! The key check and the position-mode check on BingX.
//!
//! - key: `GET /openApi/v1/account/apiPermissions` ("Query user API Key
//!   permissions", <https://bingx-api.github.io/docs/#/en-us/common/sub-account>):
//!   `permissions` is a list of codes — 1 spot trading, 2 reading, 3 perpetual
//!   futures trading, 4 universal transfer, 5 withdrawal, 7 transfers between
//!   sub-accounts — and `ipAddresses` the whitelist (empty: any address). BingX
//!   gives no expiry: keys bound to an address never expire, unbound trading keys
//!   are deleted after 14 days without use (<https://bingx.com/en/account/api/>),
//!   which is no date to show.
//! - mode: `GET /openApi/swap/v1/positionSide/dual` ("Query position mode",
//!   <https://bingx-api.github.io/docs/#/en-us/swapV2/trade-api.html>):
//!   `dualSidePosition` `"true"` is hedge mode, `"false"` one-way; one setting for
//!   the whole account.

use serde::Deserialize;
use serde_json::Value;

use crate::exchange::rest::wire;
use crate::exchange::{ExchangeError, KeyInfo};

const READ: i64 = 2;
const PERPETUAL_TRADING: i64 = 3;
const WITHDRAWAL: i64 = 5;

#[derive(Debug, Deserialize)]
struct RawPermissions {
    permissions: Vec<Value>,
    #[serde(rename = "ipAddresses", default)]
    ip_addresses: Option<Vec<String>>,
}

/// A permission code, sent as a number or a string of digits.
fn code(v: &Value) -> Result<i64, ExchangeError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| ExchangeError::Malformed(format!("API key permissions: code {v}")))
}

/// The `data` of `apiPermissions` as a [`KeyInfo`].
pub fn read(data: &str) -> Result<KeyInfo, ExchangeError> {
    let raw: RawPermissions = wire::parse("API key permissions", data)?;
    let codes = raw
        .permissions
        .iter()
        .map(code)
        .collect::<Result<Vec<_>, _>>()?;
    let trade = codes.contains(&PERPETUAL_TRADING);
    // Read-only: nothing beyond reading (no trading, transfer or withdrawal).
    let read_only = codes.iter().all(|c| *c == READ);
    let ips: Vec<String> = raw
        .ip_addresses
        .unwrap_or_default()
        .into_iter()
        .map(|ip| ip.trim().to_string())
        .filter(|ip| !ip.is_empty())
        .collect();
    Ok(KeyInfo {
        trade,
        read_only,
        withdraw: codes.contains(&WITHDRAWAL),
        expires_at: None,
        ip_whitelist: (!ips.is_empty()).then_some(ips),
    })
}

/// `dualSidePosition` (a string, or a boolean in some answers).
pub fn dual(data: &str) -> Result<bool, ExchangeError> {
    #[derive(Deserialize)]
    struct Mode {
        #[serde(rename = "dualSidePosition")]
        dual: Value,
    }
    let m: Mode = wire::parse("position mode", data)?;
    match &m.dual {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(ExchangeError::Malformed(format!(
            "position mode: field dualSidePosition: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_codes_read_as_documented() {
        let k = read(r#"{"apiKey":"x","permissions":[2,3],"ipAddresses":["1.2.3.4"],"note":""}"#)
            .unwrap();
        assert_eq!(
            k,
            KeyInfo {
                trade: true,
                read_only: false,
                withdraw: false,
                expires_at: None,
                ip_whitelist: Some(vec!["1.2.3.4".into()]),
            }
        );
        assert_eq!(k.problem(), None);
        let w = read(r#"{"permissions":[1,2,3,5],"ipAddresses":["1.2.3.4"]}"#).unwrap();
        assert!(w.withdraw && w.trade);
        let ro = read(r#"{"permissions":[2],"ipAddresses":[]}"#).unwrap();
        assert_eq!(
            (ro.read_only, ro.trade, ro.ip_whitelist),
            (true, false, None)
        );
        let spot = read(r#"{"permissions":["1","2"]}"#).unwrap();
        assert_eq!((spot.read_only, spot.trade), (false, false));
    }

    #[test]
    fn garbled_permissions_are_malformed() {
        for bad in [r#"{"permissions":["x"]}"#, r#"{"ipAddresses":[]}"#, "[]"] {
            assert!(
                matches!(read(bad), Err(ExchangeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_position_mode_reads_both_spellings() {
        assert_eq!(dual(r#"{"dualSidePosition":"true"}"#), Ok(true));
        assert_eq!(dual(r#"{"dualSidePosition":"false"}"#), Ok(false));
        assert_eq!(dual(r#"{"dualSidePosition":false}"#), Ok(false));
        assert!(matches!(
            dual(r#"{"dualSidePosition":"yes"}"#),
            Err(ExchangeError::Malformed(_))
        ));
        assert!(matches!(dual("{}"), Err(ExchangeError::Malformed(_))));
    }
}

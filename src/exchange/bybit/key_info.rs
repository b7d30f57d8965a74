//! The key check and the position-mode check on Bybit.
//!
//! - key: `GET /v5/user/query-api` — <https://bybit-exchange.github.io/docs/v5/user/apikey-info>:
//!   `readOnly` (0 read and write, 1 read only), `permissions` (groups of
//!   permission names: `ContractTrade: ["Order","Position"]` trades perpetuals,
//!   `Derivatives: ["DerivativesTrade"]` on unified accounts, a withdrawal
//!   permission shows as `Withdraw` in the `Wallet` group), `ips` (`["*"]` = not
//!   bound to any address) and `expiredAt` (RFC 3339; empty for a key that does not
//!   expire — keys bound to addresses).
//! - mode: `GET /v5/position/list` — <https://bybit-exchange.github.io/docs/v5/position>:
//!   in hedge mode a symbol lists `positionIdx` 1 (long) and 2 (short), in one-way
//!   mode one entry with `positionIdx` 0 (<https://bybit-exchange.github.io/docs/v5/position/position-mode>).

use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;

use super::types::{Page, RawPosition};
use super::Bybit;
use crate::exchange::rest::wire::{self, int};
use crate::exchange::{ExchangeError, KeyInfo};

/// `GET /v5/user/query-api`: only what the check reads.
#[derive(Debug, Deserialize)]
pub struct RawKey {
    #[serde(rename = "readOnly", deserialize_with = "int")]
    read_only: i64,
    /// Group → permission names; a group may be `null` or absent.
    permissions: HashMap<String, Option<Vec<String>>>,
    #[serde(default)]
    ips: Option<Vec<String>>,
    #[serde(rename = "expiredAt", default)]
    expired_at: Option<String>,
}

fn has(raw: &RawKey, group: &str, name: &str) -> bool {
    raw.permissions
        .get(group)
        .and_then(Option::as_ref)
        .is_some_and(|names| names.iter().any(|n| n == name))
}

/// The `result` of `/v5/user/query-api` as a [`KeyInfo`].
pub fn read(result: &str) -> Result<KeyInfo, ExchangeError> {
    let raw: RawKey = wire::parse("API key info", result)?;
    let read_only = match raw.read_only {
        0 => false,
        1 => true,
        n => {
            return Err(ExchangeError::Malformed(format!(
                "API key info: field readOnly: unknown value {n}"
            )))
        }
    };
    let trade = has(&raw, "ContractTrade", "Order") || has(&raw, "Derivatives", "DerivativesTrade");
    // Any permission naming withdrawal, in whichever group Bybit lists it: a
    // false refusal costs the user a new key, a missed one their funds.
    let withdraw = raw
        .permissions
        .values()
        .flatten()
        .flatten()
        .any(|n| n.to_ascii_lowercase().contains("withdraw"));
    Ok(KeyInfo {
        trade,
        read_only,
        withdraw,
        expires_at: expiry(raw.expired_at.as_deref().unwrap_or(""))?,
        ip_whitelist: whitelist(raw.ips.unwrap_or_default()),
    })
}

/// `expiredAt`: empty (or the epoch) for a key that does not expire.
fn expiry(text: &str) -> Result<Option<i64>, ExchangeError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let t: jiff::Timestamp = text.parse().map_err(|_| {
        ExchangeError::Malformed(format!("API key info: field expiredAt: {text:?}"))
    })?;
    Ok((t.as_second() > 0).then_some(t.as_second()))
}

/// `ips`: `["*"]` or nothing means any address.
fn whitelist(ips: Vec<String>) -> Option<Vec<String>> {
    let ips: Vec<String> = ips
        .into_iter()
        .map(|ip| ip.trim().to_string())
        .filter(|ip| !ip.is_empty())
        .collect();
    if ips.is_empty() || ips.iter().any(|ip| ip == "*") {
        None
    } else {
        Some(ips)
    }
}

pub fn key_info(b: &Bybit, by: Instant) -> Result<KeyInfo, ExchangeError> {
    let result = b.api.get_within("/v5/user/query-api", &[], by)?;
    read(&result)
}

/// Hedge mode from the symbol's position entries: 1 and 2 in hedge, 0 in one-way.
pub fn hedge(list: &[RawPosition]) -> Result<bool, ExchangeError> {
    let idx = |i| list.iter().any(|p| p.position_idx == i);
    match (idx(0), idx(1) || idx(2)) {
        (false, true) => Ok(true),
        (true, false) => Ok(false),
        _ => Err(ExchangeError::Malformed(format!(
            "positions: positionIdx {:?} tell no position mode",
            list.iter().map(|p| p.position_idx).collect::<Vec<_>>()
        ))),
    }
}

pub fn hedge_mode(b: &Bybit, symbol: &str) -> Result<bool, ExchangeError> {
    let r: Page<RawPosition> =
        b.api
            .get("positions", "/v5/position/list", &super::linear(symbol)?)?;
    hedge(&r.list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    /// The example answer of docs/v5/user/apikey-info, trimmed to what is read.
    const DOC: &str = r#"{"id":"13770661","note":"XXXXXX","apiKey":"XXXXXX","readOnly":0,
        "secret":"","permissions":{"ContractTrade":["Order","Position"],"Spot":["SpotTrade"],
        "Wallet":["AccountTransfer","SubMemberTransfer"],"Options":["OptionsTrade"],
        "Derivatives":[],"CopyTrading":["CopyTrading"],"BlockTrade":[],"Exchange":[],"NFT":[],
        "Affiliate":[],"Earn":[]},"ips":["*"],"type":1,"deadlineDay":66,
        "expiredAt":"2023-12-22T07:20:25Z","createdAt":"2022-10-16T02:24:40Z","unified":0,
        "uta":0,"userID":24617703,"inviterID":0,"vipLevel":"No VIP","mktMakerLevel":"0",
        "affiliateID":0,"rsaPublicKey":"","isMaster":true,"parentUid":"0",
        "kycLevel":"LEVEL_DEFAULT","kycRegion":""}"#;

    #[test]
    fn the_documented_key_trades_expires_and_is_unbound() {
        let k = read(DOC).unwrap();
        assert_eq!(
            k,
            KeyInfo {
                trade: true,
                read_only: false,
                withdraw: false,
                expires_at: Some(1703229625),
                ip_whitelist: None,
            }
        );
        assert_eq!(k.problem(), None);
    }

    #[test]
    fn read_only_withdrawing_and_bound_keys_read_as_such() {
        let ro = DOC.replace(r#""readOnly":0"#, r#""readOnly":1"#);
        assert!(read(&ro).unwrap().read_only);
        let w = DOC.replace(
            r#""Wallet":["AccountTransfer","SubMemberTransfer"]"#,
            r#""Wallet":["AccountTransfer","Withdraw"]"#,
        );
        assert!(read(&w).unwrap().withdraw);
        let spot_only = DOC.replace(
            r#""ContractTrade":["Order","Position"]"#,
            r#""ContractTrade":[]"#,
        );
        assert!(!read(&spot_only).unwrap().trade);
        let uta = spot_only.replace(
            r#""Derivatives":[]"#,
            r#""Derivatives":["DerivativesTrade"]"#,
        );
        assert!(read(&uta).unwrap().trade);
        let bound = DOC
            .replace(r#""ips":["*"]"#, r#""ips":["1.2.3.4","5.6.7.8"]"#)
            .replace("2023-12-22T07:20:25Z", "");
        let k = read(&bound).unwrap();
        assert_eq!(
            (k.ip_whitelist, k.expires_at),
            (Some(vec!["1.2.3.4".into(), "5.6.7.8".into()]), None)
        );
    }

    #[test]
    fn garbled_answers_are_malformed_not_permissive() {
        for bad in [
            DOC.replace(r#""readOnly":0"#, r#""readOnly":7"#),
            DOC.replace("2023-12-22T07:20:25Z", "soon"),
            r#"{"readOnly":0}"#.to_string(),
            "null".to_string(),
        ] {
            assert!(
                matches!(read(&bad), Err(ExchangeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    fn at(idx: i64) -> RawPosition {
        RawPosition {
            position_idx: idx,
            size: dec!(0),
            avg_price: None,
            mark_price: None,
            leverage: None,
        }
    }

    #[test]
    fn position_entries_tell_the_mode() {
        assert_eq!(hedge(&[at(1), at(2)]), Ok(true));
        assert_eq!(hedge(&[at(0)]), Ok(false));
        assert!(matches!(hedge(&[]), Err(ExchangeError::Malformed(_))));
        assert!(matches!(
            hedge(&[at(0), at(1)]),
            Err(ExchangeError::Malformed(_))
        ));
    }
}

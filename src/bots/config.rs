//! A bot's configuration: its fields and their defaults, how a partial update is
//! validated field by field, and how it is shown (secrets masked). Stored by
//! `store::bot_config`. See docs/bots.md, Configuration.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::ids::BotRef;
use super::ladder::Side;
use super::rules;
use crate::money::{self, dec};
use crate::text_enum::text_enum;

text_enum! {
    /// What the bot does after its stop-loss closed a cycle.
    #[derive(Default)]
    pub enum AfterStopLoss {
        /// Stops (status `stopped`, `stop_reason` `stop_loss`).
        #[default]
        Stop = "stop",
        /// Waits `cooldown` and starts the next cycle.
        Continue = "continue",
    }
}

/// The exchanges a bot can trade on.
pub const EXCHANGES: [&str; 3] = ["paper", "bybit", "bingx"];
pub const MAX_GRIDS: usize = 50;
const MAX_LEVERAGE: u32 = 125;
const MAX_PCT: Decimal = dec!(1000);
/// Telegram chat ids are integers or `@channel` names; anything longer is a mistake.
const MAX_CHAT_ID: usize = 64;
/// Exchange keys and tokens are short; a megabyte of "key" is an error, not a key.
const MAX_SECRET: usize = 256;

/// One ladder leg: USDT margin, and percent from the previous leg's price. Stored
/// and shown as JSON numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    #[serde(with = "crate::money::number")]
    pub amount: Decimal,
    #[serde(with = "crate::money::number")]
    pub gap: Decimal,
}

/// A bot's settings. `telegram_chat_id` is its owner's (notifications are the
/// user's, for all their bots).
#[derive(Debug, Clone, PartialEq)]
pub struct BotConfig {
    pub exchange: String,
    pub symbol: String,
    pub side: Side,
    pub leverage: u32,
    pub take_profit: Decimal,
    pub stop_loss: Decimal,
    pub rounds: usize,
    pub grids: Vec<Grid>,
    pub repeat: bool,
    pub telegram_chat_id: Option<String>,
    pub after_stop_loss: AfterStopLoss,
    /// Seconds between a cycle's close and the next entry.
    pub cooldown: u32,
    /// Unfilled ladder legs resting at once; 0 = all.
    pub max_active_legs: usize,
    /// Price percent a trailing take-profit gives back from the best; 0 = off.
    pub trailing_take_profit: Decimal,
}

impl Default for BotConfig {
    /// A working paper configuration, so that Start works out of the box: what
    /// every new bot (a new user's default bot included) begins with.
    fn default() -> BotConfig {
        let grid = |amount, gap| Grid { amount, gap };
        BotConfig {
            exchange: "paper".into(),
            symbol: "BTC/USDT".into(),
            side: Side::Long,
            leverage: 10,
            take_profit: dec!(5),
            stop_loss: Decimal::ZERO,
            rounds: 3,
            grids: vec![
                grid(dec!(10), Decimal::ZERO),
                grid(dec!(20), dec!(1)),
                grid(dec!(40), dec!(2)),
            ],
            repeat: true,
            telegram_chat_id: None,
            after_stop_loss: AfterStopLoss::Stop,
            cooldown: 0,
            max_active_legs: 0,
            trailing_take_profit: Decimal::ZERO,
        }
    }
}

/// A bot's configuration as stored, plus its identity and what may be said about
/// the secrets (those of its exchange account and its owner's Telegram token).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConfig {
    pub bot: BotRef,
    pub name: String,
    /// The exchange account the bot trades with; `None` for paper (or a real
    /// exchange before an account is chosen).
    pub exchange_account_id: Option<i64>,
    pub config: BotConfig,
    pub api_key_last4: Option<String>,
    pub has_api_key: bool,
    pub has_api_secret: bool,
    pub has_telegram_token: bool,
    /// A change waits for the next cycle.
    pub has_pending: bool,
}

pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Long => "long",
        Side::Short => "short",
    }
}

pub fn parse_side(s: &str) -> Option<Side> {
    match s {
        "long" => Some(Side::Long),
        "short" => Some(Side::Short),
        _ => None,
    }
}

/// What a status read (and the runner's conflict rule) needs of a bot's
/// configuration: the market and whether a change is pending. A status is read
/// far more often than the configuration, so it skips parsing the ladder and the
/// amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotMarket {
    pub exchange: String,
    pub exchange_account_id: Option<i64>,
    pub symbol: String,
    pub side: Side,
    pub has_pending: bool,
}

impl BotMarket {
    /// Whether two bots of one user would trade the same position: the same
    /// exchange account (or both the paper account), symbol and side.
    pub fn same_position(&self, other: &BotMarket) -> bool {
        self.exchange == other.exchange
            && self.exchange_account_id == other.exchange_account_id
            && self.symbol == other.symbol
            && self.side == other.side
    }
}

/// The non-secret fields, as the API shows and `pending_config` stores them.
pub fn settings_json(c: &BotConfig) -> Value {
    json!({
        "exchange": c.exchange,
        "symbol": c.symbol,
        "side": side_name(c.side),
        "leverage": c.leverage,
        "take_profit": money::json(c.take_profit),
        "stop_loss": money::json(c.stop_loss),
        "rounds": c.rounds,
        "grids": c.grids,
        "repeat": c.repeat,
        "telegram_chat_id": c.telegram_chat_id,
        "after_stop_loss": c.after_stop_loss,
        "cooldown": c.cooldown,
        "max_active_legs": c.max_active_legs,
        "trailing_take_profit": money::json(c.trailing_take_profit),
    })
}

impl StoredConfig {
    /// The API's shape: secrets appear only as `***abcd` and booleans.
    pub fn to_json(&self) -> Value {
        let mut v = settings_json(&self.config);
        if let Value::Object(m) = &mut v {
            let key = self
                .has_api_key
                .then(|| format!("***{}", self.api_key_last4.as_deref().unwrap_or("")));
            m.insert("api_key".into(), json!(key));
            m.insert("has_api_secret".into(), json!(self.has_api_secret));
            m.insert("has_telegram_token".into(), json!(self.has_telegram_token));
        }
        v
    }
}

/// Secrets sent in an update: `Some("")` clears nothing (write-only fields can only
/// be replaced), so empty strings are treated as absent.
#[derive(Default, PartialEq, Eq)]
pub struct SecretUpdate {
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub telegram_token: Option<String>,
}

impl std::fmt::Debug for SecretUpdate {
    /// Only which secrets were given, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretUpdate")
            .field("api_key", &self.api_key.is_some())
            .field("api_secret", &self.api_secret.is_some())
            .field("telegram_token", &self.telegram_token.is_some())
            .finish()
    }
}

impl SecretUpdate {
    pub fn is_empty(&self) -> bool {
        self.api_key.is_none() && self.api_secret.is_none() && self.telegram_token.is_none()
    }
}

/// Field name → problem, in the order the API reports them.
pub type Problems = BTreeMap<String, String>;

/// Applies a partial update to `base`, validating every field given and the result
/// as a whole (e.g. `rounds` against the number of legs).
pub fn apply_update(
    base: &BotConfig,
    body: &Map<String, Value>,
) -> Result<(BotConfig, SecretUpdate), Problems> {
    let mut p = Problems::new();
    let mut c = base.clone();
    for (key, value) in body {
        if let Err(msg) = apply_field(&mut c, key, value) {
            p.insert(key.clone(), msg);
        }
    }
    let secrets = SecretUpdate {
        api_key: secret(body, "api_key", &mut p),
        api_secret: secret(body, "api_secret", &mut p),
        telegram_token: secret(body, "telegram_token", &mut p),
    };
    if !p.contains_key("rounds") && !p.contains_key("grids") {
        if let Err(msg) = check_rounds(c.rounds, c.grids.len()) {
            let field = if body.contains_key("rounds") {
                "rounds"
            } else {
                "grids"
            };
            p.insert(field.into(), msg);
        }
    }
    if !p.contains_key("take_profit") && !p.contains_key("stop_loss") && !p.contains_key("leverage")
    {
        if let Some((field, msg)) = price_beyond_zero(&c) {
            p.insert(field.into(), msg);
        }
    }
    check_rules(&c, &mut p);
    if p.is_empty() {
        Ok((c, secrets))
    } else {
        Err(p)
    }
}

/// A short's take-profit (or a long's stop-loss) of `pct` % ROE at `leverage` is a
/// price move of `pct / leverage` %: 100 % or more would need a price of zero.
fn price_beyond_zero(c: &BotConfig) -> Option<(&'static str, String)> {
    let lev = Decimal::from(c.leverage.max(1));
    let (field, pct) = match c.side {
        Side::Short => ("take_profit", c.take_profit),
        Side::Long => ("stop_loss", c.stop_loss),
    };
    (pct / lev >= dec!(100)).then(|| {
        (
            field,
            format!(
                "at {}x leverage must be below {} for a {} bot (the price would reach zero)",
                c.leverage,
                dec!(100) * lev,
                side_name(c.side)
            ),
        )
    })
}

/// The trading rules of docs/bots.md, Configuration, for fields not already
/// refused on their own: a take-profit above the round-trip fees, a stop-loss
/// beyond the deepest leg.
fn check_rules(c: &BotConfig, p: &mut Problems) {
    let free = |p: &Problems, keys: &[&str]| keys.iter().all(|k| !p.contains_key(*k));
    if free(p, &["take_profit", "leverage", "exchange"]) {
        if let Some(fees) = rules::fees(&c.exchange) {
            if let Err(msg) = rules::check_take_profit(c.take_profit, fees, c.leverage) {
                p.insert("take_profit".into(), msg);
            }
        }
    }
    if free(p, &["stop_loss", "leverage", "grids", "rounds", "side"]) {
        let grids: Vec<(Decimal, Decimal)> = c.grids.iter().map(|g| (g.amount, g.gap)).collect();
        if let Err(msg) = rules::check_stop_loss(c.stop_loss, c.leverage, c.side, &grids, c.rounds)
        {
            p.insert("stop_loss".into(), msg);
        }
    }
}

fn check_rounds(rounds: usize, legs: usize) -> Result<(), String> {
    if rounds >= 1 && rounds <= legs {
        Ok(())
    } else {
        Err(format!(
            "must be between 1 and the number of grid legs ({legs})"
        ))
    }
}

fn apply_field(c: &mut BotConfig, key: &str, v: &Value) -> Result<(), String> {
    match key {
        "exchange" => c.exchange = exchange(v)?,
        "symbol" => c.symbol = symbol(v)?,
        "side" => {
            c.side = v
                .as_str()
                .and_then(parse_side)
                .ok_or("must be \"long\" or \"short\"")?
        }
        "leverage" => c.leverage = integer(v, 1, u64::from(MAX_LEVERAGE))? as u32,
        // 0 passes here: the lower bound is the round-trip fees at the
        // leverage (`check_rules`), whose error names the minimum.
        "take_profit" => {
            c.take_profit = money::from_json(v)
                .filter(|n| *n >= Decimal::ZERO && *n <= MAX_PCT)
                .ok_or_else(|| format!("must be a number greater than 0 and at most {MAX_PCT}"))?
        }
        "stop_loss" => c.stop_loss = number(v, Decimal::ZERO, MAX_PCT, true)?,
        "rounds" => c.rounds = integer(v, 1, MAX_GRIDS as u64)? as usize,
        "grids" => c.grids = grids(v)?,
        "repeat" => c.repeat = v.as_bool().ok_or("must be true or false")?,
        "telegram_chat_id" => c.telegram_chat_id = chat_id(v)?,
        "after_stop_loss" => {
            c.after_stop_loss = v
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or("must be \"stop\" or \"continue\"")?
        }
        "cooldown" => {
            let n = v.as_i64().ok_or("must be a whole number of seconds")?;
            rules::check_cooldown(n)?;
            c.cooldown = n as u32;
        }
        "max_active_legs" => {
            let n = v
                .as_i64()
                .ok_or("must be 0 (all legs) or a whole number from 1 to 50")?;
            rules::check_max_active_legs(n)?;
            c.max_active_legs = n as usize;
        }
        "trailing_take_profit" => {
            let pct = money::from_json(v)
                .ok_or("must be 0 (off) or from 0.05 to 20 (percent of the price)")?;
            rules::check_trailing(pct)?;
            c.trailing_take_profit = pct;
        }
        "api_key" | "api_secret" | "telegram_token" => {}
        // Read-only fields of the GET shape may be sent back unchanged.
        "has_api_secret" | "has_telegram_token" | "pending" => {}
        _ => return Err("unknown field".into()),
    }
    Ok(())
}

fn exchange(v: &Value) -> Result<String, String> {
    match v.as_str() {
        Some(s) if EXCHANGES.contains(&s) => Ok(s.to_string()),
        _ => Err("must be one of paper, bybit, bingx".into()),
    }
}

/// `BASE/QUOTE` in upper-case letters and digits, e.g. `BTC/USDT`.
pub fn symbol(v: &Value) -> Result<String, String> {
    let err = || "must look like BTC/USDT".to_string();
    let s = v.as_str().ok_or_else(err)?;
    let (base, quote) = s.split_once('/').ok_or_else(err)?;
    let part_ok = |p: &str| {
        (1..=20).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    if part_ok(base) && part_ok(quote) {
        Ok(s.to_string())
    } else {
        Err(err())
    }
}

fn integer(v: &Value, min: u64, max: u64) -> Result<u64, String> {
    let msg = || format!("must be a whole number from {min} to {max}");
    let n = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(msg)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(msg())
    }
}

/// A number in `[min, max]`, read from its JSON text; `min` itself only when
/// `zero_ok`.
fn number(v: &Value, min: Decimal, max: Decimal, zero_ok: bool) -> Result<Decimal, String> {
    match money::from_json(v) {
        Some(n) if n <= max && (n > min || (zero_ok && n == min)) => Ok(n),
        _ if zero_ok => Err(format!("must be a number from {min} to {max} (0 disables)")),
        _ => Err(format!(
            "must be a number greater than {min} and at most {max}"
        )),
    }
}

fn grids(v: &Value) -> Result<Vec<Grid>, String> {
    let items = v.as_array().ok_or("must be a list of {amount, gap}")?;
    if items.is_empty() || items.len() > MAX_GRIDS {
        return Err(format!("must have 1 to {MAX_GRIDS} legs"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| item.get(name).and_then(money::from_json);
            let amount = field("amount").filter(|a| *a > Decimal::ZERO);
            let gap = field("gap");
            let Some(amount) = amount else {
                return Err(format!(
                    "leg {}: amount must be a number greater than 0",
                    i + 1
                ));
            };
            match gap {
                // The entry (a market order) has no gap, so any number, or none, will do.
                _ if i == 0 => Ok(Grid {
                    amount,
                    gap: gap.unwrap_or(Decimal::ZERO),
                }),
                Some(gap) if gap > Decimal::ZERO && gap < dec!(100) => Ok(Grid { amount, gap }),
                _ => Err(format!(
                    "leg {}: gap must be a percent greater than 0 and below 100",
                    i + 1
                )),
            }
        })
        .collect()
}

fn chat_id(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) if n.is_i64() => Ok(Some(n.to_string())),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.len() <= MAX_CHAT_ID && !s.chars().any(char::is_whitespace) => {
            Ok(Some(s.clone()))
        }
        _ => Err("must be a Telegram chat id (a number or @channel)".into()),
    }
}

fn secret(body: &Map<String, Value>, name: &str, p: &mut Problems) -> Option<String> {
    secret_value(body.get(name)).unwrap_or_else(|msg| {
        p.insert(name.into(), msg);
        None
    })
}

/// A write-only secret as sent (an exchange key or secret, a Telegram token):
/// `None` when absent, empty or the masked `***abcd` of the GET shape (which keeps
/// the stored one), else the trimmed string; an error for anything else.
pub fn secret_value(v: Option<&Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        // The GET shape sent back unchanged (`"api_key": "***abcd"`) keeps the key.
        Some(Value::String(s)) if s.starts_with("***") => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_SECRET && !s.chars().any(char::is_control) => {
            Ok(Some(s.trim().to_string()))
        }
        Some(_) => Err(format!(
            "must be a string of at most {MAX_SECRET} characters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BotConfig {
        BotConfig::default()
    }

    fn update(v: Value) -> Result<(BotConfig, SecretUpdate), Problems> {
        apply_update(&base(), v.as_object().unwrap())
    }

    #[test]
    fn partial_updates_keep_other_fields() {
        let (c, s) = update(json!({"leverage": 20, "side": "short"})).unwrap();
        assert_eq!(
            (c.leverage, c.side, c.symbol.as_str()),
            (20, Side::Short, "BTC/USDT")
        );
        assert!(s.is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let p = update(json!({
            "exchange": "ftx", "symbol": "btc-usdt", "side": "up", "leverage": 126,
            "take_profit": -1, "stop_loss": -1, "repeat": "yes", "colour": 1,
            "grids": [{"amount": 0, "gap": 0}]
        }))
        .unwrap_err();
        let names: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "colour",
                "exchange",
                "grids",
                "leverage",
                "repeat",
                "side",
                "stop_loss",
                "symbol",
                "take_profit"
            ]
        );
    }

    #[test]
    fn rounds_cannot_exceed_the_legs() {
        assert!(update(json!({"rounds": 4}))
            .unwrap_err()
            .contains_key("rounds"));
        let p = update(json!({"grids": [{"amount": 5, "gap": 0}]})).unwrap_err();
        assert!(p.contains_key("grids"), "3 rounds, 1 leg: {p:?}");
        let (c, _) = update(json!({"grids": [{"amount": 5}], "rounds": 1})).unwrap();
        assert_eq!((c.rounds, c.grids.len()), (1, 1));
        assert!(
            update(json!({"grids": [{"amount": 5, "gap": 0}, {"amount": 5, "gap": 0}]}))
                .unwrap_err()["grids"]
                .contains("leg 2")
        );
    }

    #[test]
    fn secrets_are_taken_but_never_shown() {
        let (_, s) =
            update(json!({"api_key": "abcdefgh1234", "api_secret": "s", "telegram_token": ""}))
                .unwrap();
        assert_eq!(s.api_key.as_deref(), Some("abcdefgh1234"));
        assert_eq!(s.telegram_token, None);
        let shown = StoredConfig {
            bot: BotRef {
                user_id: 1,
                bot_id: 1,
            },
            name: "Default".into(),
            exchange_account_id: Some(1),
            config: base(),
            api_key_last4: Some("1234".into()),
            has_api_key: true,
            has_api_secret: true,
            has_telegram_token: false,
            has_pending: false,
        }
        .to_json();
        assert_eq!(shown["api_key"], "***1234");
        assert_eq!(shown["has_api_secret"], true);
        assert!(!shown.to_string().contains("abcdefgh"));
    }

    #[test]
    fn the_get_shape_can_be_sent_back_and_prices_stay_above_zero() {
        let (_, s) = update(json!({"api_key": "***1234", "has_api_secret": true})).unwrap();
        assert!(s.is_empty(), "the mask is not a key");
        let p = update(json!({"take_profit": 0})).unwrap_err();
        assert!(p["take_profit"].contains("above 0.75"), "{p:?}");
        let (c, _) =
            update(json!({"take_profit": 0.8, "grids": [{"amount": 0.3}], "rounds": 1})).unwrap();
        assert_eq!((c.take_profit, c.grids[0].amount), (dec!(0.8), dec!(0.3)));
        let p = update(json!({"side": "short", "leverage": 2, "take_profit": 200})).unwrap_err();
        assert!(p["take_profit"].contains("below 200"), "{p:?}");
        assert!(update(json!({"side": "short", "leverage": 3, "take_profit": 200})).is_ok());
        assert!(update(json!({"leverage": 1, "stop_loss": 100}))
            .unwrap_err()
            .contains_key("stop_loss"));
    }

    #[test]
    fn the_trading_rules_name_their_fields() {
        // Paper fees at 10x: 0.75 % of margin for the round trip.
        let p = update(json!({"take_profit": 0.75})).unwrap_err();
        assert!(p["take_profit"].contains("above 0.75"), "{p:?}");
        assert!(update(json!({"take_profit": 0.76})).is_ok());
        // Legs 1 % and 2 % deeper: a 1 % ROE stop at 10x fires before they fill.
        let p = update(json!({"stop_loss": 1})).unwrap_err();
        assert!(p["stop_loss"].contains("deepest leg"), "{p:?}");
        assert!(update(json!({"stop_loss": 50})).is_ok());
        let p = update(json!({"cooldown": -1, "max_active_legs": 51,
            "trailing_take_profit": 0.01, "after_stop_loss": "pause"}))
        .unwrap_err();
        let names: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "after_stop_loss",
                "cooldown",
                "max_active_legs",
                "trailing_take_profit"
            ]
        );
        let (c, _) = update(json!({"cooldown": 60, "max_active_legs": 1,
            "trailing_take_profit": 0.5, "after_stop_loss": "continue"}))
        .unwrap();
        assert_eq!(
            (
                c.cooldown,
                c.max_active_legs,
                c.trailing_take_profit,
                c.after_stop_loss
            ),
            (60, 1, dec!(0.5), AfterStopLoss::Continue)
        );
        let shown = settings_json(&c);
        assert_eq!(shown["after_stop_loss"], "continue");
        assert_eq!(shown["trailing_take_profit"], json!(0.5));
    }

    #[test]
    fn symbols_and_chat_ids() {
        assert!(symbol(&json!("ETH/USDT")).is_ok());
        for bad in ["ETHUSDT", "eth/usdt", "/USDT", "BTC/", "B TC/USDT"] {
            assert!(symbol(&json!(bad)).is_err(), "{bad}");
        }
        let (c, _) = update(json!({"telegram_chat_id": -1001234})).unwrap();
        assert_eq!(c.telegram_chat_id.as_deref(), Some("-1001234"));
        assert!(update(json!({"telegram_chat_id": "a b"})).is_err());
    }
}

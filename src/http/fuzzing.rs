//! Entry points for the fuzz targets in `fuzz/` (docs/operations.md, Fuzzing): the
//! request-body readers are private to `http`, so this wrapper drives them the way
//! the handlers do and panics when a property fails. Not an API.

use blitz_worker::{Peer, Request, Version};
use serde_json::Value;

use super::input::{self, FieldErrors};
use crate::bots::config::{self, BotConfig, Grid, StoredConfig};
use crate::bots::ladder::Side;
use crate::bots::status::StopMode;

/// Field names the JSON endpoints read.
const FIELDS: [&str; 12] = [
    "email",
    "password",
    "token",
    "current_password",
    "new_password",
    "name",
    "mode",
    "message",
    "is_admin",
    "disabled",
    "verified",
    "keep_tokens",
];

/// Reads `body` as every JSON endpoint does: the object, its typed fields, a stop
/// mode and a bot-configuration update. An accepted update, shown as `GET` shows it
/// and sent back, must be accepted again and give the same configuration.
pub fn json_body(body: &[u8]) {
    let req = Request {
        method: "POST",
        path: "/",
        query: "",
        version: Version::Http11,
        headers: &[],
        body,
        peer: Peer::Unix,
    };
    let Ok(input) = input::json(&req) else {
        return;
    };
    let mut errors = FieldErrors::default();
    for name in FIELDS {
        input.string(name, &mut errors);
        input.opt_string(name, &mut errors);
        input.opt_bool(name, &mut errors);
        input.label(name, false, &mut errors);
    }
    if let Some(mode) = input.opt_string("mode", &mut errors) {
        let _ = mode.parse::<StopMode>();
    }
    let _ = errors.finish();
    let base = sample_config();
    if let Ok((updated, _secrets)) = config::apply_update(&base, input.fields()) {
        let shown = StoredConfig {
            bot: crate::bots::ids::BotRef {
                user_id: 1,
                bot_id: 1,
            },
            name: "Default".into(),
            exchange_account_id: None,
            config: updated.clone(),
            api_key_last4: None,
            has_api_key: false,
            has_api_secret: false,
            has_telegram_token: false,
            has_pending: false,
        }
        .to_json();
        let Value::Object(shown) = shown else {
            panic!("the shown configuration is not an object");
        };
        match config::apply_update(&base, &shown) {
            Ok((again, _)) => assert_eq!(again, updated, "re-sent configuration differs"),
            Err(p) => panic!("the shown configuration is refused: {p:?}"),
        }
    }
}

/// Reads `text` as a query string and as a urlencoded form body.
pub fn query_and_form(text: &[u8]) {
    let query = String::from_utf8_lossy(text);
    for name in ["limit", "offset", "csrf_token"] {
        let _ = input::query_number(&query, name, 0, 1000, 50);
        let _ = input::form_field(text, name);
    }
}

fn sample_config() -> BotConfig {
    BotConfig {
        exchange: "paper".into(),
        symbol: "BTC/USDT".into(),
        side: Side::Long,
        leverage: 10,
        take_profit: crate::money::dec!(5),
        stop_loss: crate::money::dec!(0),
        after_stop_loss: Default::default(),
        cooldown: 0,
        max_active_legs: 0,
        trailing_take_profit: crate::money::dec!(0),
        rounds: 2,
        grids: vec![
            Grid {
                amount: crate::money::dec!(10),
                gap: crate::money::dec!(0),
            },
            Grid {
                amount: crate::money::dec!(20),
                gap: crate::money::dec!(1.5),
            },
        ],
        repeat: true,
        telegram_chat_id: None,
    }
}

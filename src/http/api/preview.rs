//! `POST /api/bots/<id>/preview` (docs/http-api.md, Configuration preview): a
//! partial configuration, validated exactly as `PUT /api/bots/<id>/config` would
//! (`config::apply_update` and the catalogue's rule, from the configuration a save
//! would build on), answered with what it means in money and price
//! (`bots::preview`) instead of being saved. The settings page shows it live.

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::{bot_config, owned, ApiError, ApiResult};
use crate::bots::config::{self, BotConfig};
use crate::bots::ladder::Market;
use crate::bots::preview;
use crate::exchange::paper::listings;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::market::catalogue::{self, Listed, MarketInfo, Source};
use crate::money::dec;
use crate::store::{bot_config as stored, bots, trades};

/// A maintenance margin rate for markets the paper exchange does not list: the
/// first tier of the large USDT perpetuals (0.5 %), for an estimate only.
const DEFAULT_MMR: Decimal = dec!(0.005);

/// Fields of the request that are not configuration.
const NOT_CONFIG: [&str; 4] = ["price", "api_key", "api_secret", "telegram_token"];

pub fn preview(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let bot = owned::bot(ctx)?;
    let body = input::json(ctx.req)?;
    let price = given_price(body.fields())?;
    let fields: Map<String, Value> = body
        .fields()
        .iter()
        .filter(|(k, _)| !NOT_CONFIG.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let conn = ctx.db.conn()?;
    let Some(saved) = stored::load(&conn, bot.id)? else {
        return Err(owned::not_found());
    };
    let running = bots::get(&conn, bot.id)?.is_some_and(|row| row.status.is_active());
    let base = bot_config::update_base(&conn, bot.id, &saved.config, running)?;
    let (c, _) = config::apply_update(&base, &fields).map_err(|f| reply::invalid_fields(&f))?;
    let applies =
        bot_config::names_market(&fields) || bot_config::market_differs(&saved.config, &c);
    let info = market_of(ctx, &conn, &c, applies)?;
    let reference = reference_price(&conn, &c, price.or(info.last_price))?;
    let market = Market {
        tick: info.tick_size,
        step: info.qty_step,
        min_qty: info.min_qty,
        min_notional: info.min_notional,
    };
    let mmr = listings::margin_rate_and_start(&c.symbol).map_or(DEFAULT_MMR, |p| p.0);
    let mut out = preview::preview(&c, reference, &market, mmr).to_json();
    out["exchange"] = json!(c.exchange);
    out["symbol"] = json!(c.symbol);
    out["side"] = json!(config::side_name(c.side));
    out["leverage"] = json!(c.leverage);
    Ok(reply::json(200, &out))
}

/// The price the ladder is entered at: the given or last price, else the last
/// one traded here, else the paper exchange's start price; 503 when none is known.
fn reference_price(
    conn: &crate::store::Conn,
    c: &BotConfig,
    known: Option<Decimal>,
) -> Result<Decimal, ApiError> {
    let reference = match known {
        Some(p) => Some(p),
        None => trades::price(conn, &c.exchange, &c.symbol)?
            .or(listings::margin_rate_and_start(&c.symbol).map(|p| p.1)),
    };
    reference.filter(|p| *p > Decimal::ZERO).ok_or_else(|| {
        reply::json(
            503,
            &json!({"success": false, "status": "unavailable",
                    "error": format!("no price is known for {} yet", c.symbol)}),
        )
        .into()
    })
}

/// The optional `price` to preview at (default: the market's last price).
fn given_price(fields: &Map<String, Value>) -> Result<Option<Decimal>, ApiError> {
    let Some(v) = fields.get("price").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match crate::money::from_json(v).filter(|p| *p > Decimal::ZERO) {
        Some(p) => Ok(Some(p)),
        None => {
            let mut e = FieldErrors::default();
            e.add("price", "must be a number above 0");
            Err(match e.finish() {
                Err(r) => r.into(),
                Ok(()) => reply::error(400, "Invalid input").into(),
            })
        }
    }
}

/// The market of `c` in its exchange's catalogue, under the catalogue's rule
/// when a save would apply it (`applies`: unknown symbol, leverage above the
/// maximum → 400).
fn market_of(
    ctx: &Ctx<'_, '_>,
    conn: &crate::store::Conn,
    c: &BotConfig,
    applies: bool,
) -> Result<MarketInfo, ApiError> {
    let source = Source::of(&c.exchange, &ctx.config.paper_prices);
    let listed = match source {
        Some(s) => catalogue::cached(conn, s, &c.symbol)?,
        None => Listed::Unknown,
    };
    if applies {
        bot_config::catalogue_rule(&c.exchange, &c.symbol, c.leverage, &listed)?;
    }
    match listed {
        Listed::Yes(info) => Ok(info),
        _ => Err(reply::json(
            503,
            &json!({"success": false, "status": "unavailable",
                    "error": format!("the market rules of {} on {} are not known now",
                                     c.symbol, c.exchange)}),
        )
        .into()),
    }
}

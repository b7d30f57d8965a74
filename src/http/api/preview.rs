//! `POST /api/bots/<id>/preview` (docs/http-api.md, Configuration preview): a
//! partial configuration, validated exactly as `PUT /api/bots/<id>/config` would
//! (`config::apply_update` and the catalogue's rule, from the configuration a save
//! would build on), answered with what it means in money and price
//! (`bots::preview`) instead of being saved. The settings page shows it live.

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
use crate::store::{bot_config as stored, trades};

/// A maintenance margin rate for markets the paper exchange does not list: the
/// first tier of the large USDT perpetuals (0.5 %), for an estimate only.
const DEFAULT_MMR: rust_decimal::Decimal = dec!(0.005);

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
    let base = stored::load_pending(&conn, bot.id)?.unwrap_or(saved.config);
    let (c, _) = config::apply_update(&base, &fields).map_err(|f| reply::invalid_fields(&f))?;
    let info = market_of(ctx, &conn, &c)?;
    let market = Market {
        tick: info.tick_size,
        step: info.qty_step,
        min_qty: info.min_qty,
        min_notional: info.min_notional,
    };
    let paper = listings::margin_rate_and_start(&c.symbol);
    let reference = match price.or(info.last_price) {
        Some(p) => Some(p),
        None => trades::price(&conn, &c.exchange, &c.symbol)?.or(paper.map(|p| p.1)),
    };
    let Some(reference) = reference.filter(|p| *p > rust_decimal::Decimal::ZERO) else {
        return Err(reply::json(
            503,
            &json!({"success": false, "status": "unavailable",
                    "error": format!("no price is known for {} yet", c.symbol)}),
        )
        .into());
    };
    let mmr = paper.map_or(DEFAULT_MMR, |p| p.0);
    let mut out = preview::preview(&c, reference, &market, mmr).to_json();
    out["exchange"] = json!(c.exchange);
    out["symbol"] = json!(c.symbol);
    out["side"] = json!(config::side_name(c.side));
    out["leverage"] = json!(c.leverage);
    Ok(reply::json(200, &out))
}

/// The optional `price` to preview at (default: the market's last price).
fn given_price(fields: &Map<String, Value>) -> Result<Option<rust_decimal::Decimal>, ApiError> {
    let Some(v) = fields.get("price").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match crate::money::from_json(v).filter(|p| *p > rust_decimal::Decimal::ZERO) {
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

/// The market of `c` in its exchange's catalogue, under the catalogue's rule of
/// a save (unknown symbol, leverage above the maximum → 400).
fn market_of(
    ctx: &Ctx<'_, '_>,
    conn: &rusqlite::Connection,
    c: &BotConfig,
) -> Result<MarketInfo, ApiError> {
    let source = Source::of(&c.exchange, &ctx.config.paper_prices);
    let listed = match source {
        Some(s) => catalogue::cached(conn, s, &c.symbol)?,
        None => Listed::Unknown,
    };
    bot_config::catalogue_rule(&c.exchange, &c.symbol, c.leverage, &listed)?;
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

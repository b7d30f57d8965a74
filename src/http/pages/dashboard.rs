//! `/` (`?bot=<id>` picks one of the user's bots, `&before=<event id>` pages its
//! events): the user's bots at a glance, and for the chosen bot its status card
//! (kept live by the page script polling `/api/bots/<id>/status`), state-aware
//! controls, a candle chart with the ladder drawn on it, the paper account, its
//! open orders, events in words and recent trades. See docs/http-api.md, Pages.

use askama::Template;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::frame::Frame;
use super::html::render;
use super::view::{num, signed, tone, EventRow, Status, TradeRow};
use super::words;
use super::{chosen_bot, PageResult};
use crate::exchange::paper::snapshot;
use crate::http::api::bot::status_json;
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::market::candle_cache;
use crate::market::candles::Interval;
use crate::market::catalogue::{self, Listed, Source};
use crate::money;
use crate::store::bots::Event;
use crate::store::user_bots::{self, BotInfo};
use crate::store::{self, bot_config, bots, trades};

/// How many events and trades the dashboard lists.
const RECENT: u32 = 10;
/// Candles the chart opens with (two hours of minutes).
const CANDLES: usize = 120;

/// One row of the bots list.
struct BotCard {
    id: i64,
    name: String,
    status: String,
    market: String,
    pnl: String,
    tone: &'static str,
    position: String,
    selected: bool,
}

/// The paper account's money, as the card shows it.
struct Account {
    balance: String,
    equity: String,
    available: String,
    unrealized: String,
    tone: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html", config = "src/http/pages/askama.toml")]
struct Dashboard {
    frame: Frame,
    bots: Vec<BotCard>,
    bot_id: i64,
    bot_name: String,
    status: Status,
    /// The status object for the page script's first drawing (`data-status`).
    status_json: String,
    exchange: String,
    symbol: String,
    /// `[[t_ms, o, h, l, c, v], …]` for the chart's first drawing (`data-candles`).
    candles: String,
    /// The market's price step (`data-tick`), empty when unknown.
    tick: String,
    account: Option<Account>,
    events: Vec<EventRow>,
    /// The link to the next page of older events, when there are more.
    older: Option<String>,
    trades: Vec<TradeRow>,
    /// The reason codes in words, for the page script (`data-words`).
    words: String,
    /// The take-profit price is where trailing starts (docs/bots.md, Strategy).
    trailing: bool,
}

pub fn dashboard(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let before = input::query_param(ctx.req.query, "before").and_then(|b| b.parse::<i64>().ok());
    let conn = ctx.db.conn()?;
    let list = user_bots::list(&conn, uid)?;
    let chosen = chosen_bot::pick(&list, ctx.req.query)?;
    let bot = chosen.id;
    let status = store::read(&conn, |c| status_json(c, bot))?;
    let cards = store::read(&conn, |c| bot_cards(c, uid, &list, bot))?;
    let mut events = bots::events(&conn, bot, RECENT + 1, before)?;
    let older = older_link(bot, &mut events);
    let trades = trades::list(&conn, uid, Some(bot), RECENT, None)?;
    let trailing = bot_config::load(&conn, bot)?
        .is_some_and(|c| c.config.trailing_take_profit > Decimal::ZERO);
    let account = paper_account(&conn, uid);
    drop(conn);
    let exchange = status["exchange"].as_str().unwrap_or("paper").to_string();
    let symbol = status["symbol"].as_str().unwrap_or("BTC/USDT").to_string();
    let candles = first_candles(ctx, &exchange, &symbol);
    let tick = tick_size(ctx, &exchange, &symbol);
    Ok(render(
        200,
        &Dashboard {
            frame: Frame::for_user(&ctx.identity, "Dashboard", "dashboard", &ctx.page_notice)
                .with_chart(),
            bots: cards,
            bot_id: bot,
            bot_name: chosen.name.clone(),
            status: Status::from_json(&status),
            status_json: status.to_string(),
            exchange,
            symbol,
            candles,
            tick,
            account,
            events: events.iter().map(EventRow::from).collect(),
            older,
            trades: trades.iter().map(TradeRow::from).collect(),
            words: words::script_tables(),
            trailing,
        },
    ))
}

/// Keeps the first `RECENT` of `events` (read one more to know whether there are
/// older ones) and links to the page after them when there are.
fn older_link(bot: i64, events: &mut Vec<Event>) -> Option<String> {
    let more = events.len() > RECENT as usize;
    events.truncate(RECENT as usize);
    events
        .last()
        .filter(|_| more)
        .map(|e| format!("/?bot={bot}&before={}", e.id))
}

/// The user's paper account, when it can be read.
fn paper_account(conn: &crate::store::Conn, uid: i64) -> Option<Account> {
    snapshot::read(conn, uid).ok().map(|a| Account {
        balance: num(a.balance),
        equity: num(a.equity),
        available: num(a.available),
        unrealized: signed(a.unrealized_pnl),
        tone: tone(a.unrealized_pnl),
    })
}

/// The market's price step as text (`0.1`), so the chart shows prices with the
/// market's decimals; empty when the catalogue cannot say.
fn tick_size(ctx: &mut Ctx<'_, '_>, exchange: &str, symbol: &str) -> String {
    let Some(src) = Source::of(exchange, &ctx.config.paper_prices) else {
        return String::new();
    };
    let listed = ctx
        .db
        .conn()
        .ok()
        .and_then(|conn| catalogue::cached(&conn, src, symbol).ok());
    match listed {
        Some(Listed::Yes(info)) => money::text(info.tick_size),
        _ => String::new(),
    }
}

/// The bots list: status, market, total PnL and position of each.
fn bot_cards(
    conn: &crate::store::Conn,
    uid: i64,
    list: &[BotInfo],
    selected: i64,
) -> Result<Vec<BotCard>, crate::http::api::ApiError> {
    let totals = trades::total_pnl_by_bot(conn, uid)?;
    list.iter()
        .map(|b| {
            let row = bots::get(conn, b.id)?;
            let pnl = totals.get(&b.id).copied().unwrap_or(Decimal::ZERO);
            let position = match &row {
                Some(r) if r.position_size > Decimal::ZERO => {
                    format!("{} @ {}", num(r.position_size), num(r.position_avg))
                }
                _ => "flat".to_string(),
            };
            Ok(BotCard {
                id: b.id,
                name: b.name.clone(),
                status: row.map_or(b.status, |r| r.status).as_str().to_string(),
                market: format!("{} · {} · {}", b.exchange, b.symbol, b.side),
                pnl: signed(pnl),
                tone: tone(pnl),
                position,
                selected: b.id == selected,
            })
        })
        .collect()
}

/// The chart's first candles as JSON; `[]` when the market data cannot be read
/// now (the page script asks again).
fn first_candles(ctx: &mut Ctx<'_, '_>, exchange: &str, symbol: &str) -> String {
    let Some(src) = Source::of(exchange, &ctx.config.paper_prices) else {
        return "[]".into();
    };
    let Ok(mut conn) = ctx.db.conn() else {
        return "[]".into();
    };
    let until = std::time::Instant::now() + crate::market::refresh::FETCH_BUDGET;
    let settings = candle_cache::Settings {
        rest: &ctx.config.exchanges,
        refresh_ms: ctx.config.candles_refresh_ms,
        until,
    };
    match candle_cache::candles(
        &mut conn,
        src,
        symbol,
        Interval::M1,
        CANDLES,
        settings,
        ctx.log,
    ) {
        Ok(Some(list)) => {
            Value::from(list.iter().map(|c| c.to_json()).collect::<Vec<_>>()).to_string()
        }
        _ => json!([]).to_string(),
    }
}

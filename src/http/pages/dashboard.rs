//! `/`: the default bot's status card (kept live by the page script polling
//! `/api/bot/status`), the four controls, the open orders (from `/api/bot/orders`,
//! read by the script), its recent events, and the user's recent trades.

use askama::Template;

use super::frame::Frame;
use super::html::render;
use super::view::{EventRow, Status, TradeRow};
use super::words;
use super::PageResult;
use crate::http::api::bot::{default_bot, status_json};
use crate::http::ctx::Ctx;
use crate::store::{self, bot_config, bots, trades};

/// How many events and trades the dashboard lists.
const RECENT: u32 = 10;

#[derive(Template)]
#[template(path = "dashboard.html", config = "src/http/pages/askama.toml")]
struct Dashboard {
    frame: Frame,
    status: Status,
    events: Vec<EventRow>,
    trades: Vec<TradeRow>,
    /// The reason codes in words, for the page script (`data-words`).
    words: String,
    /// The take-profit price is where trailing starts (docs/bots.md, Strategy).
    trailing: bool,
}

pub fn dashboard(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let conn = ctx.db.conn()?;
    let bot = default_bot(&conn, uid)?.bot_id;
    let status = store::read(&conn, |c| status_json(c, bot))?;
    let events = bots::events(&conn, bot, RECENT, None)?;
    let trades = trades::list(&conn, uid, None, RECENT, None)?;
    let trailing = bot_config::load(&conn, bot)?
        .is_some_and(|c| c.config.trailing_take_profit > rust_decimal::Decimal::ZERO);
    Ok(render(
        200,
        &Dashboard {
            frame: Frame::for_user(&ctx.identity, "Dashboard", "dashboard", &ctx.page_notice),
            status: Status::from_json(&status),
            events: events.iter().map(EventRow::from).collect(),
            trades: trades.iter().map(TradeRow::from).collect(),
            words: words::script_tables(),
            trailing,
        },
    ))
}

//! `/`: the bot's status card (kept live by the page script polling
//! `/api/bot/status`), the four controls, the open orders (from `/api/bot/orders`,
//! read by the script), recent events and trades.

use askama::Template;

use super::frame::Frame;
use super::html::render;
use super::view::{EventRow, Status, TradeRow};
use super::words;
use super::PageResult;
use crate::bots::config;
use crate::http::api::bot::status_json;
use crate::http::ctx::Ctx;
use crate::store::{self, bots, trades};

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
    let status = store::read(&conn, |c| status_json(c, uid))?;
    let events = bots::events(&conn, uid, RECENT, None)?;
    let trades = trades::list(&conn, uid, RECENT, None)?;
    let trailing = config::load(&conn, uid)?
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

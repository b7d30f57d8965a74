//! `/pnl`: the daily PnL chart, win/loss, best and worst day and the daily table
//! for a chosen period, from the same summary as `GET /api/pnl/summary`, and the
//! latest closed trades with how each closed and its funding.

use askama::Template;

use super::chart;
use super::frame::Frame;
use super::html::render;
use super::view::{signed, tone, TradeRow};
use super::PageResult;
use crate::bots::pnl::{self, Summary};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::store::trades;

/// How many of the latest trades the page lists.
const LATEST: u32 = 20;

/// The periods the filter offers, in days.
pub const PERIODS: [u32; 4] = [7, 30, 90, 365];

pub struct DayRow {
    pub date: String,
    pub pnl: String,
    pub tone: &'static str,
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
}

/// The summary as text, shared with the admin user page.
pub struct PnlView {
    pub days: u32,
    pub total: String,
    pub total_tone: &'static str,
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: String,
    pub best: String,
    pub worst: String,
    pub chart: String,
    pub win_loss: String,
    pub first: String,
    pub last: String,
    /// Days with trades, newest first.
    pub rows: Vec<DayRow>,
}

impl PnlView {
    pub fn new(s: &Summary) -> PnlView {
        let day = |d: &Option<pnl::DayPnl>| {
            d.as_ref()
                .map_or_else(|| "-".into(), |d| format!("{} ({})", signed(d.pnl), d.date))
        };
        PnlView {
            days: s.days,
            total: signed(s.total_pnl),
            total_tone: tone(s.total_pnl),
            trades: s.total_trades,
            wins: s.wins,
            losses: s.losses,
            win_rate: format!("{:.1} %", s.win_rate),
            best: day(&s.best_day),
            worst: day(&s.worst_day),
            chart: chart::daily(&s.daily),
            win_loss: chart::win_loss(s.wins, s.losses),
            first: s.daily.first().map(|d| d.date.clone()).unwrap_or_default(),
            last: s.daily.last().map(|d| d.date.clone()).unwrap_or_default(),
            rows: s
                .daily
                .iter()
                .rev()
                .filter(|d| d.trades > 0)
                .map(|d| DayRow {
                    date: d.date.clone(),
                    pnl: signed(d.pnl),
                    tone: tone(d.pnl),
                    trades: d.trades,
                    wins: d.wins,
                    losses: d.losses,
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "pnl.html", config = "src/http/pages/askama.toml")]
struct PnlPage {
    frame: Frame,
    periods: [u32; 4],
    pnl: PnlView,
    trades: Vec<TradeRow>,
}

/// The period of the `days` query parameter, if it is one the filter offers.
fn period(query: &str) -> u32 {
    input::query_param(query, "days")
        .and_then(|d| d.parse().ok())
        .filter(|d| PERIODS.contains(d))
        .unwrap_or(30)
}

/// The summary of `uid`'s bots (or everyone's) over the last `days` days, UTC.
pub fn summary(
    conn: &rusqlite::Connection,
    uid: Option<i64>,
    days: u32,
) -> Result<Summary, super::PageError> {
    let window =
        pnl::window("UTC", days, jiff::Timestamp::now()).map_err(|_| super::PageError::NotFound)?;
    let scope = trades::Scope {
        user: uid,
        bot: None,
    };
    let rows = trades::closed_since(conn, scope, window.since)?;
    Ok(window.summarise(&rows))
}

pub fn pnl_page(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let days = period(ctx.req.query);
    let conn = ctx.db.conn()?;
    let s = summary(&conn, Some(uid), days)?;
    let latest = trades::list(&conn, uid, None, LATEST, None)?;
    drop(conn);
    Ok(render(
        200,
        &PnlPage {
            frame: Frame::for_user(&ctx.identity, "PnL", "pnl", &ctx.page_notice),
            periods: PERIODS,
            pnl: PnlView::new(&s),
            trades: latest.iter().map(TradeRow::from).collect(),
        },
    ))
}

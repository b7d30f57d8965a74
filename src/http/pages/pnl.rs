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
    /// The equity (cumulative PnL) curve.
    pub equity: String,
    /// What one bar is: `day`, `week` or `month`.
    pub group: &'static str,
    pub win_loss: String,
    pub first: String,
    pub last: String,
    /// Days with trades, newest first.
    pub rows: Vec<DayRow>,
}

/// What a bar of the PnL chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Day,
    Week,
    Month,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Day => "day",
            Group::Week => "week",
            Group::Month => "month",
        }
    }

    fn parse(s: &str) -> Option<Group> {
        [Group::Day, Group::Week, Group::Month]
            .into_iter()
            .find(|g| g.name() == s)
    }

    /// Bars that stay readable: days up to a month, then weeks, then months.
    pub fn for_days(days: u32) -> Group {
        match days {
            0..=31 => Group::Day,
            32..=120 => Group::Week,
            _ => Group::Month,
        }
    }

    /// The bar a `YYYY-MM-DD` day falls in: itself, its week's Monday
    /// (`2026-11-23 week`) or its month (`2026-11`).
    fn key(self, date: &str) -> String {
        match self {
            Group::Day => date.to_string(),
            Group::Month => date.get(..7).unwrap_or(date).to_string(),
            Group::Week => date
                .parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| {
                    let back = i64::from(d.weekday().to_monday_zero_offset());
                    d.checked_sub(jiff::Span::new().days(back)).ok()
                })
                .map_or_else(|| date.to_string(), |monday| format!("week of {monday}")),
        }
    }
}

/// The days summed into bars of `group`, in order.
pub fn grouped(days: &[pnl::Day], group: Group) -> Vec<pnl::Day> {
    let mut out: Vec<pnl::Day> = Vec::new();
    for d in days {
        let key = group.key(&d.date);
        match out.last_mut() {
            Some(last) if last.date == key => {
                last.pnl += d.pnl;
                last.trades += d.trades;
                last.wins += d.wins;
                last.losses += d.losses;
            }
            _ => out.push(pnl::Day {
                date: key,
                ..d.clone()
            }),
        }
    }
    out
}

impl PnlView {
    pub fn new(s: &Summary) -> PnlView {
        PnlView::grouped_by(s, Group::for_days(s.days))
    }

    pub fn grouped_by(s: &Summary, group: Group) -> PnlView {
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
            chart: chart::daily(&grouped(&s.daily, group)),
            equity: chart::equity(&s.daily),
            group: group.name(),
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
    groups: [&'static str; 3],
    pnl: PnlView,
    trades: Vec<TradeRow>,
    /// The next page of older trades, when there is one.
    older: Option<String>,
    /// The first page, when this is not it.
    newest: Option<String>,
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
    conn: &crate::store::Conn,
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
    let q = ctx.req.query;
    let days = period(q);
    let group = input::query_param(q, "group")
        .and_then(|g| Group::parse(&g))
        .unwrap_or_else(|| Group::for_days(days));
    let before = input::query_param(q, "before").and_then(|b| b.parse::<i64>().ok());
    let conn = ctx.db.conn()?;
    let s = summary(&conn, Some(uid), days)?;
    let mut latest = trades::list(&conn, uid, None, LATEST + 1, before)?;
    drop(conn);
    let more = latest.len() > LATEST as usize;
    latest.truncate(LATEST as usize);
    let older = latest.last().filter(|_| more).map(|t| {
        format!(
            "/pnl?days={days}&group={}&before={}#latest-h",
            group.name(),
            t.id
        )
    });
    Ok(render(
        200,
        &PnlPage {
            frame: Frame::for_user(&ctx.identity, "PnL", "pnl", &ctx.page_notice),
            periods: PERIODS,
            groups: ["day", "week", "month"],
            pnl: PnlView::grouped_by(&s, group),
            trades: latest.iter().map(TradeRow::from).collect(),
            older,
            newest: before.map(|_| format!("/pnl?days={days}&group={}#latest-h", group.name())),
        },
    ))
}

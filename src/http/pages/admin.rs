//! `/admin` (users with bot status and PnL, search, force operations,
//! disable/enable, maintenance and banner) and `/admin/users/<id>`.

use askama::Template;

use super::frame::Frame;
use super::html::render;
use super::pnl::{summary, PnlView};
use super::view::{signed, time, tone, uptime, EventRow, Status, TradeRow};
use super::{PageError, PageResult};
use crate::bots::status::BotStatus;
use crate::http::api::bot::{default_bot, status_json};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::store::admin::{self, UserBot};
use crate::store::{self, bots, trades, users};

/// Users listed per page of the admin console.
const PAGE: u32 = 50;

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub verified: bool,
    pub status: BotStatus,
    pub uptime: String,
    pub market: String,
    pub pnl: String,
    pub tone: &'static str,
    pub trades: i64,
    /// The bot runs, starts or stops: Stop applies, Start does not.
    pub active: bool,
    /// Recover applies only while it runs.
    pub running: bool,
    /// Sort keys for the table's script.
    pub pnl_sort: String,
    pub uptime_s: i64,
}

impl From<&UserBot> for UserRow {
    fn from(u: &UserBot) -> UserRow {
        let secs = match (u.status.is_active(), u.started_at) {
            (true, Some(t)) => store::now() - t,
            _ => -1,
        };
        let up = if secs >= 0 { uptime(secs) } else { "-".into() };
        UserRow {
            id: u.id,
            email: u.email.clone(),
            is_admin: u.is_admin,
            disabled: u.disabled,
            verified: u.verified,
            status: u.status,
            uptime: up,
            market: format!("{} · {}", u.exchange, u.symbol),
            pnl: signed(u.pnl_total),
            tone: tone(u.pnl_total),
            trades: u.trades,
            active: u.status.is_active(),
            running: u.status == BotStatus::Running,
            pnl_sort: u.pnl_total.normalize().to_string(),
            uptime_s: secs,
        }
    }
}

#[derive(Template)]
#[template(path = "admin.html", config = "src/http/pages/askama.toml")]
struct Admin {
    frame: Frame,
    query: String,
    users: Vec<UserRow>,
    total: i64,
    next: Option<u32>,
    prev: Option<u32>,
    maintenance: bool,
    banner: String,
    totals: Totals,
}

/// The whole instance at a glance.
struct Totals {
    users: i64,
    running: i64,
    pnl: String,
    tone: &'static str,
}

fn totals(conn: &crate::store::Conn) -> Result<Totals, PageError> {
    let (_, users) = admin::search(conn, "", 1, 0)?;
    let pnl = trades::total_pnl_all(conn)?;
    Ok(Totals {
        users,
        running: bots::count_running(conn)?,
        pnl: signed(pnl),
        tone: tone(pnl),
    })
}

pub fn admin_page(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let q = ctx.req.query;
    let query = input::query_param(q, "query").unwrap_or_default();
    let offset = input::query_param(q, "offset")
        .and_then(|o| o.parse::<u32>().ok())
        .unwrap_or(0);
    let notice = ctx.notice.current(ctx.db)?.clone();
    let conn = ctx.db.conn()?;
    let (rows, total) = admin::search(&conn, query.trim(), PAGE, offset)?;
    let totals = totals(&conn)?;
    drop(conn);
    let shown = i64::from(offset) + rows.len() as i64;
    Ok(render(
        200,
        &Admin {
            frame: Frame::for_user(&ctx.identity, "Admin", "admin", &ctx.page_notice),
            users: rows.iter().map(UserRow::from).collect(),
            query,
            total,
            next: (shown < total).then(|| offset.saturating_add(PAGE)),
            prev: (offset > 0).then(|| offset.saturating_sub(PAGE)),
            maintenance: notice.maintenance,
            banner: notice.banner,
            totals,
        },
    ))
}

#[derive(Template)]
#[template(path = "admin_user.html", config = "src/http/pages/askama.toml")]
struct AdminUser {
    frame: Frame,
    user: UserFacts,
    status: Status,
    pnl: PnlView,
    events: Vec<EventRow>,
    trades: Vec<TradeRow>,
    bots: Vec<AdminBotRow>,
}

/// One of the user's bots with the operations its state allows.
pub struct AdminBotRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub market: String,
    pub active: bool,
    pub running: bool,
}

impl From<&crate::store::user_bots::BotInfo> for AdminBotRow {
    fn from(b: &crate::store::user_bots::BotInfo) -> AdminBotRow {
        AdminBotRow {
            id: b.id,
            name: b.name.clone(),
            status: b.status.as_str().to_string(),
            market: format!("{} · {} · {}", b.exchange, b.symbol, b.side),
            active: b.status.is_active(),
            running: b.status == BotStatus::Running,
        }
    }
}

pub struct UserFacts {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub verified: bool,
    pub created: String,
    pub active: bool,
    pub running: bool,
}

pub fn user_page(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let id = ctx
        .params
        .get("id")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(PageError::NotFound)?;
    let conn = ctx.db.conn()?;
    let user = users::by_id(&conn, id)?.ok_or(PageError::NotFound)?;
    let bot = default_bot(&conn, id)?.bot_id;
    let status = store::read(&conn, |c| status_json(c, bot))?;
    let pnl = summary(&conn, Some(id), 30)?;
    let events = bots::events(&conn, bot, 20, None)?;
    let trades = trades::list(&conn, id, None, 20, None)?;
    let bots = crate::store::user_bots::list(&conn, id)?;
    Ok(render(
        200,
        &AdminUser {
            frame: Frame::for_user(
                &ctx.identity,
                &format!("User {}", user.email),
                "admin",
                &ctx.page_notice,
            ),
            user: UserFacts {
                id: user.id,
                is_admin: user.is_admin,
                disabled: user.disabled,
                verified: user.verified,
                created: time(user.created_at),
                email: user.email,
                active: matches!(
                    status["status"].as_str(),
                    Some("running" | "starting" | "stopping")
                ),
                running: status["status"] == "running",
            },
            status: Status::from_json(&status),
            pnl: PnlView::new(&pnl),
            events: events.iter().map(EventRow::from).collect(),
            trades: trades.iter().map(TradeRow::from).collect(),
            bots: bots.iter().map(AdminBotRow::from).collect(),
        },
    ))
}

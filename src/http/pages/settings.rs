//! `/settings`: the bot configuration with its ladder editor, write-only exchange
//! and Telegram secrets, password change, API tokens and two-factor login. The forms are sent by the
//! page script to the JSON API, whose field errors are shown next to the fields.
//! While a change waits for the bot's next cycle the form shows that pending
//! configuration, since a save builds on it (docs/http-api.md, Bot configuration).

use askama::Template;

use super::frame::Frame;
use super::html::render;
use super::two_factor::{self, TwoFactorView};
use super::view::time;
use super::{chosen_bot, PageError, PageResult};
use crate::bots::config::{side_name, BotConfig, Grid, EXCHANGES, MAX_GRIDS};
use crate::bots::rules;
use crate::http::api::markets;
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::market::catalogue::{self, Source};
use crate::store::{bot_config, tokens, user_bots};

/// API tokens listed per page: the page stays small whatever a user holds.
const TOKENS_PAGE: i64 = 20;

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// An exchange of the select with its round-trip fees in percent of margin at 1x,
/// from which the page shows the take-profit minimum (docs/bots.md, Configuration).
pub struct ExchangeOption {
    pub name: &'static str,
    pub round_trip: String,
}

fn exchange_options() -> Vec<ExchangeOption> {
    EXCHANGES
        .iter()
        .map(|name| ExchangeOption {
            name,
            round_trip: rules::fees(name)
                .map(|f| rules::min_take_profit(f, 1).to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// `above 0.75 % at 10x on paper (the round-trip fees)`, the take-profit hint.
fn take_profit_minimum(c: &BotConfig) -> String {
    match rules::fees(&c.exchange) {
        Some(f) => format!(
            "above {} at {}x on {} (the round-trip fees)",
            rules::min_take_profit(f, c.leverage),
            c.leverage,
            c.exchange
        ),
        None => "above the round-trip fees at the leverage".into(),
    }
}

#[derive(Template)]
#[template(path = "settings.html", config = "src/http/pages/askama.toml")]
struct Settings {
    frame: Frame,
    email: String,
    cfg: BotConfig,
    side: &'static str,
    grids: Vec<Grid>,
    chat_id: String,
    exchanges: Vec<ExchangeOption>,
    after_stop_loss: &'static str,
    tp_minimum: String,
    /// The form shows a change that waits for the bot's next cycle.
    pending: bool,
    max_legs: usize,
    api_key: Option<String>,
    has_api_secret: bool,
    has_telegram_token: bool,
    tokens: Vec<TokenRow>,
    two_factor: TwoFactorView,
    tokens_total: i64,
    /// `tokens_offset` of the previous and next pages of tokens, when there are.
    tokens_prev: Option<i64>,
    tokens_next: Option<i64>,
    /// The bot shown, and the user's bots to switch to.
    bot_id: i64,
    bots: Vec<(i64, String)>,
    /// Where the form saves: `/api/bot/config` for the default bot (its
    /// credentials and Telegram token live there), else `/api/bots/<id>/config`.
    config_url: String,
    /// The catalogue's symbols of the configured exchange (the current one first
    /// when the catalogue cannot be read).
    symbols: Vec<String>,
    /// Credentials are asked only for real exchanges.
    real_exchange: bool,
}

/// The symbols of `exchange`'s catalogue, always including `current`.
fn catalogue_symbols(ctx: &mut Ctx<'_, '_>, exchange: &str, current: &str) -> Vec<String> {
    let mut symbols = Source::of(exchange, &ctx.config.paper_prices)
        .and_then(|src| {
            let until = std::time::Instant::now() + crate::market::refresh::FETCH_BUDGET;
            let settings = markets::catalogue_settings(ctx.config, until);
            let mut conn = ctx.db.conn().ok()?;
            catalogue::markets(&mut conn, src, settings, ctx.log)
                .ok()
                .flatten()
        })
        .map(|list| list.into_iter().map(|m| m.symbol).collect::<Vec<_>>())
        .unwrap_or_default();
    if !symbols.iter().any(|s| s == current) {
        symbols.insert(0, current.to_string());
    }
    symbols
}

/// One page of the user's API tokens.
fn token_rows(
    conn: &crate::store::Conn,
    uid: i64,
    offset: i64,
) -> Result<Vec<TokenRow>, PageError> {
    Ok(tokens::list(conn, uid, TOKENS_PAGE, offset)?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            created: time(t.created_at),
            last_used: t.last_used_at.map_or_else(|| "never".into(), time),
        })
        .collect())
}

pub fn settings(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let offset = input::query_param(ctx.req.query, "tokens_offset")
        .and_then(|o| o.parse::<u32>().ok())
        .map_or(0, i64::from);
    let conn = ctx.db.conn()?;
    let list = user_bots::list(&conn, uid)?;
    let bot = chosen_bot::pick(&list, ctx.req.query)?.id;
    let is_default = list.first().is_some_and(|b| b.id == bot);
    let bots: Vec<(i64, String)> = list.iter().map(|b| (b.id, b.name.clone())).collect();
    let stored = bot_config::load(&conn, bot)?.ok_or(PageError::NotFound)?;
    let pending = bot_config::load_pending(&conn, bot)?;
    let tokens_total = tokens::count(&conn, uid)?;
    let tokens = token_rows(&conn, uid, offset)?;
    drop(conn);
    let user = ctx
        .identity
        .principal()
        .map(|p| p.user.clone())
        .ok_or(PageError::NotFound)?;
    let two_factor = two_factor::view(ctx, &user)?;
    let email = user.email;
    let is_pending = pending.is_some();
    let cfg = pending.unwrap_or(stored.config);
    let symbols = catalogue_symbols(ctx, &cfg.exchange, &cfg.symbol);
    let real_exchange = cfg.exchange != "paper";
    let config_url = if is_default {
        "/api/bot/config".to_string()
    } else {
        format!("/api/bots/{bot}/config")
    };
    Ok(render(
        200,
        &Settings {
            frame: Frame::for_user(&ctx.identity, "Settings", "settings", &ctx.page_notice),
            email,
            side: side_name(cfg.side),
            grids: cfg.grids.clone(),
            chat_id: cfg.telegram_chat_id.clone().unwrap_or_default(),
            after_stop_loss: cfg.after_stop_loss.as_str(),
            tp_minimum: take_profit_minimum(&cfg),
            cfg,
            exchanges: exchange_options(),
            pending: is_pending,
            max_legs: MAX_GRIDS,
            api_key: stored
                .has_api_key
                .then(|| format!("***{}", stored.api_key_last4.unwrap_or_default())),
            has_api_secret: stored.has_api_secret,
            has_telegram_token: stored.has_telegram_token,
            tokens_prev: (offset > 0).then(|| (offset - TOKENS_PAGE).max(0)),
            tokens_next: (offset + (tokens.len() as i64) < tokens_total)
                .then_some(offset + TOKENS_PAGE),
            tokens,
            two_factor,
            tokens_total,
            bot_id: bot,
            bots,
            config_url,
            real_exchange,
            symbols,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_profit_minimum_follows_exchange_and_leverage() {
        let opts = exchange_options();
        assert_eq!(opts[0].name, "paper");
        assert_eq!(opts[0].round_trip, "0.075");
        let bingx = opts.iter().find(|o| o.name == "bingx").unwrap();
        assert_eq!(bingx.round_trip, "0.07");
    }
}

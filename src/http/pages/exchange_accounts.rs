//! `/accounts`: the user's exchange accounts (the keys real-exchange bots trade
//! with), what the exchange said about each key when it was saved, which bots use
//! it, and forms to add one (checked with the exchange by
//! `POST /api/exchange-accounts`) or delete one (refused while a bot uses it).

use askama::Template;

use super::frame::Frame;
use super::html::render;
use super::view::time;
use super::PageResult;
use crate::http::ctx::Ctx;
use crate::store::exchange_accounts::{self, Account};

pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub exchange: String,
    pub api_key: String,
    /// The key check in words, e.g. `can trade · never expires · any IP`.
    pub key: String,
    pub checked: String,
    pub bots: String,
    pub in_use: bool,
    pub proxy: String,
}

impl From<&Account> for AccountRow {
    fn from(a: &Account) -> AccountRow {
        let key = a.key.as_ref().map_or_else(
            || "not checked (saved before key checks)".to_string(),
            |k| {
                let trade = if k.trade { "can trade" } else { "cannot trade" };
                let expires = k.expires_at.map_or_else(
                    || "never expires".into(),
                    |t| format!("expires {}", time(t)),
                );
                let ips = k
                    .ip_whitelist
                    .as_ref()
                    .map_or_else(|| "any IP".into(), |l| format!("IPs {}", l.join(", ")));
                format!("{trade} · {expires} · {ips}")
            },
        );
        AccountRow {
            id: a.id,
            name: a.name.clone(),
            exchange: a.exchange.clone(),
            api_key: a.masked_key(),
            key,
            checked: a
                .key
                .as_ref()
                .map_or_else(|| "-".into(), |k| time(k.checked_at)),
            bots: if a.bot_ids.is_empty() {
                "none".into()
            } else {
                a.bot_ids
                    .iter()
                    .map(|b| format!("#{b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            in_use: !a.bot_ids.is_empty(),
            proxy: a.proxy_shown.clone().unwrap_or_else(|| "direct".into()),
        }
    }
}

#[derive(Template)]
#[template(path = "exchange_accounts.html", config = "src/http/pages/askama.toml")]
struct Accounts {
    frame: Frame,
    accounts: Vec<AccountRow>,
}

pub fn accounts(ctx: &mut Ctx<'_, '_>) -> PageResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let list = exchange_accounts::list(&*ctx.db.conn()?, uid)?;
    Ok(render(
        200,
        &Accounts {
            frame: Frame::for_user(
                &ctx.identity,
                "Exchange accounts",
                "accounts",
                &ctx.page_notice,
            ),
            accounts: list.iter().map(AccountRow::from).collect(),
        },
    ))
}

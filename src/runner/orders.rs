//! The `orders` operation: the bot's open orders as the exchange lists them, for
//! `GET /api/bot/orders` (docs/http-api.md), whether the bot runs or not.

use std::sync::Arc;

use crate::store::sql::Conn;
use serde_json::{json, Value};

use super::launch::Fail;
use super::manager::Manager;
use super::protocol::{OpResult, Outcome};
use crate::bots::ids::{self, BotRef, Purpose};
use crate::exchange::{Exchange, Order, OrderKind, OrderSide, OrderStatus};
use crate::money;
use crate::store::{bot_config, ledger};

impl Manager {
    /// Lists `bot`'s open orders on its symbol (not its siblings' on the same
    /// account).
    pub fn orders(&self, conn: &Conn, bot: BotRef) -> OpResult {
        let listed = match self.running_exchange(bot.bot_id) {
            Some((ex, symbol)) => ex.open_orders(&symbol).map_err(|e| e.to_string()),
            None => self
                .idle_exchange(conn, bot.bot_id)
                .and_then(|(ex, symbol)| ex.open_orders(&symbol).map_err(|e| e.to_string())),
        };
        match listed.and_then(|list| shown(conn, bot, &list).map_err(|e| e.to_string())) {
            Ok(orders) => {
                let mut r = OpResult::new(Outcome::Listed, "ok");
                r.data = Some(json!({"orders": orders}));
                r
            }
            Err(e) => OpResult::new(Outcome::Error, format!("cannot list the orders: {e}")),
        }
    }

    /// The exchange account of a bot that is not running, from its configuration.
    fn idle_exchange(
        &self,
        conn: &Conn,
        bot_id: i64,
    ) -> Result<(Arc<dyn Exchange>, String), String> {
        let stored = bot_config::load(conn, bot_id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no such bot".to_string())?;
        let symbol = stored.config.symbol.clone();
        let ex = self.exchange(conn, &stored).map_err(Fail::into_message)?;
        Ok((ex, symbol))
    }
}

/// The API's shape of the orders that are the bot's: by client id, or by the
/// exchange id recorded when it was placed (BingX keeps no client id on stops).
fn shown(conn: &Conn, bot: BotRef, list: &[Order]) -> Result<Vec<Value>, crate::store::StoreError> {
    let mut out = Vec::new();
    for o in list {
        let id = if o.client_id.is_empty() {
            match ledger::client_id_of(conn, bot.user_id, &o.exchange_id)? {
                Some(id) => id,
                None => continue,
            }
        } else {
            o.client_id.clone()
        };
        // `one` keeps only ids that parse as this bot's.
        out.extend(one(bot.bot_id, &id, o));
    }
    Ok(out)
}

/// One order in the API's shape; `None` for an order none of the API's kinds
/// names honestly: the market close of a `close_position` stop (it fills at
/// once, the stop reports it) and an id with the bot's prefix that does not parse.
fn one(bot_id: i64, id: &str, o: &Order) -> Option<Value> {
    let purpose = ids::parse(bot_id, id).map(|(_, p)| p);
    let kind = match purpose? {
        Purpose::Entry => "entry",
        Purpose::Leg(..) => "leg",
        // A trailing close is the take-profit's market exit.
        Purpose::TakeProfit(_) | Purpose::Trailing(_) => "take_profit",
        // The exchange-side stop, or the bot's own market close at the stop.
        Purpose::StopLoss(_) => "stop_loss",
        Purpose::Close(_) => return None,
    };
    Some(json!({
        "client_id": id,
        "kind": kind,
        "leg": purpose.and_then(Purpose::leg),
        "side": match o.side { OrderSide::Buy => "buy", OrderSide::Sell => "sell" },
        "type": match o.kind {
            OrderKind::Market => "market",
            OrderKind::Limit => "limit",
            OrderKind::Stop => "stop",
        },
        "price": money::json_opt(o.price),
        "trigger_price": money::json_opt(o.trigger_price),
        "qty": money::json(o.qty),
        "status": match o.status {
            OrderStatus::Open => "open",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Rejected => "rejected",
        },
    }))
}

//! A running bot's exchange in a cluster: every call first checks that this
//! runner still holds the user's lease (`Leases::valid`), so a runner that
//! froze mid-step (SIGSTOP, a long pause) and wakes past its lease sends
//! nothing more for the bot, even before its step ends. The refusal is a
//! retryable error: the step ends without change, and the next step is fenced
//! at its start (`Manager::tick`) until the lease round drops or keeps the bot.

use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;

use crate::bots::ladder::{Market, Side};
use crate::exchange::{
    Exchange, ExchangeError, Execution, FundingPayment, KeyInfo, NewOrder, Order, Position,
};

use super::lease::Leases;

pub struct Fenced {
    inner: Arc<dyn Exchange>,
    leases: Arc<Leases>,
    user_id: i64,
}

impl Fenced {
    pub fn wrap(inner: Arc<dyn Exchange>, leases: Arc<Leases>, user_id: i64) -> Arc<dyn Exchange> {
        if !leases.is_cluster() {
            return inner;
        }
        Arc::new(Fenced {
            inner,
            leases,
            user_id,
        })
    }

    fn check(&self) -> Result<&dyn Exchange, ExchangeError> {
        if self.leases.valid(self.user_id) {
            Ok(self.inner.as_ref())
        } else {
            Err(ExchangeError::Network(
                "this instance no longer holds the user's lease".into(),
            ))
        }
    }
}

impl Exchange for Fenced {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn market(&self, symbol: &str) -> Result<Market, ExchangeError> {
        self.check()?.market(symbol)
    }
    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        self.check()?.ticker(symbol)
    }
    fn set_leverage(&self, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError> {
        self.check()?.set_leverage(symbol, side, leverage)
    }
    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        self.check()?.place(order)
    }
    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        self.check()?.cancel(symbol, client_id)
    }
    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        self.check()?.open_orders(symbol)
    }
    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.check()?.order(symbol, client_id)
    }
    fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.check()?.order_by_id(symbol, exchange_id)
    }
    fn cancel_by_id(&self, symbol: &str, exchange_id: &str) -> Result<(), ExchangeError> {
        self.check()?.cancel_by_id(symbol, exchange_id)
    }
    fn executions(&self, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
        self.check()?.executions(symbol, since_ms)
    }
    fn funding(&self, symbol: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        self.check()?.funding(symbol, since_ms)
    }
    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
        self.check()?.position(symbol, side)
    }
    fn balance(&self) -> Result<Decimal, ExchangeError> {
        self.check()?.balance()
    }
    fn key_info(&self, by: Instant) -> Result<KeyInfo, ExchangeError> {
        self.check()?.key_info(by)
    }
    fn hedge_mode(&self, symbol: &str) -> Result<bool, ExchangeError> {
        self.check()?.hedge_mode(symbol)
    }
}

//! Private account streams (C16, ARCHITECTURE §11): each exchange account that
//! a running bot uses gets one authenticated WebSocket, whose order, fill,
//! position and wallet events keep an [`view::AccountView`]; the bots read that
//! view through [`crate::exchange::streamed::Streamed`] instead of polling REST.
//!
//! [`Streams`] is the bot runner's registry: accounts (exchange + API key: bots
//! sharing a key share the view and the socket) and the bots on each. One
//! thread (`event_loop`) drives every socket; a few connect threads (`connect`)
//! do the blocking work. Both start with the first real-exchange bot, in the
//! runner child — nothing here runs in the master. An order or fill event
//! wakes the account's bots on that symbol through the runner's scheduler.

pub mod bingx;
pub mod bybit;
mod conn;
pub mod connect;
mod event_loop;
mod listen_key;
mod pace;
pub mod poll;
pub mod update;
pub mod view;

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use slog::{warn, Logger};

use self::connect::Access;
use self::poll::Paces;
use self::view::AccountView;
use super::proxy::Proxy;
use super::rest::ApiKey;
use super::streamed::Streamed;
use super::Exchange;
use crate::market::QuoteSource;

/// An exchange account as the streams know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    pub exchange: &'static str,
    pub api_key: String,
}

/// One account: its view, its credentials and the bots (id → symbol) using it.
struct Account {
    view: Arc<AccountView>,
    key: Access,
    bots: HashMap<i64, String>,
    /// Since when no bot uses it (it closes a little later).
    idle_since: Option<Instant>,
}

/// Calls the runner back: bot `.0` should step now.
pub type Wake = Box<dyn Fn(i64) + Send + Sync>;

/// What the loop and the registry share.
struct Shared {
    accounts: Mutex<HashMap<AccountKey, Account>>,
    wake: Wake,
    /// The polling pace of each exchange's down accounts (the loop counts them).
    paces: Paces,
}

impl Shared {
    fn accounts(&self) -> MutexGuard<'_, HashMap<AccountKey, Account>> {
        self.accounts.lock().unwrap_or_else(|p| {
            self.accounts.clear_poison();
            p.into_inner()
        })
    }

    /// Wakes the bots of `key` that trade `symbol`.
    fn wake(&self, key: &AccountKey, symbol: &str) {
        let bots: Vec<i64> = self
            .accounts()
            .get(key)
            .map(|a| {
                a.bots
                    .iter()
                    .filter(|(_, s)| s.as_str() == symbol)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        for bot in bots {
            (self.wake)(bot);
        }
    }

    /// The view and credentials of `key`, while some bot may use it.
    fn account(&self, key: &AccountKey) -> Option<(Arc<AccountView>, Access)> {
        self.accounts()
            .get(key)
            .map(|a| (a.view.clone(), a.key.clone()))
    }
}

/// The loop's inbox.
enum Command {
    Open(AccountKey),
}

/// The running loop.
struct Handle {
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
}

/// The bot runner's private streams.
pub struct Streams {
    shared: Arc<Shared>,
    settings: connect::Settings,
    quotes: Option<Arc<dyn QuoteSource>>,
    /// Started with the first real-exchange bot; `Err` if that failed (the
    /// bots then poll REST).
    handle: Mutex<Option<Result<Handle, ()>>>,
    log: Logger,
}

impl Streams {
    pub fn new(
        settings: connect::Settings,
        paces: Paces,
        quotes: Option<Arc<dyn QuoteSource>>,
        wake: Wake,
        log: Logger,
    ) -> Streams {
        Streams {
            shared: Arc::new(Shared {
                accounts: Mutex::new(HashMap::new()),
                wake,
                paces,
            }),
            settings,
            quotes,
            handle: Mutex::new(None),
            log,
        }
    }

    /// Bot `bot_id` trades `symbol` with `rest` (a Bybit or BingX adapter bound
    /// to `key`): the exchange it should use, reading through the account's
    /// stream. Any other exchange is returned as it is.
    pub fn attach(
        &self,
        bot_id: i64,
        symbol: &str,
        key: &ApiKey,
        proxy: Option<Proxy>,
        rest: Arc<dyn Exchange>,
    ) -> Arc<dyn Exchange> {
        let exchange = rest.name();
        let caches_fills = match exchange {
            "bybit" => true,
            "bingx" => false,
            _ => return rest,
        };
        let Some(pace) = self.shared.paces.of(exchange).cloned() else {
            return rest;
        };
        let account = AccountKey {
            exchange,
            api_key: key.key.clone(),
        };
        let access = Access {
            key: key.clone(),
            proxy,
        };
        let (view, new) = {
            let mut accounts = self.shared.accounts();
            // A bot moved to another account leaves the old one first.
            for a in accounts.values_mut() {
                if a.bots.remove(&bot_id).is_some() && a.bots.is_empty() {
                    a.idle_since = Some(Instant::now());
                }
            }
            let new = !accounts.contains_key(&account);
            let a = accounts.entry(account.clone()).or_insert_with(|| Account {
                view: Arc::new(AccountView::new(exchange, caches_fills)),
                key: access.clone(),
                bots: HashMap::new(),
                idle_since: None,
            });
            a.key = access.clone();
            a.bots.insert(bot_id, symbol.to_string());
            a.idle_since = None;
            (a.view.clone(), new)
        };
        if new {
            self.send(Command::Open(account));
        }
        Arc::new(Streamed::new(rest, view, pace, self.quotes.clone()))
    }

    /// Bot `bot_id` stopped: its account closes a little later unless another
    /// bot uses it.
    pub fn detach(&self, bot_id: i64) {
        for a in self.shared.accounts().values_mut() {
            if a.bots.remove(&bot_id).is_some() && a.bots.is_empty() {
                a.idle_since = Some(Instant::now());
            }
        }
    }

    fn send(&self, command: Command) {
        let mut handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let started = handle.get_or_insert_with(|| {
            event_loop::start(self.shared.clone(), self.settings.clone(), self.log.clone())
                .map_err(|e| {
                    warn!(self.log, "cannot start the private streams; bots poll REST"; "error" => %e);
                })
        });
        if let Ok(h) = started {
            if h.commands.send(command).is_ok() {
                let _ = h.waker.wake();
            }
        }
    }
}

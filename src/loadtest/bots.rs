//! Several bots per load-test user (`--bots-per-user N`, README "Load test"): each
//! user gets N paper bots on distinct markets through the API (`GET /api/bots`,
//! then `POST /api/bots` for what is missing), and the mix sends the per-bot
//! actions to `/api/bots/<id>/…` of one of them, picked per request.
//!
//! Invariants: preparation is idempotent (a rerun reuses the bots an earlier run
//! made, matched by market, and creates none); a user's chosen bots are on
//! distinct (exchange, symbol, side), so starting all of them never meets C14's
//! conflict rule among themselves.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::client::Client;
use super::{act, Action, Route};
use crate::bots::config::side_name;
use crate::bots::ladder::Side;

/// The most bots a load user can be given: one per market of `MARKETS`.
pub const MAX_PER_USER: u8 = 6;

/// The mix with several bots: the one-bot mix's actions and weights, with the
/// bot's own routes (status, events, start, stop, recover) sent to one of the
/// user's bots; trades and the PnL summary stay the user's (they cover all bots).
pub(super) const BOT_MIX: [Action; 8] = [
    act("GET", Route::Bot("status"), None, 700),
    act("GET", Route::User("/api/trades?limit=20"), None, 80),
    act("GET", Route::User("/api/pnl/summary?days=7"), None, 60),
    act("GET", Route::Bot("events?limit=20"), None, 60),
    act("GET", Route::User("/api/status"), None, 80),
    act("POST", Route::Bot("start"), Some("{}"), 8),
    act(
        "POST",
        Route::Bot("stop"),
        Some("{\"mode\":\"cancel_orders\"}"),
        8,
    ),
    act("POST", Route::Bot("recover"), Some("{}"), 4),
];

/// A market a load-test bot trades on the paper exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Market {
    symbol: &'static str,
    side: Side,
}

const fn market(symbol: &'static str, side: Side) -> Market {
    Market { symbol, side }
}

/// The markets of a user's bots, in the order they are given: the first is the
/// default bot's as registration makes it, then the paper exchange's other majors
/// long, then all three short.
const MARKETS: [Market; MAX_PER_USER as usize] = [
    market("BTC/USDT", Side::Long),
    market("ETH/USDT", Side::Long),
    market("SOL/USDT", Side::Long),
    market("BTC/USDT", Side::Short),
    market("ETH/USDT", Side::Short),
    market("SOL/USDT", Side::Short),
];

/// Calls answered 429 are retried this many times (rate limits apply to load
/// users like to anyone), waiting longer each time.
const RETRIES: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum BotsError {
    #[error("{method} {path}: no answer: {source}")]
    Transport {
        method: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{method} {path}: still 429 after {RETRIES} retries (raise RATE_LIMITS_* on the server)"
    )]
    RateLimited { method: &'static str, path: String },
    #[error("{method} {path}: {status} {body}")]
    Refused {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{method} {path}: unexpected answer: {source}")]
    Unexpected {
        method: &'static str,
        path: &'static str,
        source: serde_json::Error,
    },
    #[error("GET /api/bots lists no bot (every user has a default bot)")]
    NoDefault,
}

/// A bot as `GET /api/bots` lists it (the fields chosen on).
#[derive(Debug, Deserialize)]
struct Listed {
    id: i64,
    exchange: String,
    symbol: String,
    side: String,
    #[serde(default)]
    default: bool,
}

#[derive(Debug, Deserialize)]
struct Listing {
    bots: Vec<Listed>,
}

impl Listed {
    fn trades(&self, m: Market) -> bool {
        self.exchange == "paper" && self.symbol == m.symbol && self.side == side_name(m.side)
    }
}

/// What a user's bots need: the ids to use, and the markets to create bots on.
#[derive(Debug, PartialEq)]
struct Plan {
    reuse: Vec<i64>,
    create: Vec<Market>,
}

/// Chooses a user's `n` bots: their default bot (the one `/api/bot/*` acts on,
/// whatever its market), then per market of `MARKETS` not yet covered an existing
/// paper bot on it, or a new one.
fn plan(listed: &[Listed], n: usize) -> Result<Plan, BotsError> {
    let default = listed
        .iter()
        .find(|b| b.default)
        .or(listed.first())
        .ok_or(BotsError::NoDefault)?;
    let mut chosen = vec![default];
    let mut create = Vec::new();
    for m in MARKETS {
        if chosen.len() + create.len() >= n {
            break;
        }
        if chosen.iter().any(|b| b.trades(m)) {
            continue;
        }
        match listed.iter().find(|b| b.trades(m)) {
            Some(b) => chosen.push(b),
            None => create.push(m),
        }
    }
    Ok(Plan {
        reuse: chosen.iter().map(|b| b.id).collect(),
        create,
    })
}

/// Gives every user (by token) `n` bots; returns their ids, user by user, on the
/// connections' worth of parallel clients.
pub fn prepare(
    addr: SocketAddr,
    host: &str,
    tokens: &[String],
    n: usize,
    connections: usize,
) -> Result<Vec<Vec<i64>>, BotsError> {
    let lanes = connections.clamp(1, tokens.len().max(1));
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = (0..lanes)
            .map(|lane| {
                s.spawn(move || {
                    let mut client = Client::new(addr, host);
                    (lane..tokens.len())
                        .step_by(lanes)
                        .map(|i| Ok((i, user_bots(&mut client, &tokens[i], n)?)))
                        .collect::<Result<Vec<_>, BotsError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    let mut out = vec![Vec::new(); tokens.len()];
    for part in parts {
        for (i, ids) in part? {
            out[i] = ids;
        }
    }
    Ok(out)
}

/// One user's `n` bot ids, creating the missing bots.
fn user_bots(client: &mut Client, token: &str, n: usize) -> Result<Vec<i64>, BotsError> {
    call(client, "GET", "/api/bots", token, None, 200)?;
    let listing: Listing = parse(client, "GET")?;
    let Plan { mut reuse, create } = plan(&listing.bots, n)?;
    for m in create {
        let body = serde_json::json!({
            "name": format!("loadtest {} {}", m.symbol, side_name(m.side)),
            "exchange": "paper",
            "symbol": m.symbol,
            "side": side_name(m.side),
        })
        .to_string();
        call(client, "POST", "/api/bots", token, Some(&body), 201)?;
        let made: Created = parse(client, "POST")?;
        reuse.push(made.id);
    }
    Ok(reuse)
}

/// The body of the last answer to `method /api/bots`.
fn parse<T: serde::de::DeserializeOwned>(
    client: &Client,
    method: &'static str,
) -> Result<T, BotsError> {
    serde_json::from_slice(client.body()).map_err(|source| BotsError::Unexpected {
        method,
        path: "/api/bots",
        source,
    })
}

#[derive(Debug, Deserialize)]
struct Created {
    id: i64,
}

/// One preparation call that must answer `want`; 429 is waited out, and a call
/// that got no answer is sent once more on a new connection (the server may have
/// closed the kept-alive one; a repeated POST at worst leaves a spare bot that
/// `plan` never picks, since it picks one bot per market).
fn call(
    client: &mut Client,
    method: &'static str,
    path: &str,
    token: &str,
    body: Option<&str>,
    want: u16,
) -> Result<(), BotsError> {
    let mut unanswered = 0;
    let mut limited = 0;
    loop {
        let status = match client.call(method, path, token, body) {
            Ok(answer) => answer.status,
            Err(source) if unanswered > 0 => {
                return Err(BotsError::Transport {
                    method,
                    path: path.to_string(),
                    source,
                })
            }
            Err(_) => {
                unanswered += 1;
                continue;
            }
        };
        if status == want {
            return Ok(());
        }
        if status != 429 {
            return Err(BotsError::Refused {
                method,
                path: path.to_string(),
                status,
                body: String::from_utf8_lossy(client.body()).into_owned(),
            });
        }
        if limited == RETRIES {
            return Err(BotsError::RateLimited {
                method,
                path: path.to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(100 << limited));
        limited += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(id: i64, exchange: &str, symbol: &str, side: &str, default: bool) -> Listed {
        Listed {
            id,
            exchange: exchange.into(),
            symbol: symbol.into(),
            side: side.into(),
            default,
        }
    }

    #[test]
    fn a_new_user_keeps_the_default_bot_and_gets_the_next_markets() {
        let listed = [bot(4, "paper", "BTC/USDT", "long", true)];
        let p = plan(&listed, 3).unwrap();
        assert_eq!(p.reuse, [4]);
        assert_eq!(p.create, [MARKETS[1], MARKETS[2]]);
        assert_eq!(plan(&listed, 1).unwrap().create, []);
    }

    #[test]
    fn a_rerun_reuses_the_bots_of_the_last_one() {
        let listed = [
            bot(4, "paper", "BTC/USDT", "long", true),
            bot(9, "paper", "SOL/USDT", "long", false),
            bot(8, "paper", "ETH/USDT", "long", false),
        ];
        let p = plan(&listed, 3).unwrap();
        assert_eq!((p.reuse, p.create), (vec![4, 8, 9], vec![]));
    }

    #[test]
    fn bots_on_other_exchanges_or_repeated_markets_are_not_reused() {
        let listed = [
            bot(2, "bybit", "ETH/USDT", "long", false),
            bot(3, "paper", "ETH/USDT", "short", true),
            bot(5, "paper", "ETH/USDT", "short", false),
        ];
        let p = plan(&listed, 6).unwrap();
        assert_eq!(p.reuse, [3]);
        let mut want = MARKETS.to_vec();
        want.retain(|m| *m != market("ETH/USDT", Side::Short));
        assert_eq!(p.create, want);
    }

    #[test]
    fn the_bots_cover_distinct_markets() {
        for n in 1..=usize::from(MAX_PER_USER) {
            let p = plan(&[bot(1, "paper", "BTC/USDT", "long", true)], n).unwrap();
            assert_eq!(p.reuse.len() + p.create.len(), n);
            assert!(!p.create.contains(&MARKETS[0]));
        }
        for (i, m) in MARKETS.iter().enumerate() {
            assert!(!MARKETS[..i].contains(m), "{m:?} twice");
        }
    }

    #[test]
    fn no_bot_listed_is_an_error() {
        assert!(matches!(plan(&[], 2), Err(BotsError::NoDefault)));
    }
}

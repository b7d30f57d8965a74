//! The runner's RPC (docs/bots.md, Runner): one JSON line per request over the runner's
//! Unix socket, one JSON line back with the real outcome.
//!
//! Invariants: every operation, whichever way it ends (started, refused, failed
//! while starting, stopped with a problem), answers with one [`OpResult`]; the
//! HTTP handler turns that, and nothing else, into its answer. Enums travel as
//! the same words the API shows (`already_running`, `close_position`, ...).
//!
//! Operations on a user's paper account rather than on a bot ([`PaperRequest`],
//! from `blitz paper …`, docs/operations.md) share the socket and answer with a
//! [`PaperReply`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bots::ladder::Side;
use crate::bots::status::StopMode;
use crate::text_enum::{text_enum, Unknown};

text_enum! {
    /// A command for the runner.
    pub enum Op {
        Start = "start",
        Stop = "stop",
        Recover = "recover",
        /// The bot's open orders as the exchange lists them (running or not).
        Orders = "orders",
    }
}

/// Who asked for an operation, for the event trail: the bot's owner, an admin
/// (by user id) or the runner itself (resumes, sweeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actor {
    #[default]
    User,
    Admin(i64),
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User => f.write_str("user"),
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl FromStr for Actor {
    type Err = Unknown;

    /// `user`, `admin:<id>` or `system`; empty means `user`, as requests written
    /// before the field existed meant.
    fn from_str(s: &str) -> Result<Actor, Unknown> {
        match s {
            "" | "user" => Ok(Actor::User),
            "system" => Ok(Actor::System),
            _ => s
                .strip_prefix("admin:")
                .and_then(|id| id.parse().ok())
                .map(Actor::Admin)
                .ok_or_else(|| Unknown {
                    kind: "Actor",
                    value: s.to_string(),
                }),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Actor, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub op: Op,
    /// Whose bot: the runner acts only on a bot of this user.
    pub user_id: i64,
    /// Which bot; 0 (or absent, from an older worker) means the user's default
    /// bot, as the `/api/bot/*` endpoints mean.
    #[serde(default)]
    pub bot_id: i64,
    /// How a stop treats the exchange; absent means `cancel_orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<StopMode>,
    #[serde(default)]
    pub actor: Actor,
}

text_enum! {
    /// The outcomes of an operation, named as the API's `status` field.
    pub enum Outcome {
        Started = "started",
        AlreadyRunning = "already_running",
        InvalidConfig = "invalid_config",
        MissingCredentials = "missing_credentials",
        Stopped = "stopped",
        NotRunning = "not_running",
        Recovered = "recovered",
        /// A stop with mode `after_cycle` was taken: the bot stops when its
        /// cycle closes.
        StoppingAfterCycle = "stopping_after_cycle",
        /// An answer with data (`orders`).
        Listed = "listed",
        /// Another bot of the user trades the same position (exchange account
        /// or paper account, symbol, side): the start is refused.
        Conflict = "conflict",
        /// The user has no such bot.
        NotFound = "not_found",
        /// The exchange or the runner failed; `message` says how.
        Error = "error",
    }
}

/// How an operation ended, from the runner through the RPC to the HTTP handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpResult {
    pub outcome: Outcome,
    pub message: String,
    /// What the operation did on the exchange, in order.
    #[serde(default)]
    pub actions: Vec<String>,
    /// What a read operation answers (`orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl OpResult {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> OpResult {
        OpResult {
            outcome,
            message: message.into(),
            actions: Vec::new(),
            data: None,
        }
    }

    pub fn with_actions(mut self, actions: Vec<String>) -> OpResult {
        self.actions = actions;
        self
    }

    /// Stop and recover of a bot that is not running.
    pub fn not_running() -> OpResult {
        OpResult::new(Outcome::NotRunning, "Bot is not running")
    }
}

/// Where a command refused by one runner goes instead (CONTRACT C18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// The instance whose runner drives the user, or should.
    pub instance: String,
    /// The user had no driver: the refusing runner placed them on `instance`
    /// (the fewest bots), which takes the lease.
    pub placed: bool,
}

/// A reply that may send the command to another instance.
pub trait Redirect {
    fn elsewhere(&self) -> Option<Elsewhere>;
}

impl Redirect for OpResult {
    /// A `conflict` whose `data` names an instance.
    fn elsewhere(&self) -> Option<Elsewhere> {
        let data = self
            .data
            .as_ref()
            .filter(|_| self.outcome == Outcome::Conflict)?;
        Some(Elsewhere {
            instance: data["instance"].as_str()?.to_string(),
            placed: data["placed"].as_bool().unwrap_or(false),
        })
    }
}

impl Redirect for PaperReply {
    fn elsewhere(&self) -> Option<Elsewhere> {
        Some(Elsewhere {
            instance: self.instance.clone()?,
            placed: false,
        })
    }
}

text_enum! {
    /// A command on a user's paper account.
    pub enum PaperOp {
        /// Close a position as a trader would on the exchange's site: a reduce-only
        /// market order that is not the bot's.
        ClosePosition = "close_paper_position",
        /// Put the account back to its start (`symbol` and `side` are ignored);
        /// refused while one of the user's bots is active or holds a cycle.
        ResetAccount = "reset_paper_account",
    }
}

/// A paper-account command: one line like a bot command's, with the position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRequest {
    pub op: PaperOp,
    pub user_id: i64,
    pub symbol: String,
    #[serde(with = "side_text")]
    pub side: Side,
}

/// What a paper-account command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperReply {
    /// Whether it changed the account; `message` says what happened either way.
    pub done: bool,
    pub message: String,
    /// The client id of the order it placed (`manual-<ms>`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Refused because one of the user's bots is active.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot_active: bool,
    /// Refused because one of the user's bots still has an open cycle (a
    /// position).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub position_open: bool,
    /// Refused because another instance drives the user's account: that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl PaperReply {
    /// Not done, for the reason `message` gives.
    pub fn refused(message: String) -> PaperReply {
        PaperReply {
            done: false,
            message,
            client_id: None,
            bot_active: false,
            position_open: false,
            instance: None,
        }
    }

    /// Not done: the runner did not admit the command (`Manager::admit`); the
    /// instance that drives the user's account, if the refusal names one.
    pub fn not_admitted(refusal: OpResult) -> PaperReply {
        PaperReply {
            instance: refusal.elsewhere().map(|e| e.instance),
            ..PaperReply::refused(refusal.message)
        }
    }
}

/// A position side as the API writes it: `long` or `short`.
mod side_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::bots::config::{parse_side, side_name};
    use crate::bots::ladder::Side;

    pub fn serialize<S: Serializer>(side: &Side, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(side_name(*side))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Side, D::Error> {
        let text = String::deserialize(d)?;
        parse_side(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown side `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_keep_their_wire_text() {
        let req = Request {
            op: Op::Stop,
            user_id: 7,
            bot_id: 9,
            mode: Some(StopMode::ClosePosition),
            actor: Actor::Admin(3),
        };
        let text = json!({"op": "stop", "user_id": 7, "bot_id": 9, "mode": "close_position",
                          "actor": "admin:3"});
        assert_eq!(serde_json::to_value(&req).unwrap(), text);
        assert_eq!(serde_json::from_value::<Request>(text).unwrap(), req);
        // Written by an older worker: no bot (the default one), no mode, no actor.
        let old: Request = serde_json::from_value(json!({"op": "start", "user_id": 7})).unwrap();
        assert_eq!((old.bot_id, old.mode, old.actor), (0, None, Actor::User));
        let after = json!({"op": "stop", "user_id": 7, "mode": "after_cycle"});
        let after: Request = serde_json::from_value(after).unwrap();
        assert_eq!(after.mode, Some(StopMode::AfterCycle));
        let orders: Request =
            serde_json::from_value(json!({"op": "orders", "user_id": 7})).unwrap();
        assert_eq!(orders.op, Op::Orders);
        let bad = json!({"op": "stop", "user_id": 7, "mode": "sideways"});
        assert!(serde_json::from_value::<Request>(bad).is_err());
    }

    #[test]
    fn paper_requests_keep_their_wire_text_and_are_not_bot_requests() {
        let req = PaperRequest {
            op: PaperOp::ClosePosition,
            user_id: 7,
            symbol: "BTC/USDT".into(),
            side: Side::Short,
        };
        let text = json!({"op": "close_paper_position", "user_id": 7,
                          "symbol": "BTC/USDT", "side": "short"});
        assert_eq!(serde_json::to_value(&req).unwrap(), text);
        assert_eq!(
            serde_json::from_value::<PaperRequest>(text.clone()).unwrap(),
            req
        );
        assert!(serde_json::from_value::<Request>(text).is_err());
        let sideways = json!({"op": "close_paper_position", "user_id": 7,
                              "symbol": "BTC/USDT", "side": "up"});
        assert!(serde_json::from_value::<PaperRequest>(sideways).is_err());
        let bot = json!({"op": "stop", "user_id": 7});
        assert!(serde_json::from_value::<PaperRequest>(bot).is_err());
        let reply = PaperReply::refused("nothing to close".into());
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"done": false, "message": "nothing to close"})
        );
        assert_eq!(reply.elsewhere(), None);
    }

    #[test]
    fn refusals_name_where_the_command_goes() {
        let held = OpResult {
            data: Some(json!({"instance": "b", "placed": false})),
            ..OpResult::new(Outcome::Conflict, "driven by b")
        };
        let b = Elsewhere {
            instance: "b".into(),
            placed: false,
        };
        assert_eq!(held.elsewhere(), Some(b.clone()));
        let placed = OpResult {
            data: Some(json!({"instance": "c", "placed": true})),
            ..OpResult::new(Outcome::Conflict, "goes to c")
        };
        assert_eq!(placed.elsewhere().map(|e| e.placed), Some(true));
        // A conflict between two bots of one user names no instance.
        assert_eq!(OpResult::new(Outcome::Conflict, "taken").elsewhere(), None);
        let paper = PaperReply::not_admitted(held);
        let text = serde_json::to_value(&paper).unwrap();
        assert_eq!(
            text,
            json!({"done": false, "message": "driven by b", "instance": "b"})
        );
        let back: PaperReply = serde_json::from_value(text).unwrap();
        assert_eq!(back.elsewhere(), Some(b));
    }

    #[test]
    fn actors_round_trip_and_strangers_are_refused() {
        for a in [Actor::User, Actor::System, Actor::Admin(42)] {
            assert_eq!(a.to_string().parse(), Ok(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.to_string());
        }
        assert_eq!(Actor::Admin(42).to_string(), "admin:42");
        assert_eq!("".parse(), Ok(Actor::User));
        for bad in ["admin:", "admin:x", "root", "User"] {
            assert!(bad.parse::<Actor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn results_keep_their_wire_text() {
        let r = OpResult::new(Outcome::AlreadyRunning, "Bot is already running")
            .with_actions(vec!["placed l1".into()]);
        let text = json!({"outcome": "already_running", "message": "Bot is already running",
                          "actions": ["placed l1"]});
        assert_eq!(serde_json::to_value(&r).unwrap(), text);
        assert_eq!(serde_json::from_value::<OpResult>(text).unwrap(), r);
        let mut listed = OpResult::new(Outcome::Listed, "ok");
        listed.data = Some(json!({"orders": []}));
        let text = serde_json::to_value(&listed).unwrap();
        assert_eq!(text["data"], json!({"orders": []}));
        assert_eq!(serde_json::from_value::<OpResult>(text).unwrap(), listed);
        let words: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            words,
            [
                "started",
                "already_running",
                "invalid_config",
                "missing_credentials",
                "stopped",
                "not_running",
                "recovered",
                "stopping_after_cycle",
                "listed",
                "conflict",
                "not_found",
                "error"
            ]
        );
    }
}

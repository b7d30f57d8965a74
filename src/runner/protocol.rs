//! The runner's RPC (docs/bots.md, Runner): one JSON line per request over the runner's
//! Unix socket, one JSON line back with the real outcome.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Start,
    Stop,
    Recover,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Recover => "recover",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub op: Op,
    pub user_id: i64,
    /// Stop mode: `keep`, `cancel_orders` (default) or `close_position`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Who asked, for the event trail: `user` or `admin:<id>`.
    #[serde(default)]
    pub actor: String,
}

/// The outcomes of start, stop and recover, named as the API's `status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Started,
    AlreadyRunning,
    InvalidConfig,
    MissingCredentials,
    Stopped,
    NotRunning,
    Recovered,
    /// The exchange or the runner failed; `message` says how.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub outcome: Outcome,
    pub message: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl Reply {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Reply {
        Reply {
            outcome,
            message: message.into(),
            actions: Vec::new(),
        }
    }
}

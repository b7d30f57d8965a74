//! Bots: configuration, the ladder strategy's arithmetic and state machine,
//! client order ids, PnL summaries, and the bot's states as they are stored.

pub mod config;
pub mod engine;
pub mod ids;
pub mod ladder;
pub mod ledger;
pub mod pnl;
pub mod preview;
pub mod rules;
pub mod status;

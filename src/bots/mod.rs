//! Bots: configuration, the ladder strategy's arithmetic and state machine,
//! client order ids, and PnL summaries.

pub mod config;
pub mod engine;
pub mod ids;
pub mod ladder;
pub mod pnl;

//! Blitz: a pre-fork server that runs users' DCA trading bots.
//!
//! `master/` supervises processes, `worker/` speaks HTTP; this crate is the
//! application: configuration, HTTP routes and middleware, storage, logs, the bot
//! runner, and the commands of the `blitz` binary.

pub mod commands;
pub mod config;
pub mod http;
pub mod log;
pub mod runner;
pub mod serve;
pub mod store;

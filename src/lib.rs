//! Blitz: a pre-fork server that runs users' DCA trading bots.
//!
//! `master/` supervises processes, `worker/` speaks HTTP; this crate is the
//! application: configuration, HTTP routes and middleware, storage, logs, the bot
//! runner, and the commands of the `blitz` binary.

pub mod auth;
pub mod background;
pub mod bots;
pub mod commands;
pub mod config;
pub mod coord;
pub mod exchange;
pub mod http;
pub mod loadtest;
pub mod log;
pub mod mail;
pub mod market;
pub mod metrics;
pub mod money;
pub mod runner;
pub mod secrets;
pub mod serve;
pub mod shm;
pub mod store;
pub mod text_enum;

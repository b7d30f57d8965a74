//! The bot runner process (`blitz: bot-runner`): supervised by the master like a
//! worker and heartbeating in its own slot, which `/readyz` reads. It owns no bots
//! yet; the strategy engine plugs in here.

use std::time::Duration;

use blitz_master::ChildCtx;
use slog::{error, info, Logger};

use crate::log::Sink;
use crate::serve::Background;

/// How often the runner proves it is alive.
const TICK: Duration = Duration::from_millis(250);

pub fn run(ctx: ChildCtx, log: Logger, sinks: Vec<Sink>) -> i32 {
    let bg = match Background::start(&ctx, sinks) {
        Ok(bg) => bg,
        Err(e) => {
            error!(log, "cannot install signal handlers"; "error" => %e);
            return 1;
        }
    };
    info!(log, "bot runner started");
    while bg.pause(&ctx, TICK) {}
    info!(log, "bot runner stopped");
    0
}

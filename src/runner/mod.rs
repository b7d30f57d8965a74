//! The bot runner process (`blitz: bot-runner`): supervised by the master like a
//! worker and heartbeating in its own slot, which `/readyz` reads. It owns no bots
//! yet; the strategy engine plugs in here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_master::{ChildCtx, SlotState};
use signal_hook::consts::signal::{SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use slog::{error, info, Logger};

use crate::log::Sink;

/// How often the runner proves it is alive.
const TICK: Duration = Duration::from_millis(250);

pub fn run(ctx: ChildCtx, log: Logger, sinks: &[Sink]) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let reopen = Arc::new(AtomicBool::new(false));
    let installed = [SIGTERM, SIGINT, SIGQUIT]
        .into_iter()
        .map(|s| signal_hook::flag::register(s, stop.clone()))
        .chain(std::iter::once(signal_hook::flag::register(
            SIGUSR1,
            reopen.clone(),
        )))
        .collect::<Result<Vec<_>, _>>();
    if let Err(e) = installed {
        error!(log, "cannot install signal handlers"; "error" => %e);
        return 1;
    }
    ctx.report(SlotState::Ready);
    info!(log, "bot runner started");
    while !stop.load(Ordering::Acquire) {
        ctx.slot.heartbeat();
        if reopen.swap(false, Ordering::AcqRel) {
            for s in sinks {
                let _ = s.reopen();
            }
        }
        std::thread::sleep(TICK);
    }
    info!(log, "bot runner stopped");
    0
}

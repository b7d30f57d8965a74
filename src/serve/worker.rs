//! The HTTP worker process: glue between the supervisor's slot and the runtime.

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use blitz_master::{ChildCtx, Link, ListenerKind, SlotState};
use blitz_worker::{Lifecycle, Limits, Listener};
use slog::{error, info, Logger};

use crate::config::Config;
use crate::http::WebApp;
use crate::log::{AccessLog, Sink};

struct WorkerLife {
    link: Link,
    log: Logger,
    sinks: Vec<Sink>,
}

impl Lifecycle for WorkerLife {
    fn ready(&mut self) {
        self.link.report(SlotState::Ready);
    }

    fn heartbeat(&mut self) {
        self.link.slot.heartbeat();
    }

    fn retire(&mut self) {
        info!(self.log, "max requests reached, asking for a replacement";
            "requests" => self.link.slot.requests());
        crate::metrics::retiring();
        self.link.report(SlotState::RetireRequested);
    }

    fn draining(&mut self) {
        self.link.report(SlotState::Draining);
    }

    fn reopen_logs(&mut self) {
        for s in &self.sinks {
            if let Err(e) = s.reopen() {
                error!(self.log, "cannot reopen log file"; "error" => %e);
            }
        }
    }
}

/// Each worker's own request budget: `--max-requests` plus up to
/// `--max-requests-jitter`, so siblings do not all recycle at once.
fn request_budget(config: &Config, slot: usize) -> u64 {
    if config.max_requests == 0 {
        return 0;
    }
    let jitter = if config.max_requests_jitter == 0 {
        0
    } else {
        let seed = u64::from(std::process::id()) ^ (slot as u64).rotate_left(17);
        // splitmix64: cheap, well distributed; no cryptographic need here.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % (config.max_requests_jitter + 1)
    };
    config.max_requests + jitter
}

fn limits(config: &Config, slot: usize) -> Limits {
    Limits {
        request_line: config.limit_request_line,
        header_fields: config.limit_request_fields,
        header_field_size: config.limit_request_field_size,
        max_body: config.max_request_bytes,
        keep_alive: config.keep_alive,
        max_connections: config.worker_connections,
        max_requests: request_budget(config, slot),
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        send_timeout: config.timeout,
        max_buffered: config.max_buffered_bytes,
    }
}

/// Takes ownership of the inherited listeners, so that when this worker stops
/// accepting, its descriptors really close.
fn listeners(ctx: &mut ChildCtx) -> Vec<Listener> {
    std::mem::take(&mut ctx.listeners)
        .into_iter()
        .map(|l| {
            let kind = l.kind;
            let fd = l.into_fd();
            match kind {
                ListenerKind::Tcp => Listener::Tcp(TcpListener::from(fd)),
                ListenerKind::Unix => Listener::Unix(UnixListener::from(fd)),
            }
        })
        .collect()
}

pub fn run(
    mut ctx: ChildCtx,
    config: &Config,
    log: Logger,
    access: Option<AccessLog>,
    error_sink: Sink,
) -> i32 {
    let listeners = listeners(&mut ctx);
    if config.test_boot_delay_ms > 0 {
        // Test knob: a release that is slow to boot. The master must keep the
        // previous workers serving until this one reports ready.
        std::thread::sleep(Duration::from_millis(config.test_boot_delay_ms));
    }
    let mut sinks = vec![error_sink];
    sinks.extend(access.as_ref().map(|a| a.sink().clone()));
    let limits = limits(config, ctx.number);
    // Heartbeat well inside `--timeout`, at least every 500 ms.
    let heartbeat = (config.timeout / 4).min(Duration::from_millis(500));
    let mut life = WorkerLife {
        link: ctx.link(),
        log: log.clone(),
        sinks,
    };
    let mut app = WebApp::new(
        config.clone(),
        log.clone(),
        access,
        ctx.scoreboard,
        ctx.slot,
    );
    match blitz_worker::serve(listeners, limits, heartbeat, &mut app, &mut life) {
        Ok(()) => 0,
        Err(e) => {
            error!(log, "worker failed"; "error" => %e);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        let mut c = crate::config::Config::for_tests();
        c.max_requests = 100;
        c.max_requests_jitter = 10;
        for slot in 0..50 {
            let b = request_budget(&c, slot);
            assert!((100..=110).contains(&b), "{b}");
        }
        c.max_requests = 0;
        assert_eq!(request_budget(&c, 1), 0);
    }
}

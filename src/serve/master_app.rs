//! The application side of the supervisor: what children run, how HUP reloads the
//! configuration, and how supervisor events are logged.

use std::os::unix::net::UnixListener;

use blitz_master::{App, ChildCtx, Event, ExitReason, Role, Settings};
use slog::{crit, error, info, o, warn, Logger};

use crate::config::{AccessLogFormat, Config, LogTarget, ServeArgs};
use crate::exchange::rest::budget;
use crate::log::{self, AccessLog, Sink};
use crate::metrics;

/// Process-title prefix and singleton names (indices into `Settings::singletons`).
const TITLE: &str = "blitz";
const BOT_RUNNER: &str = "bot-runner";
const MAILER: &str = "mailer";
const MARKET_DATA: &str = "market-data";
pub(crate) const SINGLETONS: [&str; 3] = [BOT_RUNNER, MAILER, MARKET_DATA];

/// The open log destinations, created by the master and inherited by children.
pub struct Logs {
    pub error: Sink,
    access: Option<Sink>,
    access_format: Option<String>,
}

fn sink_for(target: &LogTarget) -> std::io::Result<Sink> {
    match target {
        LogTarget::Stdout => Ok(Sink::stdout()),
        LogTarget::Stderr => Ok(Sink::stderr()),
        LogTarget::File(p) => Sink::file(p),
    }
}

impl Logs {
    pub fn open(config: &Config) -> std::io::Result<Logs> {
        log::set_level(log::slog_level(config.log_level));
        Ok(Logs {
            error: sink_for(&config.error_log)?,
            access: config.access_log.as_ref().map(sink_for).transpose()?,
            access_format: match &config.access_log_format {
                AccessLogFormat::Json => None,
                AccessLogFormat::Gunicorn(f) => Some(f.clone()),
            },
        })
    }

    fn access_log(&self) -> Option<AccessLog> {
        self.access
            .as_ref()
            .map(|s| AccessLog::new(s.clone(), self.access_format.as_deref()))
    }

    fn reopen(&self) -> std::io::Result<()> {
        self.error.reopen()?;
        if let Some(a) = &self.access {
            a.reopen()?;
        }
        Ok(())
    }
}

pub fn settings(config: &Config) -> Settings {
    Settings {
        workers: config.workers,
        timeout: config.timeout,
        graceful_timeout: config.graceful_timeout,
        pidfile: config.pidfile.clone(),
        title: TITLE.to_string(),
        singletons: SINGLETONS.iter().map(|s| s.to_string()).collect(),
        max_worker_memory: config.max_worker_memory,
    }
}

pub struct MasterApp {
    /// The first listener's real port, for `PUBLIC_URL`'s default on reload.
    bound_port: Option<u16>,
    args: ServeArgs,
    config: Config,
    logs: Logs,
    log: Logger,
    /// The bot runner's RPC socket (see `serve::bind_runner_socket`).
    rpc: UnixListener,
    /// Children killed by `--timeout` and not yet reaped (for the restart reason).
    timed_out: Vec<i32>,
    /// Stopped after a binary upgrade: the new master owns the shared sockets.
    handed_over: bool,
}

impl MasterApp {
    pub fn new(
        args: ServeArgs,
        config: Config,
        logs: Logs,
        log: Logger,
        bound_port: Option<u16>,
        rpc: UnixListener,
    ) -> MasterApp {
        MasterApp {
            bound_port,
            rpc,
            args,
            config,
            logs,
            log,
            timed_out: Vec::new(),
            handed_over: false,
        }
    }

    pub fn handed_over(&self) -> bool {
        self.handed_over
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Worker => "worker",
        Role::Singleton(i) => SINGLETONS.get(i).copied().unwrap_or("singleton"),
    }
}

/// Panics go to the JSON error log instead of raw stderr text.
pub fn install_panic_log(log: Logger) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        error!(log, "panic: {payload}"; "location" => location);
    }));
}

fn describe(reason: ExitReason) -> String {
    match reason {
        ExitReason::Code(c) => format!("exit code {c}"),
        ExitReason::Signal(9) => "SIGKILL (perhaps out of memory?)".to_string(),
        ExitReason::Signal(s) => format!("signal {s}"),
    }
}

impl MasterApp {
    /// Supervisor metrics: restarts by reason, and the fold of an ended child's
    /// values into the retired accumulator.
    fn count(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::Timeout { pid, .. } => self.timed_out.push(pid),
            Event::Exited {
                role,
                slot,
                pid,
                expected,
                ..
            } => {
                let timed_out = self.timed_out.iter().position(|p| *p == pid);
                if let Some(i) = timed_out {
                    self.timed_out.swap_remove(i);
                }
                let child = match role_name(role) {
                    BOT_RUNNER => metrics::Child::BotRunner,
                    MAILER => metrics::Child::Mailer,
                    MARKET_DATA => metrics::Child::MarketData,
                    _ => metrics::Child::Worker,
                };
                metrics::child_ended(slot, child, timed_out.is_some(), expected);
            }
            _ => {}
        }
    }
}

impl App for MasterApp {
    fn run_child(&mut self, ctx: ChildCtx) -> i32 {
        crate::metrics::enter(ctx.slot.index());
        install_panic_log(log::logger(
            &self.logs.error,
            role_name(ctx.role),
            &self.config.instance_name,
        ));
        // The exchange budgets are the instance's: each process sends its part.
        let share = match role_name(ctx.role) {
            BOT_RUNNER => budget::RUNNER_SHARE_PERMILLE,
            // The workers and the market-data process (the mailer sends none).
            _ => budget::other_share_permille(self.config.workers + 1),
        };
        budget::set_process_share(share);
        match ctx.role {
            Role::Worker => {
                let log = log::logger(&self.logs.error, "worker", &self.config.instance_name)
                    .new(o!("slot" => ctx.number));
                let access = self.logs.access_log();
                super::worker::run(ctx, &self.config, log, access, self.logs.error.clone())
            }
            Role::Singleton(_) => {
                let name = role_name(ctx.role);
                let log = log::logger(&self.logs.error, name, &self.config.instance_name);
                let mut sinks = vec![self.logs.error.clone()];
                sinks.extend(self.logs.access.clone());
                if name == MAILER {
                    crate::mail::run(ctx, &self.config, log, sinks)
                } else if name == MARKET_DATA {
                    crate::market::feed::run(ctx, &self.config, log, sinks)
                } else {
                    crate::runner::run(ctx, &self.config, &self.rpc, log, sinks)
                }
            }
        }
    }

    fn reload(&mut self) -> Result<Settings, String> {
        let mut config = crate::config::load_from_env(&self.args).map_err(|e| e.to_string())?;
        super::fix_public_url(&mut config, self.bound_port);
        if config.binds != self.config.binds {
            warn!(
                self.log,
                "bind addresses cannot change on reload; restart to apply them"
            );
        }
        log::set_level(log::slog_level(config.log_level));
        self.config = config;
        Ok(settings(&self.config))
    }

    fn upgrade_fds(&self) -> Vec<(String, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        vec![(super::RUNNER_FD_VAR.to_string(), self.rpc.as_raw_fd())]
    }

    fn reopen_logs(&mut self) {
        if let Err(e) = self.logs.reopen() {
            error!(self.log, "cannot reopen log files"; "error" => %e);
        }
    }

    fn event(&mut self, ev: Event<'_>) {
        self.count(&ev);
        let log = &self.log;
        match ev {
            Event::Listening(a) => info!(log, "Listening at: {a}"),
            Event::Spawned { role, number, pid } => {
                info!(log, "Booting {} with pid: {pid}", role_name(role); "slot" => number, "child_pid" => pid)
            }
            Event::Ready { role, number, pid } => {
                info!(log, "{} ready", role_name(role); "slot" => number, "child_pid" => pid)
            }
            Event::Exited {
                role,
                number,
                pid,
                reason,
                expected: true,
                ..
            } => {
                info!(log, "{} exited", role_name(role); "slot" => number, "child_pid" => pid,
                    "reason" => describe(reason))
            }
            Event::Exited {
                role,
                number,
                pid,
                reason,
                expected: false,
                ..
            } => {
                error!(log, "{} (pid:{pid}) exited unexpectedly: {}", role_name(role), describe(reason);
                    "slot" => number, "child_pid" => pid)
            }
            Event::Timeout {
                role,
                number,
                pid,
                request,
            } => {
                // The worker publishes "REQUEST-ID METHOD PATH" (empty when idle).
                let mut parts = request.splitn(3, ' ');
                let (rid, method, path) = (parts.next(), parts.next(), parts.next());
                crit!(log, "WORKER TIMEOUT (pid:{pid})"; "role_of_child" => role_name(role),
                    "slot" => number, "child_pid" => pid,
                    "method" => method.unwrap_or("-"), "path" => path.unwrap_or("-"),
                    "request_id" => rid.filter(|r| !r.is_empty()).unwrap_or("-"))
            }
            Event::BootFailed {
                role,
                number,
                retry_in,
            } => {
                error!(log, "{} failed to boot; retrying in {}s", role_name(role), retry_in.as_secs();
                    "slot" => number)
            }
            Event::Signal(name) => info!(log, "Handling signal: {}", name.to_lowercase()),
            Event::Unsupported(name) => {
                warn!(log, "signal {name} is not supported by this build; ignored")
            }
            Event::Reloading { generation } => {
                info!(log, "Reloading configuration"; "generation" => generation)
            }
            Event::ReloadFailed(e) => {
                error!(log, "Reload failed, keeping the running configuration: {e}")
            }
            Event::Reloaded { generation } => {
                info!(log, "Reload complete"; "generation" => generation)
            }
            Event::WorkersTarget(n) => info!(log, "Number of workers set to {n}"),
            Event::Stopping { graceful } => info!(log, "Shutting down"; "graceful" => graceful),
            Event::Stopped { handed_over } => {
                self.handed_over = handed_over;
                info!(log, "Shutdown complete"; "handed_over" => handed_over)
            }
            Event::Upgrading { pid } => {
                info!(log, "Binary upgrade: started new master"; "new_master_pid" => pid)
            }
            Event::UpgradeFailed(why) => error!(log, "Binary upgrade failed: {why}"),
            Event::UpgradeReady { pid } => {
                info!(log, "Binary upgrade: the new master is serving; TERM this one to finish";
                    "new_master_pid" => pid)
            }
            Event::StopDeferred => {
                warn!(
                    log,
                    "TERM deferred until the new master is serving (QUIT stops at once)"
                )
            }
            Event::TookOver { old_master } => {
                info!(log, "Started by a binary upgrade; stop the old master with TERM";
                    "old_master_pid" => old_master)
            }
            Event::MemoryRecycle { number, pid, rss } => {
                warn!(log, "worker past --max-worker-memory; replacing it";
                    "slot" => number, "child_pid" => pid, "rss_mb" => rss >> 20)
            }
            Event::Error(e) => error!(log, "{e}"),
        }
    }
}

//! `blitz serve`: validate, bind, prepare storage, then hand over to the supervisor.

mod master_app;
mod setup;
mod worker;

pub(crate) use master_app::SINGLETONS;

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixListener;

use blitz_master::{Address, Listener, ListenerSet, Scoreboard};
use slog::{crit, info};

use crate::config::{BindAddr, Config, ServeArgs};
use crate::log;
use master_app::{Logs, MasterApp};

/// Runs the server; returns the process exit code.
pub fn run(args: ServeArgs, config: Config) -> i32 {
    blitz_master::shield_signals();
    let logs = match Logs::open(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("blitz: cannot open log file: {e}");
            return 1;
        }
    };
    let log = log::logger(&logs.error, "master", &config.instance_name);
    master_app::install_panic_log(log.clone());
    let addresses = match resolve(&config.binds) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("blitz: {e}");
            return 2;
        }
    };
    let listeners = match bind_all(&addresses, &config) {
        Ok(l) => l,
        Err(e) => {
            crit!(log, "{e}");
            return 1;
        }
    };
    // Before anything touches the database: a second instance stops here.
    let rpc_path = crate::runner::socket_path(&config);
    let rpc = match runner_socket(&rpc_path) {
        Ok(l) => l,
        Err(e) => {
            crit!(
                log,
                "cannot create the bot runner socket {}: {e}",
                rpc_path.display()
            );
            return 1;
        }
    };
    let bound_port = listeners.first().and_then(Listener::local_port);
    let mut config = config;
    fix_public_url(&mut config, bound_port);
    if let Err(e) = setup::prepare(&config, &log) {
        crit!(log, "{e}");
        return 1;
    }
    // The rate-limit tables are sized from the limits (`coord::local`).
    let layout = crate::coord::local::Layout::new(
        &config.rate_limits,
        crate::auth::login_limit::PAIR_LIMIT,
        crate::auth::login_limit::IP_LIMIT,
    );
    let scoreboard = match Scoreboard::create(layout.region_bytes()) {
        Ok(s) => s,
        Err(e) => {
            crit!(log, "cannot allocate shared memory"; "error" => %e);
            return 1;
        }
    };
    if let Err(e) = layout.store(&scoreboard) {
        crit!(log, "cannot draw the rate-limit tables' key"; "error" => %e);
        return 1;
    }
    // Before forking: every child maps the same metric pages.
    if let Err(e) = crate::metrics::install(config.prometheus_multiproc_dir.as_deref()) {
        crit!(log, "cannot create the metrics segment"; "error" => %e);
        return 1;
    }
    info!(log, "Starting blitz {}", crate::config::cli::version(); "workers" => config.workers,
        "database" => %config.database);
    let settings = master_app::settings(&config);
    let mut app = MasterApp::new(args, config, logs, log, bound_port, rpc);
    let code = blitz_master::run(&mut app, settings, listeners, scoreboard);
    // After a binary upgrade the new master serves on the same runner socket.
    if !app.handed_over() {
        let _ = std::fs::remove_file(&rpc_path);
    }
    crate::metrics::uninstall();
    code
}

/// Environment variable carrying the runner socket's descriptor to a new master
/// started by `USR2` (see `MasterApp::upgrade_fds`).
pub(crate) const RUNNER_FD_VAR: &str = "BLITZ_RUNNER_FD";

/// The runner socket inherited from an old master on a binary upgrade, or a new one.
fn runner_socket(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    let Some(raw) = std::env::var_os(RUNNER_FD_VAR) else {
        return bind_runner_socket(path);
    };
    std::env::remove_var(RUNNER_FD_VAR);
    let fd: i32 = raw
        .to_string_lossy()
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("{RUNNER_FD_VAR} is not a descriptor")))?;
    // Close on exec again: only a deliberate upgrade passes it on.
    nix::fcntl::fcntl(
        // SAFETY: the descriptor the old master passed; open during the call.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // SAFETY: the old master passed this descriptor for us alone to own.
    Ok(unsafe { UnixListener::from_raw_fd(fd) })
}

/// The bot runner's RPC socket, owned by the master so that it outlives runner
/// restarts: requests made meanwhile wait in its queue. Only the service's user may
/// connect (mode 0600). A file left by a crashed master is replaced.
fn bind_runner_socket(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    // sun_path holds 108 bytes including the terminating NUL.
    if path.as_os_str().len() > 107 {
        return Err(std::io::Error::other(
            "the path is too long for a Unix socket (107 bytes at most); use a shorter --database path",
        ));
    }
    // A live socket means another instance runs on this database: two runners
    // would trade the same bots. A dead one is left by a crash and replaced.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::other(
            "another blitz instance is running on this database (its bot runner answers there)",
        ));
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// With `--bind HOST:0` and no `PUBLIC_URL`, links in mails name the port the kernel
/// chose, not port 0.
pub(crate) fn fix_public_url(config: &mut Config, bound_port: Option<u16>) {
    let (Some(BindAddr::Tcp { host, port: 0 }), Some(port)) = (config.binds.first(), bound_port)
    else {
        return;
    };
    let unset = format!("http://{}", config.binds[0]);
    if config.public_url == unset {
        let real = BindAddr::Tcp {
            host: host.clone(),
            port,
        };
        config.public_url = format!("http://{real}");
    }
}

/// Resolves `--bind` values; a host that does not resolve is a configuration error.
fn resolve(binds: &[BindAddr]) -> Result<Vec<Address>, String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for b in binds {
        match b {
            BindAddr::Unix(path) => out.push(Address::Unix(path.clone())),
            BindAddr::Tcp { host, port } => {
                let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| {
                        format!("invalid value \"{b}\" for --bind: cannot resolve host: {e}")
                    })?
                    .collect();
                for a in addrs {
                    if seen.insert(a) {
                        out.push(Address::Tcp(a));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The listeners: an old master's (binary upgrade), systemd's (socket activation),
/// or our own; with `--reuse-port` one SO_REUSEPORT lane per worker.
fn bind_all(addresses: &[Address], config: &Config) -> Result<ListenerSet, String> {
    if let Some(set) = ListenerSet::inherited().map_err(|e| format!("inherited listeners: {e}"))? {
        return Ok(set);
    }
    if let Some(inherited) =
        Listener::from_systemd().map_err(|e| format!("systemd sockets: {e}"))?
    {
        return Ok(ListenerSet::shared(inherited));
    }
    ListenerSet::bind(addresses, config.backlog, config.reuse_port, config.workers)
        .map_err(|e| e.to_string())
}

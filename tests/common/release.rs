//! Another build of blitz than the one under test — an earlier release, to make a
//! fixture that the current build then upgrades. It is started exactly as
//! `Server::start_in` starts the current one, so the two runs differ only in the
//! binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{listening_port, wait_for, Options, Server};

/// The release binary named by `var` (e.g. `BLITZ_RELEASE_BIN`); panics with how
/// to get one when it is unset or not a file.
pub fn binary(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("set {var} to the release's binary (cargo build --release on its commit)")
    });
    assert!(path.is_file(), "{var}={}: no such file", path.display());
    path
}

/// `bin` with a clean environment, in `dir` (as `blitz_cmd` for the current build).
pub fn command(bin: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

/// `Server::start_in` with the binary `bin`.
pub fn start_in(bin: &Path, dir: tempfile::TempDir, opts: Options<'_>) -> Server {
    let workers = opts.workers.to_string();
    let child = command(bin, dir.path())
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--workers", &workers])
        .args(["--error-logfile", "error.log", "--pid", "blitz.pid"])
        .args(["--database", "instance/database.db"])
        .args(&opts.args)
        .env("RATE_LIMITS_REGISTER", "10000/hour")
        .envs(opts.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the release binary");
    let log = dir.path().join("error.log");
    let mut port = 0;
    wait_for(Duration::from_secs(20), "Listening at", || {
        port = listening_port(&fs::read_to_string(&log).unwrap_or_default()).unwrap_or(0);
        port != 0
    });
    let server = Server {
        child,
        port,
        dir,
        workers: opts.workers,
        // The previous release runs on SQLite only.
        backing: None,
    };
    server.wait_ready(opts.workers);
    server
}

/// `bin <args> --database instance/database.db` in `dir` with `env`; asserts
/// success and returns (stdout, stderr).
pub fn cli(bin: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let out = command(bin, dir)
        .args(args)
        .args(["--database", "instance/database.db"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run blitz");
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

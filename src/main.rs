//! `blitz`: the binary. Parses the command line and dispatches to a command.

use std::process::ExitCode;

use clap::Parser;

use blitz::config::{Cli, Command};

/// Serves allocations of 1 MiB or more from `mmap`, so they go back to the kernel
/// when freed. Without this, glibc raises its threshold after the first large free,
/// and each worker's heap keeps every Argon2 buffer (19 MiB a login) it ever used:
/// measured 180 MB RSS per worker after a few hundred logins, 5 MB with it.
fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tuning value; called before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    release_large_allocations();
    let cli = Cli::parse();
    let code = match cli.into_command() {
        Command::Serve(args) => blitz::commands::serve(args),
        Command::CheckConfig(args) => blitz::commands::check_config(args),
        Command::Migrate(args) => blitz::commands::migrate(args),
        Command::User(cmd) => blitz::commands::user(cmd),
        Command::Token(cmd) => blitz::commands::token(cmd),
        Command::Loadtest(args) => blitz::commands::loadtest(args),
        Command::Paper(cmd) => blitz::commands::paper(cmd),
    };
    ExitCode::from(code as u8)
}

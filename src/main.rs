//! `blitz`: the binary. Parses the command line and dispatches to a command.

use std::process::ExitCode;

use clap::Parser;

use blitz::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.into_command() {
        Command::Serve(args) => blitz::commands::serve(args),
        Command::CheckConfig(args) => blitz::commands::check_config(args),
        Command::Migrate(args) => blitz::commands::migrate(args),
        Command::User(cmd) => blitz::commands::user(cmd),
        Command::Token(cmd) => blitz::commands::token(cmd),
    };
    ExitCode::from(code as u8)
}

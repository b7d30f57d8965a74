//! The commands of the `blitz` binary (C1). Each returns the process exit code:
//! 0 ok, 1 runtime failure, 2 bad usage or invalid configuration.

use crate::config::{self, ServeArgs};

/// `blitz serve`: validate everything first; a bad configuration never starts.
pub fn serve(args: ServeArgs) -> i32 {
    match config::load_from_env(&args) {
        Ok(cfg) => crate::serve::run(args, cfg),
        Err(e) => {
            eprintln!("blitz: {e}");
            2
        }
    }
}

/// `blitz check-config`: print the effective configuration (secrets masked).
pub fn check_config(args: ServeArgs) -> i32 {
    match config::load_from_env(&args) {
        Ok(cfg) => {
            let rows = cfg.describe();
            let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in rows {
                println!("{k:width$} = {v}");
            }
            0
        }
        Err(e) => {
            eprintln!("blitz: {e}");
            2
        }
    }
}

//! An `--env-file` read as the server reads it, then loaded as its configuration:
//! never panics, whatever the file says.
#![no_main]

use std::path::Path;

use blitz::config::cli::ServeArgs;
use blitz::config::env::LayeredEnv;
use blitz::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = LayeredEnv::from_text(Path::new("fuzz.env"), text) {
        let _ = Config::load(&ServeArgs::default(), env.file_vars());
    }
});

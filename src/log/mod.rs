//! Logging: the JSON error log and the access log, both written as whole lines
//! with one `write(2)` each, so records from many processes never interleave.
//! See docs/operations.md, Logs.

mod access;
mod json;
mod sink;
mod timefmt;

pub use access::{AccessLog, AccessRecord};
pub use json::{set_level, JsonDrain};
pub use sink::Sink;
pub use timefmt::{rfc3339, rfc3339_now, SecondClock};

use slog::{o, Drain, Logger};

use crate::config::LogLevel;

/// Builds the root logger for a process of `role` (`master`, `worker`, `bot-runner`)
/// of instance `instance` (`INSTANCE_NAME`: which host of a cluster said it).
pub fn logger(sink: &Sink, role: &'static str, instance: &str) -> Logger {
    let instance = instance.to_string();
    Logger::root(
        JsonDrain::new(sink.clone()).fuse(),
        o!("role" => role, "instance" => instance),
    )
}

/// Maps the configured level onto slog's.
pub fn slog_level(level: LogLevel) -> slog::Level {
    match level {
        LogLevel::Debug => slog::Level::Debug,
        LogLevel::Info => slog::Level::Info,
        LogLevel::Warning => slog::Level::Warning,
        LogLevel::Error => slog::Level::Error,
        LogLevel::Critical => slog::Level::Critical,
    }
}

//! An slog drain that renders one JSON object per record:
//! `{"ts","level","msg","pid","role","instance",…context keys}`.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

use super::sink::Sink;
use super::timefmt::rfc3339_now;

/// The process-wide level threshold (changed on HUP without rebuilding loggers).
static LEVEL: AtomicUsize = AtomicUsize::new(4); // slog::Level::Info

pub fn set_level(level: Level) {
    LEVEL.store(level.as_usize(), Ordering::Relaxed);
}

pub struct JsonDrain {
    sink: Sink,
}

impl JsonDrain {
    pub fn new(sink: Sink) -> JsonDrain {
        JsonDrain { sink }
    }
}

impl Drain for JsonDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        if record.level().as_usize() > LEVEL.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut out = String::with_capacity(256);
        out.push_str("{\"ts\":\"");
        out.push_str(&rfc3339_now());
        out.push_str("\",\"level\":");
        push_str(&mut out, level_name(record.level()));
        out.push_str(",\"msg\":");
        push_str(&mut out, &record.msg().to_string());
        let _ = write!(out, ",\"pid\":{}", std::process::id());
        let mut ser = JsonKv { out: &mut out };
        // Record keys first, then the logger's context (role, slot, …).
        let _ = record.kv().serialize(record, &mut ser);
        let _ = values.serialize(record, &mut ser);
        out.push_str("}\n");
        self.sink.write_line(out.as_bytes());
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct JsonKv<'a> {
    out: &'a mut String,
}

impl JsonKv<'_> {
    fn key(&mut self, key: Key) {
        self.out.push(',');
        push_str(self.out, key);
        self.out.push(':');
    }
}

impl Serializer for JsonKv<'_> {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        self.key(key);
        push_str(self.out, &val.to_string());
        Ok(())
    }
    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        self.key(key);
        push_str(self.out, val);
        Ok(())
    }
    fn emit_u64(&mut self, key: Key, val: u64) -> slog::Result {
        self.key(key);
        let _ = write!(self.out, "{val}");
        Ok(())
    }
    fn emit_i64(&mut self, key: Key, val: i64) -> slog::Result {
        self.key(key);
        let _ = write!(self.out, "{val}");
        Ok(())
    }
    fn emit_u32(&mut self, key: Key, val: u32) -> slog::Result {
        self.emit_u64(key, u64::from(val))
    }
    fn emit_i32(&mut self, key: Key, val: i32) -> slog::Result {
        self.emit_i64(key, i64::from(val))
    }
    fn emit_usize(&mut self, key: Key, val: usize) -> slog::Result {
        self.emit_u64(key, val as u64)
    }
    fn emit_f64(&mut self, key: Key, val: f64) -> slog::Result {
        self.key(key);
        if val.is_finite() {
            let _ = write!(self.out, "{val}");
        } else {
            self.out.push_str("null");
        }
        Ok(())
    }
    fn emit_bool(&mut self, key: Key, val: bool) -> slog::Result {
        self.key(key);
        self.out.push_str(if val { "true" } else { "false" });
        Ok(())
    }
    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.key(key);
        self.out.push_str("null");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::push_str;

    #[test]
    fn escapes_json_strings() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
    }
}

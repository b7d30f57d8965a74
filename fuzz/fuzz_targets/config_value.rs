//! Every configuration value parser: never panics, and what is accepted prints back
//! (as `check-config` shows it) to text that parses to the same value.
#![no_main]

use blitz::config::parse::{self, LogTarget};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse::uint_in(s, 1, 65_535);
    let _ = parse::usize_in(s, 0, usize::MAX);
    let _ = parse::seconds(s, 0, 86_400);
    let _ = parse::boolean(s);
    let _ = parse::open_unit_fraction(s);
    let _ = parse::size(s);
    let _ = parse::log_target(s, LogTarget::Stderr);
    let _ = parse::worker_class(s);
    let _ = parse::bind_list(s);
    let _ = parse::redis_url(s);
    let _ = parse::smtp_url(s);
    let _ = parse::http_url(s);
    let _ = parse::mask_url_password(s);
    let _ = parse::email(s);
    let _ = parse::mailbox(s);
    let _ = parse::secret_key(s);
    let _ = parse::password(s);
    let _ = parse::header_value(s);
    let _ = parse::short_text(s, 500);
    if let Ok(rate) = parse::rate(s) {
        assert_eq!(parse::rate(&rate.to_string()), Ok(rate), "{s:?}");
    }
    if let Ok(level) = parse::log_level(s) {
        assert_eq!(parse::log_level(level.as_str()), Ok(level));
    }
    if let Ok(format) = parse::access_log_format(s) {
        assert_eq!(parse::access_log_format(&format.to_string()), Ok(format));
    }
    if let Ok(bind) = parse::bind_addr(s) {
        assert_eq!(parse::bind_addr(&bind.to_string()), Ok(bind), "{s:?}");
    }
    if let Ok(proxies) = parse::trusted_proxies(s) {
        let shown = proxies.to_string();
        assert_eq!(parse::trusted_proxies(&shown), Ok(proxies), "{s:?}");
    }
});

//! Property tests of the configuration parsers and the env-file reader: arbitrary
//! text never panics, and every accepted spelling reads as the value it spells.
//! The `cargo fuzz` targets (docs/operations.md, Fuzzing) search the same space
//! longer, on demand.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::env::LayeredEnv;
use super::parse::{self, BindAddr, LogTarget, Rate, TrustedProxies, MAX_RATE_COUNT};

const LEVELS: [&str; 6] = ["debug", "info", "warning", "warn", "error", "critical"];

const PERIODS: [(&str, u64); 4] = [
    ("second", 1),
    ("minute", 60),
    ("hour", 3600),
    ("day", 86_400),
];

/// `word` with each letter's case chosen by the bits of `mask`.
fn cased(word: &str, mask: u64) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Blanks the parsers trim around a value.
fn blanks() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

/// Text a parser may be handed: anything, with the characters that matter to the
/// parsers made frequent.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-zA-Z/:.,@\\[\\]* \t_+-]{0,40}",
        "(unix:|redis://|smtp://|http://|\\[::1\\]:)?[0-9a-z:/.@%?=&-]{0,30}",
    ]
}

proptest! {
    // A failure is reported with its smallest input; it becomes a unit test next to
    // the parser rather than a regression file.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_parser_panics(s in any_text()) {
        let _ = parse::uint_in(&s, 1, 65_535);
        let _ = parse::usize_in(&s, 0, usize::MAX);
        let _ = parse::seconds(&s, 0, 86_400);
        let _ = parse::boolean(&s);
        let _ = parse::open_unit_fraction(&s);
        let _ = parse::size(&s);
        let _ = parse::rate(&s);
        let _ = parse::log_level(&s);
        let _ = parse::log_target(&s, LogTarget::Stdout);
        let _ = parse::access_log_format(&s);
        let _ = parse::worker_class(&s);
        let _ = parse::bind_list(&s);
        let _ = parse::trusted_proxies(&s);
        let _ = parse::redis_url(&s);
        let _ = parse::smtp_url(&s);
        let _ = parse::http_url(&s);
        let _ = parse::mask_url_password(&s);
        let _ = parse::email(&s);
        let _ = parse::mailbox(&s);
        let _ = parse::secret_key(&s);
        let _ = parse::password(&s);
        let _ = parse::header_value(&s);
        let _ = parse::short_text(&s, 10);
    }

    #[test]
    fn rates_read_in_every_spelling(
        count in 1..=MAX_RATE_COUNT,
        unit in 0..PERIODS.len(),
        plural: bool,
        per: bool,
        mask: u64,
        pad in blanks(),
    ) {
        let (name, secs) = PERIODS[unit];
        let unit_text = cased(&format!("{name}{}", if plural { "s" } else { "" }), mask);
        let text = if per {
            format!("{pad}{count} {} {unit_text}{pad}", cased("per", mask >> 8))
        } else {
            format!("{pad}{count}{pad}/{pad}{unit_text}{pad}")
        };
        let rate = Rate { count: count as u32, period: Duration::from_secs(secs) };
        prop_assert_eq!(parse::rate(&text), Ok(rate));
        prop_assert_eq!(parse::rate(&rate.to_string()), Ok(rate));
    }

    #[test]
    fn rates_out_of_range_are_refused(
        count in prop_oneof![Just(0u64), (MAX_RATE_COUNT + 1)..u64::MAX],
        unit in 0..PERIODS.len(),
    ) {
        let name = PERIODS[unit].0;
        let (slash, per) = (format!("{count}/{name}"), format!("{count} per {name}"));
        prop_assert!(parse::rate(&slash).is_err());
        prop_assert!(parse::rate(&per).is_err());
    }

    #[test]
    fn accepted_rates_print_back(s in "[0-9 ]{1,7}(/| per | PER )[a-zA-Z]{3,8}") {
        if let Ok(rate) = parse::rate(&s) {
            prop_assert_eq!(parse::rate(&rate.to_string()), Ok(rate));
        }
    }

    #[test]
    fn booleans_in_any_case(
        word in prop::sample::select(vec!["true", "yes", "1", "false", "no", "0"]),
        mask: u64,
        pad in blanks(),
    ) {
        let want = matches!(word, "true" | "yes" | "1");
        prop_assert_eq!(parse::boolean(&format!("{pad}{}{pad}", cased(word, mask))), Ok(want));
    }

    #[test]
    fn booleans_refuse_everything_else(s in any_text()) {
        let known = ["true", "yes", "1", "false", "no", "0"];
        if !known.contains(&s.trim().to_ascii_lowercase().as_str()) {
            prop_assert!(parse::boolean(&s).is_err());
        }
    }

    #[test]
    fn integers_in_range_only(n: u64, a: u64, b: u64, pad in blanks()) {
        let (min, max) = (a.min(b), a.max(b));
        let got = parse::uint_in(&format!("{pad}{n}{pad}"), min, max);
        prop_assert_eq!(got.is_ok(), (min..=max).contains(&n));
        if let Ok(v) = got {
            prop_assert_eq!(v, n);
        }
        // A sign or a digit separator is never read as part of the number.
        for bad in [format!("-{n}"), format!("+{n}"), format!("{n}_0"), format!("1 {n}")] {
            prop_assert!(parse::uint_in(&bad, 0, u64::MAX).is_err(), "{:?}", bad);
        }
        let secs = parse::seconds(&n.to_string(), min, max);
        prop_assert_eq!(secs.ok(), (min..=max).contains(&n).then(|| Duration::from_secs(n)));
    }

    #[test]
    fn sizes_with_suffixes(n in 0u64..1 << 40, suffix in 0usize..7) {
        let suffixes = [("", 0), ("k", 10), ("K", 10), ("m", 20), ("M", 20), ("g", 30), ("G", 30)];
        let (text, shift) = suffixes[suffix];
        let want = n.checked_mul(1 << shift).filter(|_| n > 0);
        prop_assert_eq!(parse::size(&format!("{n}{text}")).ok(), want);
    }

    #[test]
    fn log_levels_in_any_case(
        level in prop::sample::select(LEVELS.to_vec()),
        mask: u64,
    ) {
        let parsed = parse::log_level(&cased(level, mask));
        prop_assert!(parsed.is_ok());
        if let Ok(l) = parsed {
            prop_assert_eq!(parse::log_level(l.as_str()), Ok(l));
        }
    }

    #[test]
    fn binds_print_back(
        host in prop_oneof![
            any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
            "[a-z][a-z0-9_-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}"
                .prop_filter("a label ends in -", |h| !h.contains("-.") && !h.ends_with('-')),
        ],
        port: u16,
        path in "/[a-z0-9/._-]{1,30}",
        unix: bool,
    ) {
        let bind = if unix {
            BindAddr::Unix(path.into())
        } else {
            BindAddr::Tcp { host, port }
        };
        prop_assert_eq!(parse::bind_addr(&bind.to_string()), Ok(bind.clone()));
        let list = format!("{bind}, {bind}");
        prop_assert_eq!(parse::bind_list(&list), Ok(vec![bind.clone(), bind]));
    }

    #[test]
    fn accepted_binds_print_back(
        s in "(\\[[0-9a-f:.]{0,20}\\]|[0-9a-z._:-]{0,20}|unix:[a-z/]{0,5}):[0-9]{0,6}",
    ) {
        if let Ok(bind) = parse::bind_addr(&s) {
            prop_assert_eq!(parse::bind_addr(&bind.to_string()), Ok(bind));
        }
    }

    #[test]
    fn trusted_proxies_print_back(ips in prop::collection::vec(any::<IpAddr>(), 0..5)) {
        let text = ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(" , ");
        let want: Vec<IpAddr> = ips.iter().map(IpAddr::to_canonical).collect();
        prop_assert_eq!(parse::trusted_proxies(&text), Ok(TrustedProxies::List(want.clone())));
        let shown = TrustedProxies::List(want).to_string();
        prop_assert_eq!(parse::trusted_proxies(&shown).map(|p| p.to_string()), Ok(shown));
    }

    #[test]
    fn secret_keys_in_hex_and_base64(
        key in prop::collection::vec(any::<u8>(), 32..80),
        b64 in 0..3,
    ) {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let text = match b64 {
            0 => hex::encode(&key),
            1 => STANDARD.encode(&key),
            _ => if key[0] % 2 == 0 { URL_SAFE.encode(&key) } else { URL_SAFE_NO_PAD.encode(&key) },
        };
        prop_assert_eq!(parse::secret_key(&text), Ok(key));
    }

    #[test]
    fn url_passwords_are_masked(
        user in "[a-z]{0,8}",
        password in "[A-Z][A-Z0-9]{7,20}",
        host in "[a-z]{1,10}",
        scheme in prop::sample::select(vec!["redis", "smtp", "smtps", "http"]),
    ) {
        let masked = parse::mask_url_password(&format!("{scheme}://{user}:{password}@{host}:25/0"));
        prop_assert!(!masked.contains(&password), "{}", masked);
        prop_assert_eq!(masked, format!("{scheme}://{user}:***@{host}:25/0"));
    }

    #[test]
    fn env_files_never_panic(text in any::<String>()) {
        let _ = LayeredEnv::from_text(Path::new("props.env"), &text);
    }

    #[test]
    fn env_file_values_read_back(
        vars in prop::collection::hash_map("[A-Za-z_][A-Za-z0-9_]{0,12}", any::<String>(), 0..6),
        single: bool,
        export: bool,
    ) {
        let mut text = String::from("# generated\n\n");
        for (key, value) in &vars {
            let quoted = if single && !value.contains('\'') {
                format!("'{value}'")
            } else {
                let escaped: String = value
                    .chars()
                    .flat_map(|c| {
                        let esc = matches!(c, '"' | '\\' | '`' | '$');
                        esc.then_some('\\').into_iter().chain([c])
                    })
                    .collect();
                format!("\"{escaped}\"")
            };
            let prefix = if export { "export " } else { "" };
            text.push_str(&format!("  {prefix}{key} = {quoted}  \n"));
        }
        let env = LayeredEnv::from_text(Path::new("props.env"), &text);
        prop_assert!(env.is_ok(), "{:?}", text);
        if let Ok(env) = env {
            let want: HashMap<String, String> = vars;
            prop_assert_eq!(env.file_vars(), &want);
        }
    }
}

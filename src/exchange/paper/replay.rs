//! Replayed paper prices (`PAPER_PRICES=replay:PATH`, docs/bots.md, Exchanges): a
//! CSV file of `seconds,symbol,price` lines that sets a symbol's price at a given
//! time after the paper exchange's epoch, for runs whose prices must be known in
//! advance (demos, tests, what-if runs over a recorded path).
//!
//! The file is read and checked once, when the configuration is loaded, so a bad
//! line stops the server before it starts instead of surprising a running bot. What
//! is kept is one time series per symbol; the paper exchange asks for the price at a
//! moment (`price_at`) and for every change in an interval (`changes_between`), so it
//! can match orders against each replayed price in turn, as it does against every
//! step of the walk.
//!
//! The format:
//! - one `seconds,symbol,price` line per price change; fields may be padded with
//!   spaces; lines may end in CRLF;
//! - `seconds`: a non-negative decimal of at most three decimals (the replay counts
//!   whole milliseconds), never smaller than the line before's (any symbol);
//! - `symbol`: a symbol the paper exchange trades, such as `BTC/USDT`;
//! - `price`: a decimal above 0 (the exchange rounds it to the market's tick);
//! - an optional header `seconds,symbol,price` as the first line that is not blank
//!   or a comment; blank lines and lines starting with `#` are skipped anywhere;
//! - at least one price line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;

use super::markets;

const HEADER: [&str; 3] = ["seconds", "symbol", "price"];

/// Where the paper exchange's prices come from (`PAPER_PRICES`).
#[derive(Debug, Clone)]
pub enum PaperPrices {
    /// Every symbol follows the seeded random walk.
    Walk,
    /// The symbols the file names follow it; the others follow the walk.
    Replay(Arc<Replay>),
    /// Every symbol follows the venue's live public prices (C15).
    Live(crate::market::Venue),
}

/// A checked replay file: per symbol, its prices in time order.
pub struct Replay {
    path: PathBuf,
    /// Milliseconds since the epoch and price, non-decreasing in time; lines with the
    /// same time keep the file's order.
    series: HashMap<String, Vec<(i64, Decimal)>>,
    lines: usize,
}

/// Why a replay file was refused. `Display` says what, not which file: the
/// configuration error around it names the setting and the path.
#[derive(Debug)]
pub enum ReplayError {
    Read(std::io::Error),
    /// `line` counts from 1, as editors do.
    Line {
        line: usize,
        reason: String,
    },
    Empty,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Read(e) => write!(f, "cannot read it: {e}"),
            ReplayError::Line { line, reason } => write!(f, "line {line}: {reason}"),
            ReplayError::Empty => f.write_str("it has no price lines"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl Replay {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Replay, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(ReplayError::Read)?;
        Replay::parse(path, &text)
    }

    /// Checks `text` as the content of a replay file; `path` is only remembered.
    pub fn parse(path: &Path, text: &str) -> Result<Replay, ReplayError> {
        let mut replay = Replay {
            path: path.to_path_buf(),
            series: HashMap::new(),
            lines: 0,
        };
        let mut last_ms = 0;
        let mut header_allowed = true;
        for (ix, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |reason: String| ReplayError::Line {
                line: ix + 1,
                reason,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if std::mem::take(&mut header_allowed) && fields == HEADER {
                continue;
            }
            let (ms, symbol, price) = parse_line(&fields).map_err(at)?;
            if ms < last_ms {
                return Err(at(format!(
                    "{} seconds is earlier than the line before ({} seconds): lines must \
                     be in time order",
                    fields[0],
                    seconds_text(last_ms)
                )));
            }
            last_ms = ms;
            replay.push(symbol, ms, price);
        }
        if replay.lines == 0 {
            return Err(ReplayError::Empty);
        }
        Ok(replay)
    }

    fn push(&mut self, symbol: &str, ms: i64, price: Decimal) {
        self.series
            .entry(symbol.to_string())
            .or_default()
            .push((ms, price));
        self.lines += 1;
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file names `symbol`: if not, the symbol follows the walk.
    pub fn names(&self, symbol: &str) -> bool {
        self.series.contains_key(symbol)
    }

    /// The price of `symbol` `elapsed_ms` after the epoch: its latest line at or
    /// before that moment (the last of several at the same moment). `None` before the
    /// symbol's first line and for symbols the file does not name.
    pub fn price_at(&self, symbol: &str, elapsed_ms: i64) -> Option<Decimal> {
        let series = self.series.get(symbol)?;
        let n = series.partition_point(|&(ms, _)| ms <= elapsed_ms);
        n.checked_sub(1).map(|i| series[i].1)
    }

    /// Every line of `symbol` after `from_ms` and at or before `to_ms`, in file
    /// order, so each replayed price can be matched against in turn (a dip below a
    /// stop and back between two calls still triggers it). Empty when `to_ms` is not
    /// after `from_ms` or the file does not name the symbol.
    pub fn changes_between(
        &self,
        symbol: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = (i64, Decimal)> + '_ {
        let series = self.series.get(symbol).map_or(&[][..], Vec::as_slice);
        let start = series.partition_point(|&(ms, _)| ms <= from_ms);
        let end = series.partition_point(|&(ms, _)| ms <= to_ms).max(start);
        series[start..end].iter().copied()
    }

    /// The price of the symbol's first line: where its market opens when it is
    /// listed before that line's time. `None` for symbols the file does not name.
    pub fn first_price(&self, symbol: &str) -> Option<Decimal> {
        self.series.get(symbol)?.first().map(|&(_, price)| price)
    }

    /// The symbols the file names, in no particular order.
    pub fn symbols(&self) -> impl Iterator<Item = &str> + '_ {
        self.series.keys().map(String::as_str)
    }

    /// The number of price lines.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// Never true for a loaded file (one without price lines is refused); here for
    /// the convention that goes with `len`.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

/// Not derived: a replay can hold millions of lines, and `Config`'s `Debug` must
/// stay one readable line.
impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("path", &self.path)
            .field("symbols", &self.series.len())
            .field("lines", &self.lines)
            .finish()
    }
}

/// One price line's fields: milliseconds, symbol, price.
fn parse_line<'a>(fields: &[&'a str]) -> Result<(i64, &'a str, Decimal), String> {
    let [seconds, symbol, price] = fields else {
        return Err(format!(
            "expected 3 fields `seconds,symbol,price`, found {}",
            fields.len()
        ));
    };
    let ms = parse_seconds(seconds)?;
    if markets::listing(symbol).is_none() {
        return Err(format!(
            "symbol {symbol:?} is not one the paper exchange trades (such as BTC/USDT)"
        ));
    }
    let price = decimal(price)
        .filter(|p| *p > Decimal::ZERO)
        .ok_or_else(|| format!("price {price:?} is not a decimal above 0"))?;
    Ok((ms, symbol, price))
}

/// Seconds as whole milliseconds.
fn parse_seconds(text: &str) -> Result<i64, String> {
    let secs =
        decimal(text).ok_or_else(|| format!("seconds {text:?} is not a non-negative decimal"))?;
    if secs.normalize().scale() > 3 {
        return Err(format!(
            "seconds {text:?} has more than 3 decimals (the replay counts milliseconds)"
        ));
    }
    secs.checked_mul(Decimal::ONE_THOUSAND)
        .and_then(|ms| i64::try_from(ms).ok())
        .ok_or_else(|| format!("seconds {text:?} is too large"))
}

/// Plain decimal notation only: digits with an optional fractional part. Stricter
/// than `Decimal::from_str`, which also takes signs and `_` separators.
fn decimal(text: &str) -> Option<Decimal> {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    Decimal::from_str(text).ok()
}

fn seconds_text(ms: i64) -> String {
    (Decimal::from(ms) / Decimal::ONE_THOUSAND)
        .normalize()
        .to_string()
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    fn parse(text: &str) -> Result<Replay, ReplayError> {
        Replay::parse(Path::new("prices.csv"), text)
    }

    fn replay(text: &str) -> Replay {
        parse(text).expect("a valid replay")
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(r) => panic!("accepted {text:?}: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lines_become_series_per_symbol() {
        let r = replay("0,BTC/USDT,60000\n0.5,ETH/USDT,3000.25\n1,BTC/USDT,59999.9\n");
        assert_eq!(r.len(), 3);
        let mut symbols: Vec<&str> = r.symbols().collect();
        symbols.sort_unstable();
        assert_eq!(symbols, ["BTC/USDT", "ETH/USDT"]);
        assert_eq!(
            r.series["BTC/USDT"],
            [(0, dec!(60000)), (1000, dec!(59999.9))]
        );
        assert_eq!(r.series["ETH/USDT"], [(500, dec!(3000.25))]);
        assert_eq!(r.path(), Path::new("prices.csv"));
    }

    #[test]
    fn header_comments_blanks_spaces_and_crlf_are_allowed() {
        let text = "# recorded 2024-05-01\r\n\r\nseconds,symbol,price\r\n\
                    0 , BTC/USDT , 60000\r\n  # a dip\r\n2.125,BTC/USDT,59000\r\n";
        let r = replay(text);
        assert_eq!(
            r.series["BTC/USDT"],
            [(0, dec!(60000)), (2125, dec!(59000))]
        );
    }

    #[test]
    fn a_header_is_only_allowed_first() {
        assert_eq!(
            error("0,BTC/USDT,1\nseconds,symbol,price\n"),
            "line 2: seconds \"seconds\" is not a non-negative decimal"
        );
        assert_eq!(
            error("seconds,symbol,price\nseconds,symbol,price\n0,BTC/USDT,1\n"),
            "line 2: seconds \"seconds\" is not a non-negative decimal"
        );
    }

    #[test]
    fn a_file_without_price_lines_is_refused() {
        for text in ["", "\n\n", "# nothing\n", "seconds,symbol,price\n"] {
            assert_eq!(error(text), "it has no price lines", "{text:?}");
        }
    }

    #[test]
    fn bad_lines_name_their_number_and_the_fault() {
        let cases = [
            (
                "0,BTC/USDT",
                "expected 3 fields `seconds,symbol,price`, found 2",
            ),
            (
                "0,BTC/USDT,1,2",
                "expected 3 fields `seconds,symbol,price`, found 4",
            ),
            (
                "-1,BTC/USDT,1",
                "seconds \"-1\" is not a non-negative decimal",
            ),
            (
                "+1,BTC/USDT,1",
                "seconds \"+1\" is not a non-negative decimal",
            ),
            (
                "1e3,BTC/USDT,1",
                "seconds \"1e3\" is not a non-negative decimal",
            ),
            (
                "1_000,BTC/USDT,1",
                "seconds \"1_000\" is not a non-negative decimal",
            ),
            (
                ".5,BTC/USDT,1",
                "seconds \".5\" is not a non-negative decimal",
            ),
            (
                "5.,BTC/USDT,1",
                "seconds \"5.\" is not a non-negative decimal",
            ),
            (
                "1.2.3,BTC/USDT,1",
                "seconds \"1.2.3\" is not a non-negative decimal",
            ),
            (
                "0.0001,BTC/USDT,1",
                "seconds \"0.0001\" has more than 3 decimals (the replay counts milliseconds)",
            ),
            (
                "99999999999999999999,BTC/USDT,1",
                "seconds \"99999999999999999999\" is too large",
            ),
            (
                "0,BTCUSDT,1",
                "symbol \"BTCUSDT\" is not one the paper exchange trades (such as BTC/USDT)",
            ),
            (
                "0,btc/usdt,1",
                "symbol \"btc/usdt\" is not one the paper exchange trades (such as BTC/USDT)",
            ),
            ("0,BTC/USDT,0", "price \"0\" is not a decimal above 0"),
            (
                "0,BTC/USDT,0.000",
                "price \"0.000\" is not a decimal above 0",
            ),
            ("0,BTC/USDT,-5", "price \"-5\" is not a decimal above 0"),
            ("0,BTC/USDT,", "price \"\" is not a decimal above 0"),
            ("0,BTC/USDT,abc", "price \"abc\" is not a decimal above 0"),
            ("0,BTC/USDT,NaN", "price \"NaN\" is not a decimal above 0"),
        ];
        for (line, reason) in cases {
            let text = format!("seconds,symbol,price\n0,ETH/USDT,3000\n{line}\n");
            assert_eq!(error(&text), format!("line 3: {reason}"), "{line:?}");
        }
    }

    #[test]
    fn trailing_zeros_do_not_count_as_decimals() {
        let r = replay("1.500000,BTC/USDT,60000.00\n");
        assert_eq!(r.series["BTC/USDT"], [(1500, dec!(60000))]);
    }

    #[test]
    fn lines_must_be_in_time_order_across_symbols() {
        assert_eq!(
            error("0,BTC/USDT,1\n\n10.5,ETH/USDT,2\n10.25,BTC/USDT,3\n"),
            "line 4: 10.25 seconds is earlier than the line before (10.5 seconds): lines \
             must be in time order"
        );
    }

    #[test]
    fn ties_are_kept_in_file_order_and_the_last_one_holds() {
        let r = replay("5,BTC/USDT,100\n5,ETH/USDT,7\n5,BTC/USDT,90\n5,BTC/USDT,95\n");
        assert_eq!(r.price_at("BTC/USDT", 5000), Some(dec!(95)));
        let path: Vec<_> = r.changes_between("BTC/USDT", 0, 5000).collect();
        assert_eq!(
            path,
            [(5000, dec!(100)), (5000, dec!(90)), (5000, dec!(95))]
        );
        assert_eq!(r.first_price("BTC/USDT"), Some(dec!(100)));
    }

    #[test]
    fn price_at_is_the_latest_line_at_or_before() {
        let r = replay("1,BTC/USDT,100\n3,BTC/USDT,110\n3.001,ETH/USDT,7\n");
        assert_eq!(r.price_at("BTC/USDT", -1), None);
        assert_eq!(r.price_at("BTC/USDT", 0), None);
        assert_eq!(r.price_at("BTC/USDT", 999), None);
        assert_eq!(r.price_at("BTC/USDT", 1000), Some(dec!(100)));
        assert_eq!(r.price_at("BTC/USDT", 2999), Some(dec!(100)));
        assert_eq!(r.price_at("BTC/USDT", 3000), Some(dec!(110)));
        assert_eq!(r.price_at("BTC/USDT", i64::MAX), Some(dec!(110)));
        assert_eq!(r.price_at("ETH/USDT", 3000), None);
        assert_eq!(r.price_at("ETH/USDT", 3001), Some(dec!(7)));
        assert_eq!(r.price_at("SOL/USDT", 5000), None);
    }

    #[test]
    fn names_and_first_price() {
        let r = replay("2,ETH/USDT,3000\n4,ETH/USDT,3100\n");
        assert!(r.names("ETH/USDT"));
        assert!(!r.names("BTC/USDT"));
        assert_eq!(r.first_price("ETH/USDT"), Some(dec!(3000)));
        assert_eq!(r.first_price("BTC/USDT"), None);
    }

    #[test]
    fn changes_between_is_every_line_after_from_up_to_to() {
        // A path that dips and comes back between two calls: each line is reported.
        let r = replay("0,BTC/USDT,100\n1,BTC/USDT,95\n2,BTC/USDT,89\n3,BTC/USDT,101\n");
        let between = |from, to| r.changes_between("BTC/USDT", from, to).collect::<Vec<_>>();
        assert_eq!(
            between(0, 3000),
            [(1000, dec!(95)), (2000, dec!(89)), (3000, dec!(101))]
        );
        assert_eq!(between(-1, 1000), [(0, dec!(100)), (1000, dec!(95))]);
        assert_eq!(between(999, 1999), [(1000, dec!(95))]);
        assert_eq!(between(1000, 1999), []);
        assert_eq!(between(3000, i64::MAX), []);
        assert_eq!(between(2000, 1000), [], "a backwards interval is empty");
        assert_eq!(between(1000, 1000), []);
        assert_eq!(r.changes_between("ETH/USDT", 0, 3000).count(), 0);
    }

    #[test]
    fn load_reads_the_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "seconds,symbol,price\n0,SOL/USDT,150.5\n").unwrap();
        let r = Replay::load(&path).unwrap();
        assert_eq!(r.price_at("SOL/USDT", 0), Some(dec!(150.5)));
        assert_eq!(r.path(), path);

        let missing = Replay::load(&dir.path().join("none.csv")).unwrap_err();
        assert!(
            missing.to_string().starts_with("cannot read it: "),
            "{missing}"
        );
        std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        let binary = Replay::load(&path).unwrap_err();
        assert!(
            binary.to_string().starts_with("cannot read it: "),
            "{binary}"
        );
    }

    #[test]
    fn debug_is_a_summary() {
        let r = replay("0,BTC/USDT,1\n1,BTC/USDT,2\n");
        assert_eq!(
            format!("{r:?}"),
            "Replay { path: \"prices.csv\", symbols: 1, lines: 2 }"
        );
    }
}

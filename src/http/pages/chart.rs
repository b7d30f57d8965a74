//! The PnL charts as inline SVG drawn on the server: geometry in attributes (not
//! `style`), so the self-only CSP holds. Every bar and point carries its text in
//! `<title>` (hover) and `data-tip` (the page script shows it on a tap).

use std::fmt::Write;

use rust_decimal::Decimal;

use super::html::escape;
use super::view::signed;
use crate::bots::pnl::Day;
use crate::money;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;
/// Room above and below the bars.
const PAD: f64 = 8.0;

/// One bar per day, green above the zero line, red below; each bar's tooltip
/// (`<title>`) names the day, its PnL and trade count.
pub fn daily(days: &[Day]) -> String {
    // Geometry is drawing, not money: floats.
    let pnl = |d: &Day| money::to_f64(d.pnl);
    let max_up = days.iter().map(pnl).fold(0.0_f64, f64::max);
    let max_down = days.iter().map(|d| -pnl(d)).fold(0.0_f64, f64::max);
    let span = (max_up + max_down).max(f64::EPSILON);
    let usable = HEIGHT - 2.0 * PAD;
    let zero_y = PAD + usable * max_up / span;
    let slot = WIDTH / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"Daily PnL, one bar per day\" preserveAspectRatio=\"none\">"
    );
    for (i, d) in days.iter().enumerate() {
        let h = usable * pnl(d).abs() / span;
        let up = !d.pnl.is_sign_negative() || d.pnl.is_zero();
        let y = if up { zero_y - h } else { zero_y };
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let class = if up { "up" } else { "down" };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{bar:.2}\" \
             height=\"{:.2}\" data-tip=\"{tip}\"><title>{tip}</title></rect>",
            h.max(0.0),
            tip = format!(
                "{}: {} USDT, {} trades",
                escape(&d.date),
                signed(d.pnl),
                d.trades
            ),
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"0\" x2=\"{WIDTH}\" y1=\"{zero_y:.2}\" y2=\"{zero_y:.2}\"/></svg>"
    );
    svg
}

/// Size of the equity chart's drawing; its text is drawn at this scale, so the
/// aspect ratio is kept (no `preserveAspectRatio="none"`).
const EQ_W: f64 = 420.0;
const EQ_H: f64 = 230.0;
/// Room for the axes' labels: left (prices), bottom (dates), top and right.
const EQ_LEFT: f64 = 62.0;
const EQ_BOTTOM: f64 = 36.0;
const EQ_TOP: f64 = 18.0;
const EQ_RIGHT: f64 = 12.0;

/// The equity curve: cumulative PnL at the end of each day of `days`, a point per
/// day with its text, a labelled price axis (lowest, zero, highest) and a date
/// axis (first, middle, last day).
pub fn equity(days: &[Day]) -> String {
    let mut total = Decimal::ZERO;
    let points: Vec<Point> = days
        .iter()
        .map(|d| {
            total += d.pnl;
            Point {
                date: &d.date,
                equity: total,
                day: d.pnl,
            }
        })
        .collect();
    // The axis' ends are amounts, labelled exactly; only their position is drawn
    // with floats.
    let hi = points
        .iter()
        .map(|p| p.equity)
        .fold(Decimal::ZERO, Decimal::max);
    let lo = points
        .iter()
        .map(|p| p.equity)
        .fold(Decimal::ZERO, Decimal::min);
    let frame = Frame::new(hi, lo, points.len());
    let mut svg = format!(
        "<svg class=\"equity\" viewBox=\"0 0 {EQ_W} {EQ_H}\" role=\"img\" \
         aria-label=\"Equity: cumulative PnL in USDT by day\">"
    );
    // Zero is often the lowest (or highest) value too: label it once.
    let mut levels = vec![hi, Decimal::ZERO, lo];
    levels.dedup();
    frame.axes(&mut svg, &levels);
    frame.dates(&mut svg, &points);
    frame.curve(&mut svg, &points);
    svg.push_str("</svg>");
    svg
}

/// One day of the equity curve.
struct Point<'a> {
    date: &'a str,
    equity: Decimal,
    day: Decimal,
}

/// Where the equity chart draws: the value range and the number of days.
struct Frame {
    hi: f64,
    span: f64,
    step: f64,
    days: usize,
}

impl Frame {
    fn new(hi: Decimal, lo: Decimal, days: usize) -> Frame {
        let (hi, lo) = (money::to_f64(hi), money::to_f64(lo));
        let width = EQ_W - EQ_LEFT - EQ_RIGHT;
        Frame {
            hi,
            span: (hi - lo).max(f64::EPSILON),
            step: width / (days.max(2) - 1) as f64,
            days,
        }
    }

    fn x(&self, i: usize) -> f64 {
        EQ_LEFT + i as f64 * self.step
    }

    fn y(&self, v: Decimal) -> f64 {
        let height = EQ_H - EQ_TOP - EQ_BOTTOM;
        EQ_TOP + height * (self.hi - money::to_f64(v)) / self.span
    }

    /// Both axes with their titles, and a grid line labelled with each of `levels`.
    fn axes(&self, svg: &mut String, levels: &[Decimal]) {
        let (left, right, bottom) = (EQ_LEFT, EQ_W - EQ_RIGHT, EQ_H - EQ_BOTTOM);
        let foot = EQ_H - 3.0;
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{left}\" x2=\"{left}\" y1=\"{EQ_TOP}\" y2=\"{bottom}\"/>\
             <line class=\"axis\" x1=\"{left}\" x2=\"{right}\" y1=\"{bottom}\" y2=\"{bottom}\"/>\
             <text class=\"label\" x=\"4\" y=\"11\">USDT</text>\
             <text class=\"label\" x=\"{right}\" y=\"{foot}\" text-anchor=\"end\">day (UTC)</text>"
        );
        for &v in levels {
            let yv = self.y(v);
            let label = if v.is_zero() { "0".into() } else { signed(v) };
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{left}\" x2=\"{right}\" y1=\"{yv:.2}\" y2=\"{yv:.2}\"/>\
                 <text class=\"tick\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{label}</text>",
                left - 4.0,
                yv + 4.0,
            );
        }
    }

    /// The first, middle and last day under the date axis.
    fn dates(&self, svg: &mut String, points: &[Point]) {
        let n = self.days;
        for i in [0, n / 2, n.saturating_sub(1)] {
            let Some(p) = points.get(i) else { continue };
            let anchor = match i {
                0 => "start",
                _ if i + 1 == n => "end",
                _ => "middle",
            };
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"{anchor}\">{}</text>",
                self.x(i),
                EQ_H - EQ_BOTTOM + 14.0,
                escape(p.date)
            );
        }
    }

    /// The line through the days, and a point per day that says its values.
    fn curve(&self, svg: &mut String, points: &[Point]) {
        let line: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.2},{:.2}", self.x(i), self.y(p.equity)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"curve\" points=\"{}\"/>",
            line.join(" ")
        );
        for (i, p) in points.iter().enumerate() {
            let tip = format!(
                "{}: equity {} USDT (day {})",
                escape(p.date),
                signed(p.equity),
                signed(p.day)
            );
            let _ = write!(
                svg,
                "<circle class=\"point\" cx=\"{:.2}\" cy=\"{:.2}\" r=\"5\" tabindex=\"0\" \
                 data-tip=\"{tip}\"><title>{tip}</title></circle>",
                self.x(i),
                self.y(p.equity)
            );
        }
    }
}

/// A horizontal bar split into wins (green) and losses (red).
pub fn win_loss(wins: u64, losses: u64) -> String {
    let total = (wins + losses).max(1) as f64;
    let w = 100.0 * wins as f64 / total;
    format!(
        "<svg class=\"winloss\" viewBox=\"0 0 100 6\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{wins} wins, {losses} losses\">\
         <rect class=\"up\" x=\"0\" y=\"0\" width=\"{w:.2}\" height=\"6\"/>\
         <rect class=\"down\" x=\"{w:.2}\" y=\"0\" width=\"{:.2}\" height=\"6\"/></svg>",
        if wins + losses == 0 { 0.0 } else { 100.0 - w }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, pnl: i64) -> Day {
        Day {
            date: date.into(),
            pnl: pnl.into(),
            trades: 1,
            wins: u64::from(pnl > 0),
            losses: u64::from(pnl < 0),
        }
    }

    #[test]
    fn bars_sit_on_the_zero_line() {
        let svg = daily(&[day("2026-11-01", 10), day("2026-11-02", -5)]);
        assert_eq!(svg.matches("<rect").count(), 2);
        // 10 up and 5 down share 184 units: the zero line is 2/3 of the way down.
        assert!(svg.contains("y1=\"130.67\""), "{svg}");
        assert!(
            svg.contains("class=\"down\" x=\"345.00\" y=\"130.67\""),
            "{svg}"
        );
        assert!(svg.contains("<title>2026-11-02: -5.00 USDT, 1 trades</title>"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn the_equity_axis_is_labelled_with_exact_decimals() {
        // As a float 1.005 is 1.00499…, which would print +1.00.
        let mut d = day("2026-11-01", 0);
        d.pnl = rust_decimal::Decimal::new(1005, 3);
        let svg = equity(&[d]);
        assert!(svg.contains(">+1.01</text>"), "{svg}");
        assert_eq!(svg.matches(">0</text>").count(), 1, "zero is labelled once");
    }

    #[test]
    fn the_equity_curve_adds_up_and_labels_its_axes() {
        let svg = equity(&[
            day("2026-11-01", 10),
            day("2026-11-02", -5),
            day("2026-11-03", 7),
        ]);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(
            svg.contains("2026-11-02: equity +5.00 USDT (day -5.00)"),
            "{svg}"
        );
        assert!(svg.contains("2026-11-03: equity +12.00 USDT"), "{svg}");
        assert!(
            svg.contains(">+12.00</text>") && svg.contains(">0</text>"),
            "{svg}"
        );
        assert!(svg.contains(">USDT</text>") && svg.contains(">day (UTC)</text>"));
        assert!(svg.contains(">2026-11-01</text>") && svg.contains(">2026-11-03</text>"));
        assert!(!svg.contains("style=") && !svg.contains("<rect"));
    }

    #[test]
    fn empty_periods_draw_nothing_but_the_axis() {
        assert_eq!(daily(&[]).matches("<rect").count(), 0);
        assert!(win_loss(0, 0).contains("width=\"0.00\""));
        assert!(win_loss(3, 1).contains("width=\"75.00\""));
    }
}

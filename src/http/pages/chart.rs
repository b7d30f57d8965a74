//! The PnL charts as inline SVG drawn on the server: no chart library, no script,
//! and geometry in attributes (not `style`), so the self-only CSP holds.

use std::fmt::Write;

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
             height=\"{:.2}\"><title>{}: {} USDT, {} trades</title></rect>",
            h.max(0.0),
            escape(&d.date),
            signed(d.pnl),
            d.trades
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"0\" x2=\"{WIDTH}\" y1=\"{zero_y:.2}\" y2=\"{zero_y:.2}\"/></svg>"
    );
    svg
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
    fn empty_periods_draw_nothing_but_the_axis() {
        assert_eq!(daily(&[]).matches("<rect").count(), 0);
        assert!(win_loss(0, 0).contains("width=\"0.00\""));
        assert!(win_loss(3, 1).contains("width=\"75.00\""));
    }
}

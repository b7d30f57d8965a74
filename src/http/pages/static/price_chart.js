// Blitz pages: the dashboard's candle chart (lightweight-charts, embedded by the
// binary and loaded on the dashboard only) with the bot's average entry,
// take-profit, stop, resting legs and liquidation price as lines, prices in the
// market's decimals, and the last candle kept live from the mark price. Shared as
// `window.Blitz.priceChart`; dashboard.js drives it.
"use strict";

(function () {
  const { $, api } = window.Blitz;

  function present(v) {
    return v !== null && v !== undefined;
  }

  const LINE_COLOURS = { avg: "#1f5fbf", tp: "#13803d", sl: "#c0262d", leg: "#8a5a00", liq: "#7b2cbf" };

  const chart = {
    api: null,
    series: null,
    lastClose: null,
    last: null,
    interval: "1m",

    // Seconds per candle of an interval name.
    span(iv) {
      return { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 }[iv] || 60;
    },

    // The library draws UTC; shifting by the browser's offset shows local time.
    local(tSec) {
      return tSec - new Date(tSec * 1000).getTimezoneOffset() * 60;
    },

    // Prices with the market's decimals (a tick of 0.00001 shows 5), so a line at
    // a leg's price reads that price exactly; cents when the tick is unknown.
    priceFormat(tick) {
      if (!tick || !(Number(tick) > 0)) return { type: "price", precision: 2, minMove: 0.01 };
      return { type: "price", precision: (tick.split(".")[1] || "").length, minMove: Number(tick) };
    },

    colours() {
      const css = getComputedStyle(document.documentElement);
      const v = (n) => css.getPropertyValue(n).trim();
      return { bg: v("--card"), text: v("--text"), grid: v("--line") };
    },

    // `onData` runs whenever new candles are drawn (the last close changed).
    init(el, onData) {
      this.onData = onData;
      const LW = window.LightweightCharts;
      if (!LW) return;
      const c = this.colours();
      this.api = LW.createChart(el, {
        autoSize: true,
        // The logo would inject a <style> element, which the pages' CSP refuses;
        // the attribution is a link under the chart instead (the library's NOTICE).
        layout: { background: { color: c.bg }, textColor: c.text, attributionLogo: false },
        grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
        crosshair: { mode: LW.CrosshairMode.Normal },
        timeScale: { timeVisible: true, secondsVisible: false },
        rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.1 } },
      });
      this.series = this.api.addSeries(LW.CandlestickSeries, {
        upColor: "#13803d", downColor: "#c0262d", borderVisible: false,
        wickUpColor: "#13803d", wickDownColor: "#c0262d",
        priceFormat: this.priceFormat(el.dataset.tick),
        // The scale covers the ladder's lines too, not only the candles: a leg or
        // the liquidation price far from the price stays in view.
        autoscaleInfoProvider: (original) => {
          const res = original();
          const prices = this.series ? this.series.priceLines().map((l) => l.options().price) : [];
          if (!res || !prices.length) return res;
          const r = res.priceRange;
          return Object.assign({}, res, { priceRange: {
            minValue: Math.min(r.minValue, ...prices), maxValue: Math.max(r.maxValue, ...prices) } });
        },
      });
      let first = [];
      try {
        first = JSON.parse(el.dataset.candles || "[]");
      } catch (e) {
        first = [];
      }
      if (first.length) this.set(first);
      else this.load();
      document.addEventListener("blitz-theme", () => {
        const k = this.colours();
        this.api.applyOptions({ layout: { background: { color: k.bg }, textColor: k.text },
          grid: { vertLines: { color: k.grid }, horzLines: { color: k.grid } } });
      });
    },

    set(rows) {
      const bars = rows.map((r) => ({ time: this.local(Math.floor(r[0] / 1000)), open: Number(r[1]),
        high: Number(r[2]), low: Number(r[3]), close: Number(r[4]) }));
      this.series.setData(bars);
      this.last = bars.length ? Object.assign({}, bars[bars.length - 1]) : null;
      this.lastClose = this.last ? this.last.close : null;
      if (this.onData) this.onData();
    },

    async load() {
      if (!this.series || document.hidden) return;
      const el = $("#price-chart");
      const q = new URLSearchParams({ exchange: el.dataset.exchange, symbol: el.dataset.symbol,
        interval: this.interval, limit: "200" });
      const res = await api("GET", "/api/markets/candles?" + q);
      if (res.ok) this.set(res.data.candles);
    },

    // The mark price of each status poll moves the last candle (or opens the next).
    live(s) {
      if (!this.series || !s.position || !present(s.position.mark_price) || s.price_stale) return;
      const price = Number(s.position.mark_price);
      const span = this.span(this.interval);
      const now = this.local(Math.floor(Date.now() / 1000 / span) * span);
      if (this.last && now < this.last.time) return;
      if (!this.last || now > this.last.time) {
        this.last = { time: now, open: price, high: price, low: price, close: price };
      } else {
        this.last.high = Math.max(this.last.high, price);
        this.last.low = Math.min(this.last.low, price);
        this.last.close = price;
      }
      this.series.update(Object.assign({}, this.last));
      this.lastClose = price;
    },
  };

  // The ladder as horizontal lines: one price line per level, redrawn from the
  // latest status and open orders. Tests read them through `series.priceLines()`.
  chart.drawLines = function (s, orders) {
    const series = chart.series;
    if (!series || !s) return;
    series.priceLines().forEach((l) => series.removePriceLine(l));
    const add = (kind, price, title) => {
      if (!present(price)) return;
      series.createPriceLine({ price: Number(price), color: LINE_COLOURS[kind], lineWidth: kind === "leg" ? 1 : 2,
        lineStyle: kind === "leg" ? 2 : 0, axisLabelVisible: true, title });
    };
    const p = s.position;
    if (p) add("avg", p.avg_entry, "avg entry");
    add("tp", s.take_profit_price, "take-profit");
    add("sl", s.stop_loss_price, "stop");
    orders.filter((o) => o.kind === "leg" && present(o.price)).forEach((o) => add("leg", o.price, "leg " + o.leg));
    if (p) add("liq", p.liquidation_price, "liquidation");
  };

  window.Blitz.priceChart = chart;
})();

// Blitz pages, part 4 of 4: the dashboard of one bot (`#bot[data-bot]`). Polls
// /api/bots/<id>/status every 5 s (within the default status limit), ticks the
// uptime, runs Start / Stop / Refresh / Recover with buttons that follow the state,
// feeds the price chart (price_chart.js) the status and the open orders, and
// refreshes events, trades, open orders and the paper account. Reason and event codes are put in words with the server's
// tables (`data-words`), so both write the same text.
"use strict";

(function () {
  const { $, $$, api, describe, say, amount, signed, tone, localTime, priceChart: chart } = window.Blitz;

  let botId = "";
  const base = () => "/api/bots/" + botId;
  let lastStatus = null;
  let lastOrders = [];

  // ---- words ----------------------------------------------------------------

  function tables() {
    try {
      return JSON.parse($("#bot").dataset.words || "{}");
    } catch (e) {
      return {};
    }
  }

  function words(kind, code) {
    const t = tables()[kind] || {};
    return t[code] || String(code).replace(/_/g, " ");
  }

  function eventWords(code) {
    const w = words("event", code);
    return w.charAt(0).toUpperCase() + w.slice(1);
  }

  // Recover's action codes (`created_leg_2`) as a sentence.
  function actionWords(a) {
    const leg = /^created_leg_(\d+)$/.exec(a);
    if (leg) return "ladder leg " + leg[1];
    return { created_tp: "the take-profit", created_sl: "the stop-loss" }[a] || a.replace(/_/g, " ");
  }

  function present(v) {
    return v !== null && v !== undefined;
  }

  // ---- status card ----------------------------------------------------------

  function uptimeText(secs) {
    const s = Math.max(0, Math.floor(secs));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, r = s % 60;
    const p2 = (n) => String(n).padStart(2, "0");
    if (d > 0) return d + "d " + h + "h " + p2(m) + "m";
    if (h > 0) return h + "h " + p2(m) + "m " + p2(r) + "s";
    if (m > 0) return m + "m " + p2(r) + "s";
    return r + "s";
  }

  const clock = { base: 0, at: 0, running: false };

  // The same text as the server's card (src/http/pages/view.rs).
  function stopLossText(s) {
    if (!present(s.stop_loss_price)) return "-";
    return amount(s.stop_loss_price) + ", " + (s.stop_on_exchange ? "on the exchange" : "watched by the bot");
  }

  function show(sel, on) {
    $(sel).hidden = !on;
  }

  function setText(sel, text, cls) {
    const el = $(sel);
    el.textContent = text;
    if (cls !== undefined) el.className = cls;
  }

  const ACTIVE = ["running", "starting", "stopping"];

  // Start only when stopped; Stop (and its mode) only when active; Recover only
  // while running. A button pressed in the wrong state would only earn a 409.
  function followState(s) {
    const active = ACTIVE.includes(s.status);
    $('[data-op="start"]').disabled = active;
    $('[data-op="stop"]').disabled = !active || s.status === "stopping";
    $("#stop-mode").disabled = !active || s.status === "stopping";
    $('[data-op="recover"]').disabled = s.status !== "running";
    $(".stop-group").classList.toggle("off", !active);
  }

  // The current price: the position's mark, else the chart's last close.
  function currentPrice(s) {
    if (s.position && present(s.position.mark_price)) return Number(s.position.mark_price);
    return chart.lastClose;
  }

  function pct(from, to) {
    return (((to - from) / from) * 100).toFixed(2) + " %";
  }

  // The nearest resting leg ahead of the price (below for a long, above for a short).
  function nextLeg(side, price) {
    const legs = lastOrders.filter((o) => o.kind === "leg" && present(o.price)).map((o) => Number(o.price));
    const ahead = legs.filter((p) => (side === "short" ? p > price : p < price));
    if (!ahead.length) return null;
    return side === "short" ? Math.min(...ahead) : Math.max(...ahead);
  }

  function renderDistances(s) {
    const price = currentPrice(s);
    const stale = s.price_stale === true;
    const priceEl = $("#st-price");
    priceEl.textContent = present(price) ? amount(price) + (stale ? " (stale)" : "") : "-";
    priceEl.classList.toggle("stale", stale);
    if (!present(price) || !price) return;
    const tp = present(s.take_profit_price) ? Number(s.take_profit_price) : null;
    setText("#st-to-tp", tp ? pct(price, tp) + " to " + amount(tp) : "-");
    const leg = nextLeg(s.side, price);
    setText("#st-to-leg", leg ? pct(price, leg) + " to " + amount(leg) : "-");
  }

  function renderStatus(s) {
    lastStatus = s;
    const badge = $("#st-badge");
    badge.textContent = s.status;
    badge.className = "badge st-" + s.status;
    setText("#st-message", s.message);
    setText("#st-market", s.exchange + " · " + s.symbol + " · " + s.side);
    setText("#st-cycle", s.cycle);
    let pos = "none";
    const p = s.position;
    if (p) pos = amount(p.size) + " @ " + amount(p.avg_entry);
    setText("#st-position", pos);
    const upnl = p && present(p.unrealized_pnl) ? p.unrealized_pnl : null;
    setText("#st-upnl", present(upnl) ? signed(upnl) + " USDT" + (s.price_stale ? " (stale)" : "") : "-",
      present(upnl) ? tone(upnl) + (s.price_stale ? " stale" : "") : "");
    setText("#st-liq", p && present(p.liquidation_price) ? amount(p.liquidation_price) : "-");
    setText("#st-orders", s.open_orders);
    setText("#st-error", s.last_error || "none");
    setText("#st-tp", present(s.take_profit_price) ? amount(s.take_profit_price) : "-");
    setText("#st-sl", stopLossText(s));
    show("#st-after-cycle", s.after_cycle === true);
    show("#st-pending", s.pending_config === true);
    show("#st-next-box", !!s.next_entry_at);
    if (s.next_entry_at) setText("#st-next", localTime(Date.parse(s.next_entry_at) / 1000));
    show("#st-reason-box", !!s.stop_reason);
    setText("#st-reason", s.stop_reason ? words("stop", s.stop_reason) : "");
    show("#st-admin", s.stop_reason === "admin");
    show("#st-admin-position", s.stop_reason === "admin" && !!p);
    followState(s);
    renderDistances(s);
    chart.live(s);
    chart.drawLines(s, lastOrders);
    const seen = [s.status, s.cycle, s.open_orders, p ? p.size : 0].join("|");
    if (seen !== ordersSeen) {
      ordersSeen = seen;
      refreshOrders();
    }
    clock.base = s.uptime;
    clock.at = Date.now();
    clock.running = ACTIVE.includes(s.status);
    tick();
  }

  function tick() {
    const el = $("#st-uptime");
    const secs = clock.running ? clock.base + (Date.now() - clock.at) / 1000 : clock.base;
    el.textContent = uptimeText(secs);
    el.dataset.seconds = Math.floor(secs);
    el.dataset.running = clock.running;
  }

  // A poll that failed leaves the values as they were, marked as not current.
  function markStale(on) {
    const tag = $("#st-stale");
    if (on && tag.hidden) tag.textContent = "not updated since " + localTime(Date.now() / 1000 - POLL_MS / 1000);
    tag.hidden = !on;
    $("#bot").classList.toggle("stale", on);
  }

  // ---- open orders: read when the status changes, not on every poll ------

  let ordersSeen = null;

  const kindWords = { entry: "entry", leg: "leg", take_profit: "take profit", stop_loss: "stop loss" };

  function orderCells(o) {
    const what = (kindWords[o.kind] || o.kind) + (present(o.leg) ? " " + o.leg : "");
    let price = "market";
    if (present(o.trigger_price)) price = "trigger " + amount(o.trigger_price);
    else if (present(o.price)) price = amount(o.price);
    return [what, o.side, o.type, price, amount(o.qty)];
  }

  async function refreshOrders() {
    const res = await api("GET", base() + "/orders");
    const fb = $("#orders-feedback");
    // A refused read keeps the last list: it says only why it is not newer.
    if (!res.ok) return say(fb, "Could not read the open orders: " + describe(res, "orders"), "bad");
    say(fb, "");
    lastOrders = res.data.orders;
    const body = $("#open-orders tbody");
    body.replaceChildren();
    res.data.orders.forEach((o) => {
      const row = document.createElement("tr");
      orderCells(o).forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i === 2) td.className = "opt";
        if (i >= 3) td.className = "num";
        row.append(td);
      });
      body.append(row);
    });
    if (!res.data.orders.length) body.innerHTML = '<tr class="empty"><td colspan="5">No open orders.</td></tr>';
    chart.drawLines(lastStatus, lastOrders);
    if (lastStatus) renderDistances(lastStatus);
    return res;
  }

  const POLL_MS = 5000;
  let pollTimer = null;

  async function poll() {
    clearTimeout(pollTimer);
    // A tab in the background does not poll (three open tabs would otherwise
    // spend the status rate limit); it polls again when shown.
    if (document.hidden) return undefined;
    const res = await api("GET", base() + "/status");
    let wait = POLL_MS;
    if (res.ok) renderStatus(res.data);
    else if (res.status === 401) return window.location.assign("/login?next=%2F");
    else if (res.status === 429) wait = Math.max(POLL_MS, res.retry * 1000);
    markStale(!res.ok);
    pollTimer = setTimeout(poll, wait);
    return res;
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  // ---- events, trades, paper account ---------------------------------------

  // As the server's words::event_tone: red for losses and trouble, a closed cycle
  // by the sign of its PnL.
  function eventTone(e) {
    if ((tables().bad || []).includes(e.kind)) return "neg";
    if (e.kind !== "cycle_closed" || !e.data || !present(e.data.pnl)) return "";
    const n = Number(e.data.pnl);
    return n > 0 ? "pos" : n < 0 ? "neg" : "";
  }

  function eventItem(e) {
    const li = document.createElement("li");
    const t = document.createElement("time");
    t.dataset.unix = e.created_at;
    t.textContent = localTime(e.created_at);
    const k = document.createElement("span");
    k.className = "kind " + eventTone(e);
    k.textContent = eventWords(e.kind);
    li.append(t, " ", k, " " + e.message);
    return li;
  }

  async function refreshEvents() {
    // A page of older events stays as the link made it.
    if (new URLSearchParams(window.location.search).has("before")) return;
    const ev = await api("GET", base() + "/events?limit=10");
    if (!ev.ok) return;
    const ul = $("#events");
    ul.replaceChildren(...ev.data.events.map(eventItem));
    if (!ev.data.events.length) ul.innerHTML = '<li class="empty">No events yet.</li>';
  }

  async function refreshTrades() {
    const tr = await api("GET", base() + "/trades?limit=10");
    if (!tr.ok || !tr.data.trades.length) return;
    const body = $("#trades tbody");
    body.replaceChildren();
    tr.data.trades.forEach((t) => {
      const row = document.createElement("tr");
      const reason = present(t.close_reason) ? words("close", t.close_reason) : "-";
      const cells = [localTime(t.closed_at), t.symbol + " " + t.side, amount(t.size),
        amount(t.avg_entry) + " → " + amount(t.exit_price), reason, signed(t.funding || 0), signed(t.pnl)];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i === 2 || i === 3) td.className = "opt";
        if (i === 5) td.className = "num opt";
        if (i === 6) td.className = "num " + tone(t.pnl);
        row.append(td);
      });
      body.append(row);
    });
  }

  async function refreshAccount() {
    if (!$("#paper-account") || document.hidden) return;
    const res = await api("GET", "/api/paper/account");
    if (!res.ok) return;
    const a = res.data;
    setText("#pa-balance", amount(a.balance) + " USDT");
    setText("#pa-equity", amount(a.equity) + " USDT");
    setText("#pa-available", amount(a.available) + " USDT");
    setText("#pa-upnl", signed(a.unrealized_pnl) + " USDT", tone(a.unrealized_pnl));
  }

  function refreshLists() {
    refreshEvents();
    refreshTrades();
  }

  // ---- controls -------------------------------------------------------------

  const opWords = { start: "Starting…", stop: "Stopping…", recover: "Recovering…", status: "Checking…" };

  function recoverText(actions) {
    if (!actions.length) return " Nothing was missing.";
    return " Re-created " + actions.map(actionWords).join(", ") + ".";
  }

  async function botOp(btn) {
    const op = btn.dataset.op;
    const fb = $("#op-feedback");
    const buttons = $$("[data-op]");
    buttons.forEach((b) => (b.disabled = true));
    say(fb, opWords[op], "busy");
    let res;
    if (op === "status") {
      // poll() gives nothing back when it is sending the browser to /login.
      res = (await poll()) || { ok: false, status: 401, data: {}, retry: 0 };
      if (res.ok) say(fb, "Status: " + res.data.status + ". " + res.data.message, "ok");
    } else {
      const body = op === "stop" ? { mode: $("#stop-mode").value } : undefined;
      res = await api("POST", base() + "/" + op, body);
      if (res.ok) {
        let msg = res.data.message || "Done.";
        if (Array.isArray(res.data.actions)) msg += recoverText(res.data.actions);
        say(fb, msg, "ok");
      }
      await poll();
      refreshLists();
      refreshOrders();
      refreshAccount();
    }
    if (!res.ok) say(fb, describe(res, op), "bad");
    $$("[data-op]").forEach((b) => (b.disabled = false));
    if (lastStatus) followState(lastStatus);
  }

  function startDashboard() {
    botId = $("#bot").dataset.bot;
    const up = $("#st-uptime");
    clock.base = parseInt(up.dataset.seconds || "0", 10);
    clock.at = Date.now();
    clock.running = up.dataset.running === "true";
    chart.init($("#price-chart"), () => {
      if (lastStatus) renderDistances(lastStatus);
    });
    window.BlitzChart = chart;
    ordersSeen = "first";
    try {
      renderStatus(JSON.parse($("#bot").dataset.status));
    } catch (e) {
      refreshOrders();
    }
    setInterval(tick, 1000);
    pollTimer = setTimeout(poll, POLL_MS);
    setInterval(refreshLists, 15000);
    setInterval(() => chart.load(), 30000);
    setInterval(refreshAccount, 30000);
    $("#chart-interval").addEventListener("change", (ev) => {
      chart.interval = ev.target.value;
      chart.load();
    });
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-op]");
    if (btn) botOp(btn);
  });

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#bot[data-poll]")) startDashboard();
  });
})();

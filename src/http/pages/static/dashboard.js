// Blitz pages, part 4 of 4: the dashboard. Polls /api/bot/status every 5 s (within
// the default status limit), ticks the uptime every second, runs Start / Stop /
// Status / Recover, refreshes the recent events and trades, and reads the open
// orders (/api/bot/orders, which shares the status limit) when the status says
// they changed. Reason codes are put in words with the server's tables
// (`data-words` on the status card), so both write the same text.
"use strict";

(function () {
  const { $, $$, api, describe, say } = window.Blitz;

  // ---- the dashboard --------------------------------------------------------

  function uptimeText(secs) {
    const s = Math.max(0, Math.floor(secs));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, r = s % 60;
    const p2 = (n) => String(n).padStart(2, "0");
    if (d > 0) return d + "d " + h + "h " + p2(m) + "m";
    if (h > 0) return h + "h " + p2(m) + "m " + p2(r) + "s";
    if (m > 0) return m + "m " + p2(r) + "s";
    return r + "s";
  }

  function amount(v) {
    return String(Number(Number(v).toFixed(8)));
  }

  function signed(v) {
    return (v >= 0 ? "+" : "") + Number(v).toFixed(2);
  }

  function timeText(unix) {
    return new Date(unix * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  const clock = { base: 0, at: 0, running: false };

  function words(kind, code) {
    let tables = {};
    try {
      tables = JSON.parse($("#bot").dataset.words || "{}");
    } catch (e) {
      tables = {};
    }
    const t = tables[kind] || {};
    return t[code] || String(code).replace(/_/g, " ");
  }

  function present(v) {
    return v !== null && v !== undefined;
  }

  // The same text as the server's card (src/http/pages/view.rs).
  function stopLossText(s) {
    if (!present(s.stop_loss_price)) return "-";
    return amount(s.stop_loss_price) + ", " + (s.stop_on_exchange ? "on the exchange" : "watched by the bot");
  }

  function show(sel, on) {
    $(sel).hidden = !on;
  }

  function renderStatus(s) {
    const badge = $("#st-badge");
    badge.textContent = s.status;
    badge.className = "badge st-" + s.status;
    $("#st-message").textContent = s.message;
    $("#st-market").textContent = s.exchange + " · " + s.symbol + " · " + s.side;
    $("#st-cycle").textContent = s.cycle;
    let pos = "none";
    if (s.position) {
      pos = amount(s.position.size) + " @ " + amount(s.position.avg_entry);
      if (s.position.unrealized_pnl !== null && s.position.unrealized_pnl !== undefined) {
        pos += ", unrealised " + signed(s.position.unrealized_pnl) + " USDT";
      }
    }
    $("#st-position").textContent = pos;
    $("#st-orders").textContent = s.open_orders;
    $("#st-error").textContent = s.last_error || "none";
    $("#st-tp").textContent = present(s.take_profit_price) ? amount(s.take_profit_price) : "-";
    $("#st-sl").textContent = stopLossText(s);
    show("#st-after-cycle", s.after_cycle === true);
    show("#st-pending", s.pending_config === true);
    show("#st-next-box", !!s.next_entry_at);
    if (s.next_entry_at) $("#st-next").textContent = new Date(s.next_entry_at).toISOString().slice(0, 19).replace("T", " ") + " UTC";
    show("#st-reason-box", !!s.stop_reason);
    $("#st-reason").textContent = s.stop_reason ? words("stop", s.stop_reason) : "";
    const seen = [s.status, s.cycle, s.open_orders, s.position ? s.position.size : 0].join("|");
    if (seen !== ordersSeen) {
      ordersSeen = seen;
      refreshOrders();
    }
    clock.base = s.uptime;
    clock.at = Date.now();
    clock.running = ["running", "starting", "stopping"].includes(s.status);
    tick();
  }

  function tick() {
    const el = $("#st-uptime");
    const secs = clock.running ? clock.base + (Date.now() - clock.at) / 1000 : clock.base;
    el.textContent = uptimeText(secs);
    el.dataset.seconds = Math.floor(secs);
    el.dataset.running = clock.running;
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
    const res = await api("GET", "/api/bot/orders");
    const fb = $("#orders-feedback");
    // A refused read keeps the last list: it says only why it is not newer.
    if (!res.ok) return say(fb, "Could not read the open orders: " + describe(res, "orders"), "bad");
    say(fb, "");
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
    return res;
  }

  const POLL_MS = 5000;
  let pollTimer = null;

  async function poll() {
    clearTimeout(pollTimer);
    // A tab in the background does not poll (three open tabs would otherwise
    // spend the status rate limit); it polls again when shown.
    if (document.hidden) return undefined;
    const res = await api("GET", "/api/bot/status");
    let wait = POLL_MS;
    if (res.ok) renderStatus(res.data);
    else if (res.status === 401) return window.location.assign("/login?next=%2F");
    else if (res.status === 429) wait = Math.max(POLL_MS, res.retry * 1000);
    pollTimer = setTimeout(poll, wait);
    return res;
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  async function refreshLists() {
    const ev = await api("GET", "/api/bot/events?limit=10");
    if (ev.ok) {
      const ul = $("#events");
      ul.replaceChildren();
      ev.data.events.forEach((e) => {
        const li = document.createElement("li");
        const t = document.createElement("time");
        t.textContent = timeText(e.created_at);
        const k = document.createElement("span");
        k.className = "kind";
        k.textContent = e.kind;
        li.append(t, k, " " + e.message);
        ul.append(li);
      });
      if (!ev.data.events.length) ul.innerHTML = '<li class="empty">No events yet.</li>';
    }
    const tr = await api("GET", "/api/trades?limit=10");
    if (tr.ok && tr.data.trades.length) {
      const body = $("#trades tbody");
      body.replaceChildren();
      tr.data.trades.forEach((t) => {
        const row = document.createElement("tr");
        const reason = present(t.close_reason) ? words("close", t.close_reason) : "-";
        const cells = [timeText(t.closed_at), t.symbol + " " + t.side, amount(t.size),
          amount(t.avg_entry) + " → " + amount(t.exit_price), reason, signed(t.funding || 0), signed(t.pnl)];
        cells.forEach((c, i) => {
          const td = document.createElement("td");
          td.textContent = c;
          if (i === 2 || i === 3) td.className = "opt";
          if (i === 5) td.className = "num opt";
          if (i === 6) td.className = "num " + (t.pnl > 0 ? "pos" : t.pnl < 0 ? "neg" : "zero");
          row.append(td);
        });
        body.append(row);
      });
    }
  }

  const opWords = { start: "Starting…", stop: "Stopping…", recover: "Recovering…", status: "Checking…" };

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
      res = await api("POST", "/api/bot/" + op, body);
      if (res.ok) {
        let msg = res.data.message || "Done.";
        if (Array.isArray(res.data.actions)) {
          msg += res.data.actions.length ? " Re-created: " + res.data.actions.join(", ") + "." : " Nothing was missing.";
        }
        say(fb, msg, "ok");
      }
      await poll();
      refreshLists();
      refreshOrders();
    }
    if (!res.ok) say(fb, describe(res, op), "bad");
    buttons.forEach((b) => (b.disabled = false));
  }

  function startDashboard() {
    const up = $("#st-uptime");
    clock.base = parseInt(up.dataset.seconds || "0", 10);
    clock.at = Date.now();
    clock.running = up.dataset.running === "true";
    setInterval(tick, 1000);
    pollTimer = setTimeout(poll, POLL_MS);
    setInterval(refreshLists, 15000);
    ordersSeen = "first";
    refreshOrders();
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-op]");
    if (btn) botOp(btn);
  });

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#bot[data-poll]")) startDashboard();
  });
})();

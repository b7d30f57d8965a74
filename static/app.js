// Blitz web pages: sends the forms and buttons to the JSON API with the session's
// CSRF token, keeps the dashboard's status live, and edits the ladder legs.
// No libraries; loaded with `defer` from our own origin (self-only CSP).
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function csrfToken() {
    const meta = $('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // One JSON call. Never throws: network failures come back as status 0.
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(url, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      return { status: 0, ok: false, data: {}, retry: 0 };
    }
    let data = {};
    try {
      data = await r.json();
    } catch (e) {
      data = {};
    }
    const retry = parseInt(r.headers.get("Retry-After") || data.retry_after || "0", 10);
    return { status: r.status, ok: r.ok, data, retry };
  }

  // What a failed call means, in words a user can act on.
  function describe(res, op) {
    const d = res.data || {};
    switch (res.status) {
      case 0:
        return "Cannot reach the server. Check your connection and try again.";
      case 400:
        if (d.message) return d.message;
        if (d.fields) return (d.error || "Invalid input") + ": see the marked fields.";
        return d.error || "The request was not accepted.";
      case 401:
        // The login form's own refusal names the problem; elsewhere the session ended.
        if (d.error && d.error !== "Authentication required") return d.error + ".";
        return "Your session has ended. Please log in again.";
      case 403:
        if (d.error === "Email not verified") {
          return "Your e-mail address is not verified yet: open the link in the mail we sent you.";
        }
        return d.error || "You are not allowed to do this.";
      case 404:
        return d.error || "Not found.";
      case 409:
        if (d.status === "already_running") return "The bot is already running.";
        if (d.status === "not_running") return "The bot is not running" + (op === "recover" ? ", so there is nothing to recover." : ".");
        return d.error || d.message || "Conflict: the bot's state does not allow this now.";
      case 429:
        if (d.message) return d.message;
        if (d.error && d.error !== "Rate limit exceeded") return d.error + " (wait " + (res.retry || 1) + " s).";
        return "Too many requests. Try again in " + (res.retry || 1) + " s.";
      case 503:
        if (d.error === "Service under maintenance") {
          let m = (d.message || "").trim();
          if (m && !/[.!?]$/.test(m)) m += ".";
          if (!/maintenance/i.test(m)) m = "The service is under maintenance: " + m;
          return m + " Try again in " + (res.retry || 60) + " s.";
        }
        return d.error || "The service is unavailable. Try again shortly.";
      case 504:
        return "The bot runner did not answer within 10 s. The operation still completes; check the status in a moment.";
      default:
        return d.message || d.error || "Something went wrong (HTTP " + res.status + "). Try again.";
    }
  }

  function say(el, text, tone) {
    if (!el) return;
    el.textContent = text;
    el.classList.remove("ok", "bad", "busy");
    if (tone) el.classList.add(tone);
  }

  function showFieldErrors(form, fields) {
    $$("[data-error-for]", form).forEach((p) => (p.textContent = ""));
    $$("[aria-invalid]", form).forEach((i) => i.removeAttribute("aria-invalid"));
    let first = null;
    Object.keys(fields || {}).forEach((name) => {
      const p = $('[data-error-for="' + name + '"]', form);
      const msg = fields[name];
      if (p) p.textContent = String(msg).charAt(0).toUpperCase() + String(msg).slice(1);
      const input = form.elements[name];
      if (input && input.setAttribute) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
      if (name === "grids") first = first || $("#grid-rows input", form);
      if (!p && !input) {
        const fb = $(".feedback", form);
        if (fb) fb.textContent += " " + name + " " + msg + ".";
      }
    });
    if (first && first.focus) first.focus();
    return Object.keys(fields || {}).length;
  }

  // ---- forms --------------------------------------------------------------

  function plainPayload(form) {
    const out = {};
    $$("input[name], select[name], textarea[name]", form).forEach((el) => {
      if (el.name === "csrf_token" || el.name === "username") return;
      out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    });
    return out;
  }

  const payloads = { config: configPayload };

  async function submitForm(form, ev) {
    ev.preventDefault();
    const [method, url] = form.dataset.api.split(" ");
    const fb = $(".feedback", form);
    const build = payloads[form.dataset.kind] || plainPayload;
    const built = build(form);
    if (built.errors && showFieldErrors(form, built.errors)) {
      say(fb, "Please correct the marked fields.", "bad");
      return;
    }
    const body = built.errors ? built.body : built;
    const button = $('button[type="submit"]', form);
    if (button) button.disabled = true;
    say(fb, "Working…", "busy");
    const res = await api(method, url, body);
    if (button) button.disabled = false;
    showFieldErrors(form, res.ok ? {} : res.data.fields);
    if (!res.ok) {
      say(fb, describe(res), "bad");
      return;
    }
    if (form.dataset.kind === "token") return showToken(form, res.data);
    if (form.dataset.done !== undefined) {
      window.location.assign(form.dataset.done || "/");
      return;
    }
    say(fb, (fb && fb.dataset.success) || res.data.message || "Saved.", "ok");
    if (form.dataset.reset !== undefined) form.reset();
    if (form.dataset.reload !== undefined) setTimeout(() => window.location.reload(), 500);
    if (form.dataset.kind === "config") clearSecrets(form);
  }

  function showToken(form, data) {
    const box = $("#new-token", form);
    const out = $("#new-token-value", form);
    out.value = data.token;
    box.hidden = false;
    out.focus();
    out.select();
    say($(".feedback", form), "Token “" + data.name + "” created.", "ok");
  }

  // ---- buttons that call the API ------------------------------------------

  async function callButton(btn) {
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
    const [method, url] = btn.dataset.call.split(" ");
    const fb = btn.dataset.feedback ? document.getElementById(btn.dataset.feedback) : null;
    const body = btn.dataset.body ? JSON.parse(btn.dataset.body) : undefined;
    btn.disabled = true;
    say(fb, "Working…", "busy");
    const res = await api(method, url, body);
    btn.disabled = false;
    if (!res.ok) {
      say(fb, describe(res, url.split("/").pop()), "bad");
      return;
    }
    const actions = res.data.actions;
    let msg = res.data.message || "Done.";
    if (Array.isArray(actions)) msg += actions.length ? " (" + actions.join(", ") + ")" : " (nothing was missing)";
    say(fb, msg, "ok");
    if (btn.dataset.reload !== undefined) setTimeout(() => window.location.reload(), 700);
  }

  // ---- the ladder editor and the configuration form ------------------------

  function legRows() {
    return $$("#grid-rows tr.leg");
  }

  function renumberLegs() {
    const rows = legRows();
    rows.forEach((tr, i) => {
      const n = i + 1;
      $(".leg-no", tr).textContent = n;
      const a = $("input.amount", tr), g = $("input.gap", tr);
      a.id = "amount-" + n;
      g.id = "gap-" + n;
      const labels = $$("label", tr);
      labels[0].htmlFor = a.id;
      labels[0].textContent = "Amount of leg " + n;
      labels[1].htmlFor = g.id;
      labels[1].textContent = "Gap of leg " + n + (n === 1 ? " (not used)" : "");
      $(".remove-leg", tr).setAttribute("aria-label", "Remove leg " + n);
      $(".remove-leg", tr).disabled = rows.length === 1;
    });
    const add = $("#add-leg");
    const form = $("#config-form");
    if (add && form) add.disabled = rows.length >= parseInt(form.dataset.maxLegs || "50", 10);
  }

  function addLeg() {
    const rows = legRows();
    const last = rows[rows.length - 1];
    const copy = last.cloneNode(true);
    $$("input", copy).forEach((i) => i.removeAttribute("aria-invalid"));
    last.after(copy);
    renumberLegs();
    $("input.amount", copy).focus();
  }

  function removeLeg(btn) {
    if (legRows().length <= 1) return;
    btn.closest("tr").remove();
    renumberLegs();
    const rows = legRows();
    $(".remove-leg", rows[rows.length - 1]).focus();
  }

  function num(el) {
    return el.value.trim() === "" ? NaN : Number(el.value);
  }

  // The same rules as PUT /api/bot/config (C4.5); the server checks them again.
  function configPayload(form) {
    const f = form.elements;
    const e = {};
    const body = {
      exchange: f.exchange.value,
      symbol: f.symbol.value.trim().toUpperCase(),
      side: f.side.value,
      leverage: num(f.leverage),
      take_profit: num(f.take_profit),
      stop_loss: num(f.stop_loss),
      rounds: num(f.rounds),
      repeat: f.repeat.checked,
      telegram_chat_id: f.telegram_chat_id.value.trim() || null,
    };
    body.grids = legRows().map((tr, i) => ({
      amount: num($("input.amount", tr)),
      gap: i === 0 ? (num($("input.gap", tr)) || 0) : num($("input.gap", tr)),
    }));
    if (!/^[A-Z0-9]+\/[A-Z0-9]+$/.test(body.symbol)) e.symbol = "must look like BTC/USDT";
    if (!Number.isInteger(body.leverage) || body.leverage < 1 || body.leverage > 125) e.leverage = "must be a whole number from 1 to 125";
    ["take_profit", "stop_loss"].forEach((k) => {
      if (!(body[k] >= 0 && body[k] <= 1000)) e[k] = "must be a number from 0 to 1000";
    });
    body.grids.forEach((g, i) => {
      if (e.grids) return;
      if (!(g.amount > 0)) e.grids = "leg " + (i + 1) + ": amount must be a number greater than 0";
      else if (i > 0 && !(g.gap > 0)) e.grids = "leg " + (i + 1) + ": gap must be a number greater than 0";
    });
    if (!Number.isInteger(body.rounds) || body.rounds < 1 || body.rounds > body.grids.length) {
      e.rounds = "must be between 1 and the number of grid legs (" + body.grids.length + ")";
    }
    ["api_key", "api_secret", "telegram_token"].forEach((k) => {
      if (f[k].value !== "") body[k] = f[k].value;
    });
    return { body, errors: e };
  }

  function clearSecrets(form) {
    // Saved secrets are write-only: reload so the page shows what is stored now.
    if (["api_key", "api_secret", "telegram_token"].some((k) => form.elements[k].value !== "")) {
      setTimeout(() => window.location.reload(), 800);
    }
  }

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

  const POLL_MS = 5000;
  let pollTimer = null;

  async function poll() {
    clearTimeout(pollTimer);
    const res = await api("GET", "/api/bot/status");
    let wait = POLL_MS;
    if (res.ok) renderStatus(res.data);
    else if (res.status === 401) return window.location.assign("/login?next=%2F");
    else if (res.status === 429) wait = Math.max(POLL_MS, res.retry * 1000);
    pollTimer = setTimeout(poll, wait);
    return res;
  }

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
        const cells = [timeText(t.closed_at), t.symbol + " " + t.side, amount(t.size),
          amount(t.avg_entry) + " → " + amount(t.exit_price), signed(t.pnl)];
        cells.forEach((c, i) => {
          const td = document.createElement("td");
          td.textContent = c;
          if (i === 2 || i === 3) td.className = "opt";
          if (i === 4) td.className = "num " + (t.pnl > 0 ? "pos" : t.pnl < 0 ? "neg" : "zero");
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
      res = await poll();
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
  }

  // ---- wiring ----------------------------------------------------------------

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset && form.dataset.api) submitForm(form, ev);
  });

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.dataset.call) callButton(btn);
    else if (btn.dataset.op) botOp(btn);
    else if (btn.id === "add-leg") addLeg();
    else if (btn.classList.contains("remove-leg")) removeLeg(btn);
  });

  document.addEventListener("change", (ev) => {
    if (ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#bot[data-poll]")) startDashboard();
    if ($("#grid-rows")) renumberLegs();
  });
})();

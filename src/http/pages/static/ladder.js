// Blitz pages, part 3 of 4: the settings page's ladder editor (add and remove legs)
// and the configuration form's payload, checked by the API's rules before sending
// (docs/bots.md, Configuration), with the take-profit minimum kept current.
"use strict";

(function () {
  const { $, $$, say, payloads, afterSave } = window.Blitz;

  // ---- the ladder editor and the configuration form ------------------------

  function legRows() {
    return $$("#grid-rows tr.leg");
  }

  function renumberLegs() {
    const rows = legRows();
    rows.forEach((tr, i) => {
      const n = i + 1;
      // The entry is leg 0, as the open orders and events number them.
      $(".leg-no", tr).textContent = n === 1 ? "entry" : String(n - 1);
      const a = $("input.amount", tr), g = $("input.gap", tr);
      a.id = "amount-" + n;
      g.id = "gap-" + n;
      const labels = $$("label", tr);
      labels[0].htmlFor = a.id;
      labels[0].textContent = n === 1 ? "Amount of the entry" : "Amount of leg " + (n - 1);
      labels[1].htmlFor = g.id;
      labels[1].textContent = n === 1 ? "Gap of the entry (not used)" : "Gap of leg " + (n - 1);
      $(".remove-leg", tr).setAttribute("aria-label", n === 1 ? "Remove the entry" : "Remove leg " + (n - 1));
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

  // The same rules as PUT /api/bot/config; the server checks them again.
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
      after_stop_loss: f.after_stop_loss.value,
      cooldown: num(f.cooldown),
      max_active_legs: num(f.max_active_legs),
      trailing_take_profit: num(f.trailing_take_profit),
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
    const min = takeProfitMinimum(form);
    if (!e.take_profit && min !== null && !(body.take_profit > min)) {
      e.take_profit = "must be above " + min + " (the round-trip fees at " + body.leverage + "x)";
    }
    if (!Number.isInteger(body.cooldown) || body.cooldown < 0 || body.cooldown > 86400) e.cooldown = "must be a whole number of seconds from 0 to 86400";
    if (!Number.isInteger(body.max_active_legs) || body.max_active_legs < 0 || body.max_active_legs > 50) {
      e.max_active_legs = "must be 0 (all legs) or a whole number from 1 to 50";
    }
    const tr = body.trailing_take_profit;
    if (!(tr === 0 || (tr >= 0.05 && tr <= 20))) e.trailing_take_profit = "must be 0 (off) or from 0.05 to 20 (percent of the price)";
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

  // The round-trip fees at the form's leverage on its exchange (the option's
  // `data-round-trip` is the percent at 1x), or null when unknown.
  function takeProfitMinimum(form) {
    const f = form.elements;
    const opt = f.exchange.selectedOptions[0];
    const rate = opt ? Number(opt.dataset.roundTrip) : NaN;
    const lev = num(f.leverage);
    if (!(rate > 0) || !Number.isInteger(lev) || lev < 1) return null;
    return Number((rate * lev).toFixed(8));
  }

  function showTakeProfitMinimum(form) {
    const hint = $("#tp-minimum", form);
    const min = takeProfitMinimum(form);
    if (!hint || min === null) return;
    hint.textContent = "Must be above " + min + " at " + num(form.elements.leverage) + "x on " +
      form.elements.exchange.value + " (the round-trip fees).";
  }

  function afterConfigSave(form, data) {
    const pending = data && data.pending === true;
    const note = $("#cfg-pending");
    if (note) note.hidden = !pending;
    const fb = $(".feedback", form);
    if (pending && fb) say(fb, fb.dataset.pending, "ok");
    clearSecrets(form);
  }

  function clearSecrets(form) {
    // Saved secrets are write-only: reload so the page shows what is stored now.
    if (["api_key", "api_secret", "telegram_token"].some((k) => form.elements[k].value !== "")) {
      setTimeout(() => window.location.reload(), 800);
    }
  }

  // ---- the live preview, computed by the server (POST /api/bots/<id>/preview) --

  let previewTimer = null;
  let previewSeq = 0;

  function previewBody(form) {
    const body = Object.assign({}, configPayload(form).body);
    ["api_key", "api_secret", "telegram_token", "telegram_chat_id"].forEach((k) => delete body[k]);
    return body;
  }

  function setPv(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function renderPreview(d) {
    const { amount } = window.Blitz;
    setPv("pv-margin", amount(d.total_margin) + " USDT at " + d.leverage + "x");
    setPv("pv-price", amount(d.price));
    setPv("pv-tp", amount(d.take_profit_price));
    setPv("pv-avg", amount(d.average_entry_all));
    setPv("pv-tp-all", amount(d.take_profit_price_all));
    setPv("pv-sl", d.stop_loss_price_all === null ? "off" : amount(d.stop_loss_price_all));
    setPv("pv-dev", amount(d.deviation_covered) + " %");
    setPv("pv-liq", amount(d.liquidation_price) + " (first entry), " + amount(d.liquidation_price_all) + " (all filled)");
    // A long's legs rest below the entry, a short's above it.
    const towards = d.side === "short" ? "+" : "-";
    const deviation = (l) => (Number(l.deviation) === 0 ? "0" : towards + amount(l.deviation)) + " %";
    const body = $("#pv-legs tbody");
    body.replaceChildren();
    d.legs.forEach((l) => {
      const row = document.createElement("tr");
      const cells = [l.leg === 0 ? "entry" : "leg " + l.leg, amount(l.price),
        l.qty === null ? "below the minimum" : amount(l.qty), amount(l.margin), deviation(l)];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i > 0) td.className = i === 4 ? "num opt" : "num";
        row.append(td);
      });
      body.append(row);
    });
  }

  async function refreshPreview(form) {
    const url = form.dataset.preview;
    if (!url) return;
    const seq = ++previewSeq;
    const res = await window.Blitz.api("POST", url, previewBody(form));
    // An answer to an older edit must not overwrite a newer one.
    if (seq !== previewSeq) return;
    const err = $("#pv-error");
    $("#preview").classList.toggle("stale", !res.ok);
    if (res.ok) {
      err.textContent = "";
      renderPreview(res.data);
    } else {
      const d = res.data || {};
      err.textContent = d.fields ? Object.entries(d.fields).map(([k, v]) => k + ": " + v).join("; ") : window.Blitz.describe(res, "preview");
    }
    window.BlitzPreview = { ok: res.ok, status: res.status, data: res.data, body: previewBody(form) };
  }

  function schedulePreview(form) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => refreshPreview(form), 350);
  }

  // ---- exchange: its symbols and whether it needs credentials ---------------

  async function exchangeChanged(form) {
    const ex = form.elements.exchange.value;
    $("#keys-box").hidden = ex === "paper";
    const res = await window.Blitz.api("GET", "/api/markets?exchange=" + encodeURIComponent(ex));
    if (!res.ok) return;
    const sel = form.elements.symbol;
    const was = sel.value;
    sel.replaceChildren(...res.data.markets.map((m) => {
      const o = document.createElement("option");
      o.value = o.textContent = m.symbol;
      o.selected = m.symbol === was;
      return o;
    }));
    schedulePreview(form);
  }

  // A real exchange without keys can be saved, but the bot cannot start: say so.
  function warnMissingKeys(form) {
    const f = form.elements;
    const box = $("#keys-warning");
    const real = f.exchange.value !== "paper";
    const stored = form.dataset.hasKeys === "true";
    const typed = f.api_key.value !== "" && f.api_secret.value !== "";
    box.hidden = !(real && !stored && !typed);
    box.textContent = "Saved without API keys: a " + f.exchange.value + " bot cannot start until it has a key and secret " +
      "(with trading permission and no withdrawal permission).";
  }

  payloads.config = configPayload;
  afterSave.config = afterConfigSave;

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.id === "add-leg") addLeg();
    else if (btn.classList.contains("remove-leg")) removeLeg(btn);
    else return;
    schedulePreview($("#config-form"));
  });

  document.addEventListener("input", (ev) => {
    const form = ev.target.form;
    if (!form || form.id !== "config-form") return;
    if (["leverage", "exchange"].includes(ev.target.name)) showTakeProfitMinimum(form);
    schedulePreview(form);
  });

  document.addEventListener("change", (ev) => {
    const form = ev.target.form;
    if (!form || form.id !== "config-form") return;
    if (ev.target.name === "exchange") {
      showTakeProfitMinimum(form);
      exchangeChanged(form);
    }
    schedulePreview(form);
  });

  document.addEventListener("submit", (ev) => {
    if (ev.target.id === "config-form") warnMissingKeys(ev.target);
  }, true);

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#grid-rows")) renumberLegs();
    const form = $("#config-form");
    if (form) refreshPreview(form);
  });
})();

// Blitz pages, part 3 of 4: the settings page's ladder editor (add and remove legs)
// and the configuration form's payload, checked by the API's rules before sending.
"use strict";

(function () {
  const { $, $$, payloads, afterSave } = window.Blitz;

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

  payloads.config = configPayload;
  afterSave.config = clearSecrets;

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.id === "add-leg") addLeg();
    else if (btn.classList.contains("remove-leg")) removeLeg(btn);
  });

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#grid-rows")) renumberLegs();
  });
})();

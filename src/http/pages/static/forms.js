// Blitz pages, part 2 of 4: forms with `data-api="METHOD /path"` and buttons with
// `data-call="METHOD /path"` are sent to the JSON API; the answer is shown next to them.
"use strict";

(function () {
  const { $, $$, api, describe, say, showFieldErrors, payloads, afterSave } = window.Blitz;

  // ---- forms --------------------------------------------------------------

  function plainPayload(form) {
    const out = {};
    $$("input[name], select[name], textarea[name]", form).forEach((el) => {
      if (el.name === "csrf_token" || el.name === "username") return;
      out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    });
    return out;
  }

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
      say(fb, describe(res, "form"), "bad");
      return;
    }
    if (form.dataset.kind === "token") return showToken(form, res.data);
    if (res.data.two_factor_required) return askSecondFactor(form, res.data.ticket);
    if (form.dataset.done !== undefined) {
      window.location.assign(form.dataset.done || "/");
      return;
    }
    say(fb, (fb && fb.dataset.success) || res.data.message || "Saved.", "ok");
    if (form.dataset.reset !== undefined) form.reset();
    if (form.dataset.reload !== undefined) setTimeout(() => window.location.reload(), 500);
    if (afterSave[form.dataset.kind]) afterSave[form.dataset.kind](form, res.data);
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

  // The password was right and the account has two-factor login: the code form
  // takes over, carrying the login ticket in its hidden field.
  function askSecondFactor(form, ticket) {
    const next = $("#two-factor-form");
    if (!next) return say($(".feedback", form), "This account needs a second factor.", "bad");
    $('input[name="ticket"]', next).value = ticket;
    form.hidden = true;
    next.hidden = false;
    $('input[name="code"]', next).focus();
  }

  // ---- buttons that call the API ------------------------------------------

  async function callButton(btn) {
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
    const [method, url] = btn.dataset.call.split(" ");
    const fb = btn.dataset.feedback ? document.getElementById(btn.dataset.feedback) : null;
    let body = btn.dataset.body ? JSON.parse(btn.dataset.body) : undefined;
    // A force stop carries the stop mode chosen beside it.
    if (btn.dataset.mode) body = { mode: document.getElementById(btn.dataset.mode).value };
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
    const words = (a) => (/^created_leg_(\d+)$/.test(a) ? "ladder leg " + a.slice(12) : { created_tp: "the take-profit", created_sl: "the stop-loss" }[a] || a.replace(/_/g, " "));
    if (Array.isArray(actions)) msg += actions.length ? " Re-created " + actions.map(words).join(", ") + "." : " Nothing was missing.";
    say(fb, msg, "ok");
    if (btn.dataset.reload !== undefined) setTimeout(() => window.location.reload(), 700);
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset && form.dataset.api) submitForm(form, ev);
  });

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-call]");
    if (btn) callButton(btn);
  });

  document.addEventListener("change", (ev) => {
    if (ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  // ---- chart tooltips that work by tap: a bar or point's text under its chart --

  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-tip]");
    if (!el) return;
    const fig = el.closest("figure");
    const tip = fig && $(".tip", fig);
    if (!tip) return;
    $$("[data-tip].picked", fig).forEach((p) => p.classList.remove("picked"));
    el.classList.add("picked");
    tip.textContent = el.dataset.tip;
  });

  // ---- the admin table: filter and sort the rows of this page --------------

  function filterUsers() {
    const text = ($("#filter") || {}).value || "";
    const state = ($("#status-filter") || {}).value || "";
    $$("#users-table tbody tr.user").forEach((tr) => {
      const hay = (tr.dataset.email + " " + tr.dataset.market).toLowerCase();
      tr.hidden = !hay.includes(text.toLowerCase()) || (state !== "" && tr.dataset.status !== state);
    });
  }

  function sortUsers(btn) {
    const key = btn.dataset.sort;
    const numeric = btn.dataset.numeric !== undefined;
    const down = btn.getAttribute("aria-sort") === "ascending";
    $$("#users-table th button").forEach((b) => b.removeAttribute("aria-sort"));
    btn.setAttribute("aria-sort", down ? "descending" : "ascending");
    const body = $("#users-table tbody");
    const rows = $$("tr.user", body);
    rows.sort((a, b) => {
      const x = a.dataset[key], y = b.dataset[key];
      const c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return down ? -c : c;
    });
    body.append(...rows);
  }

  document.addEventListener("input", (ev) => {
    if (ev.target.id === "filter") filterUsers();
  });
  document.addEventListener("change", (ev) => {
    if (ev.target.id === "status-filter") filterUsers();
  });
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("#users-table th button[data-sort]");
    if (btn) sortUsers(btn);
  });
})();

// Blitz pages, part 1 of 4: the JSON API call with the session's CSRF token, and
// refusals (400, 401, 403, 409, 429, 503, 504) in words. Shared as `window.Blitz`.
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
        // The pages say `Referrer-Policy: no-referrer`; this request may name its
        // own origin, which CSRF_SSL_STRICT checks.
        referrerPolicy: "same-origin",
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

  // "45 s" or, for longer waits, "12 min".
  function wait(seconds) {
    const s = Math.max(1, seconds || 1);
    return s < 90 ? s + " s" : Math.ceil(s / 60) + " min";
  }

  // What a failed call means, in words a user can act on.
  function describe(res, op) {
    const d = res.data || {};
    switch (res.status) {
      case 0:
        return "Cannot reach the server. Check your connection and try again.";
      case 400:
        if (d.message) return d.message;
        if (d.fields && op === "form") return (d.error || "Invalid input") + ": see the marked fields.";
        // A button has no fields to mark: say what the server said about them.
        if (d.fields) return Object.values(d.fields).join(" ") || d.error || "Invalid input.";
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
        if (d.error && d.error !== "Rate limit exceeded") return d.error + " (wait " + wait(res.retry) + ").";
        return "Too many requests. Try again in " + wait(res.retry) + ".";
      case 503:
        if (d.error === "Service under maintenance") {
          let m = (d.message || "").trim();
          if (m && !/[.!?]$/.test(m)) m += ".";
          if (!/maintenance/i.test(m)) m = "The service is under maintenance: " + m;
          return m + " Try again in " + wait(res.retry || 60) + ".";
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

  // A Unix time as the browser's local date and time, with seconds and the zone.
  function localTime(unix) {
    const d = new Date(Number(unix) * 1000);
    if (Number.isNaN(d.getTime())) return "-";
    return d.toLocaleString(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    });
  }

  // The server writes UTC; every <time data-unix> is shown in the browser's zone.
  function localiseTimes(root) {
    $$("time[data-unix]", root).forEach((t) => {
      t.textContent = localTime(t.dataset.unix);
      t.dateTime = new Date(Number(t.dataset.unix) * 1000).toISOString();
    });
  }

  // A decimal from the API as text. The server writes each amount as the shortest
  // number that reads back as its exact decimal, and String() writes that same
  // shortest form, so no digit is lost or invented; only the exponent form that
  // String() uses below 1e-6 (5e-7) is written out (0.0000005).
  function amount(v) {
    if (v === null || v === undefined || v === "") return "-";
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v);
    const s = String(n);
    if (!s.includes("e")) return s;
    const [mantissa, exp] = s.split("e");
    const decimals = (mantissa.split(".")[1] || "").length - Number(exp);
    return n.toFixed(Math.min(100, Math.max(0, decimals)));
  }

  // PnL to the cent with its sign, rounded half away from zero on the decimal
  // text (toFixed would round the float: 1.005 is 1.00499… and reads 1.00); a loss
  // that rounds to zero is +0.00. As the server writes it.
  function signed(v) {
    const n = Number(v) || 0;
    const text = amount(Math.abs(n));
    if (!/^\d+(\.\d+)?$/.test(text)) return (n < 0 ? "-" : "+") + text; // beyond 1e21
    const [int, frac = ""] = text.split(".");
    let cents = BigInt(int + (frac + "00").slice(0, 2));
    if ((frac[2] || "0") >= "5") cents += 1n;
    const digits = String(cents).padStart(3, "0");
    const sign = n < 0 && cents > 0n ? "-" : "+";
    return sign + digits.slice(0, -2) + "." + digits.slice(-2);
  }

  function tone(v) {
    const n = Number(v) || 0;
    return n > 0 ? "pos" : n < 0 ? "neg" : "zero";
  }

  document.addEventListener("DOMContentLoaded", () => localiseTimes(document));

  window.Blitz = { $, $$, api, describe, say, showFieldErrors, payloads: {}, afterSave: {},
    localTime, localiseTimes, amount, signed, tone };
})();

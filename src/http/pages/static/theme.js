// Blitz pages: the colour theme. It follows the system (prefers-color-scheme)
// until the visitor picks one with the header's toggle; the choice is remembered
// in localStorage and set on <html data-theme>, which the stylesheet reads.
"use strict";

(function () {
  const KEY = "blitz-theme";
  const root = document.documentElement;
  // The choice made on this page, for when storage refuses it (private mode).
  let chosen = null;

  function stored() {
    if (chosen) return chosen;
    try {
      return localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  }

  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  // The theme in force: the remembered choice, else the system's.
  function current() {
    const t = stored();
    if (t === "dark" || t === "light") return t;
    return systemDark() ? "dark" : "light";
  }

  function apply() {
    const t = current();
    root.dataset.theme = t;
    const btn = document.getElementById("theme-toggle");
    if (btn) {
      btn.textContent = t === "dark" ? "Light theme" : "Dark theme";
      btn.setAttribute("aria-pressed", String(t === "dark"));
    }
    document.dispatchEvent(new CustomEvent("blitz-theme", { detail: t }));
  }

  apply();
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
  document.addEventListener("DOMContentLoaded", () => {
    apply();
    const btn = document.getElementById("theme-toggle");
    if (!btn) return;
    btn.addEventListener("click", () => {
      chosen = current() === "dark" ? "light" : "dark";
      try {
        localStorage.setItem(KEY, chosen);
      } catch (e) {
        // Storage refused (private mode): the choice lasts for this page only.
      }
      apply();
    });
  });
  window.BlitzTheme = { current };
})();

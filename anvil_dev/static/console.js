// The anvil-dev console: functions and their call forms, the live log, and service panels.
// Plain ES module; talks to /_/console/api/*, /_/console/events (SSE) and calls functions
// through the same browser client apps use (/_/anvil.js).

import { anvil, AnvilError, DateOnly, decodeMessage, PortableClass, PortableValue, Row } from "/_/anvil.js";

const $ = (sel, root = document) => root.querySelector(sel);
const API = "/_/console/api";
const LOG_LIMIT = 500;

// ---- small helpers ----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "html") el.innerHTML = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, options = {}) {
  const r = await fetch(API + path, {
    credentials: "same-origin",
    headers: options.body ? { "Content-Type": "application/json" } : {},
    ...options,
  });
  let data = null;
  try {
    data = await r.json();
  } catch {
    /* not JSON */
  }
  if (!r.ok) throw new Error((data && data.error) || `HTTP ${r.status}`);
  return data;
}

function clock(t) {
  const d = t instanceof Date ? t : new Date(typeof t === "number" ? t * 1000 : t);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function when(t) {
  if (t === null || t === undefined || t === "") return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(String(t).replace(" ", "T"));
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString([], { dateStyle: "medium", timeStyle: "medium", hour12: false });
}

// The same style as anvil_dev/_units.py's duration(), so the terminal, the CLI and the console agree.
function ms(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "";
  n = Math.max(0, Number(n));
  if (n < 10) return `${n.toFixed(1)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
  const s = Math.floor(n / 1000);
  return s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// ---- rendering Python values ------------------------------------------------------------------

function pyStr(s) {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(new RegExp(q, "g"), "\\" + q);
  return q + body + q;
}

function span(cls, text) {
  return `<span class="v-${cls}">${esc(text)}</span>`;
}

function fmtDateTime(d) {
  if (Number.isNaN(d.getTime())) return "Invalid Date";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** HTML for a decoded value, Python-flavoured (None, True, 'text'), indented like pprint. */
function renderValue(v, indent = 0, seen = new Set()) {
  const pad = "  ".repeat(indent + 1);
  const close = "  ".repeat(indent);
  if (v === null || v === undefined) return span("none", "None");
  if (typeof v === "boolean") return span("bool", v ? "True" : "False");
  if (typeof v === "number") {
    if (Number.isNaN(v)) return span("num", "nan");
    if (!Number.isFinite(v)) return span("num", v > 0 ? "inf" : "-inf");
    return span("num", String(v));
  }
  if (typeof v === "bigint") return span("num", v.toString());
  if (typeof v === "string") return span("str", pyStr(v));
  if (v instanceof Date) return `${span("type", "datetime")} ${span("date", fmtDateTime(v))}`;
  if (v instanceof DateOnly) return `${span("type", "date")} ${span("date", v.toString())}`;
  if (v instanceof PortableClass) return span("type", `<class '${v.typeName}'>`);
  if (v instanceof Blob) {
    const url = URL.createObjectURL(v);
    const name = v.name || "media";
    return `${span("type", "Media")} <a class="v-media" href="${esc(url)}" download="${esc(name)}">${esc(name)}</a> ` +
      span("muted", `(${v.type || "?"}, ${bytes(v.size)})`);
  }
  if (typeof v !== "object") return esc(String(v));
  if (seen.has(v)) return span("muted", "…");
  seen = new Set(seen).add(v);
  let prefix = "";
  if (v instanceof Row) prefix = `${span("type", `Row ${v.tableName || ""}`.trim())} ${span("muted", v.getId() || "")} `;
  else if (v instanceof PortableValue) return `${span("type", v.__type__)}(${renderValue(v.value, indent, seen)})`;
  else if (Object.prototype.hasOwnProperty.call(v, "__type__")) prefix = span("type", v.__type__) + " ";
  const entries = Array.isArray(v) ? v.map((x) => [null, x]) : Object.entries(v);
  const [open, shut] = Array.isArray(v) ? ["[", "]"] : ["{", "}"];
  if (!entries.length) return prefix + open + shut;
  const parts = entries.map(([k, x]) => (k === null ? "" : `${span("key", pyStr(k))}: `) + renderValue(x, indent + 1, seen));
  // Short, flat collections read best on one line, as pprint prints them.
  const flat = parts.join(", ");
  if (!flat.includes("\n") && textLength(flat) <= 72) return `${prefix}${open}${flat}${shut}`;
  return `${prefix}${open}\n${parts.map((p) => pad + p).join(",\n")}\n${close}${shut}`;
}

function textLength(html) {
  return html.replace(/<[^>]*>/g, "").replace(/&[a-z#0-9]+;/g, "x").length;
}

// ---- functions ----------------------------------------------------------------------------------

const cards = new Map(); // name -> {el, signature, fn}

function requireBadge(req) {
  if (req === true) return h("span", { class: "badge badge-auth", title: "require_user=True: callers must be logged in" }, "login required");
  if (req === "predicate" || (req && req !== true)) {
    return h("span", { class: "badge badge-auth", title: "require_user=<predicate>: the logged-in user must pass a check" }, "user check");
  }
  return null;
}

function paramField(p) {
  const id = `p-${Math.random().toString(36).slice(2, 9)}`;
  const hint = {
    positional: p.required ? "required" : `default ${p.default}`,
    keyword: p.required ? "keyword-only, required" : `keyword-only, default ${p.default}`,
    varargs: "more positional arguments: a JSON list",
    varkw: "more keyword arguments: a JSON object",
  }[p.kind];
  const label = { varargs: `*${p.name}`, varkw: `**${p.name}` }[p.kind] || p.name;
  const input = h("input", {
    id, class: "arg", type: "text", spellcheck: "false", autocomplete: "off",
    placeholder: p.kind === "varargs" ? "[]" : p.kind === "varkw" ? "{}" : p.required ? "" : p.default,
    dataset: { name: p.name, kind: p.kind, required: p.required ? "1" : "" },
  });
  return h("div", { class: "field" }, h("label", { for: id }, h("code", {}, label), h("span", { class: "muted" }, hint)), input);
}

function parseArg(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Positional args up to the first empty field; later filled fields go by name. */
function collectArgs(form) {
  const args = [];
  const kwargs = {};
  let gap = false;
  for (const input of form.querySelectorAll("input.arg")) {
    const { name, kind } = input.dataset;
    const text = input.value.trim();
    if (kind === "raw-args") {
      const v = text ? JSON.parse(text) : [];
      if (!Array.isArray(v)) throw new Error("args must be a JSON list, e.g. [1, \"two\"]");
      args.push(...v);
    } else if (kind === "raw-kwargs" || kind === "varkw") {
      const v = text ? JSON.parse(text) : {};
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${name} must be a JSON object, e.g. {"key": 1}`);
      Object.assign(kwargs, v);
    } else if (kind === "varargs") {
      if (!text) continue;
      const v = JSON.parse(text);
      if (!Array.isArray(v)) throw new Error(`*${name} must be a JSON list`);
      if (gap) throw new Error(`*${name} needs every positional argument before it filled in`);
      args.push(...v);
    } else if (!text) {
      gap = true;
    } else if (kind === "keyword" || gap) {
      kwargs[name] = parseArg(text);
    } else {
      args.push(parseArg(text));
    }
  }
  return { args, kwargs };
}

function buildForm(fn) {
  const params = fn.params;
  const fields = params
    ? params.map(paramField)
    : [
        h("div", { class: "field" }, h("label", {}, h("code", {}, "args"), h("span", { class: "muted" }, "a JSON list")),
          h("input", { class: "arg", type: "text", placeholder: "[]", spellcheck: "false", dataset: { name: "args", kind: "raw-args" } })),
        h("div", { class: "field" }, h("label", {}, h("code", {}, "kwargs"), h("span", { class: "muted" }, "a JSON object")),
          h("input", { class: "arg", type: "text", placeholder: "{}", spellcheck: "false", dataset: { name: "kwargs", kind: "raw-kwargs" } })),
      ];
  const result = h("div", { class: "result", hidden: true });
  const button = h("button", { class: "btn btn-primary call", type: "submit" }, "Call");
  const form = h("form", { class: "call-form" },
    h("div", { class: "fields" }, fields.length ? fields : h("p", { class: "muted no-args" }, "This function takes no arguments.")),
    h("div", { class: "form-actions" }, button, h("span", { class: "call-status muted" })),
    result);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    runCall(fn.name, form, button, result);
  });
  return form;
}

async function runCall(name, form, button, result) {
  const status = $(".call-status", form);
  let call;
  try {
    call = collectArgs(form);
  } catch (e) {
    showResult(result, { ok: false, error: new AnvilError("JSONError", e.message), local: true });
    return;
  }
  button.disabled = true;
  status.textContent = "running…";
  try {
    const r = await anvil.server.callDetailed(name, call.args, call.kwargs, { spinner: false });
    showResult(result, { ok: true, value: r.value, output: r.output, ms: r.ms });
  } catch (e) {
    const err = e instanceof AnvilError ? e : new AnvilError("Error", String((e && e.message) || e));
    const failure = err.callId ? await api(`/calls/${encodeURIComponent(err.callId)}`).catch(() => null) : null;
    showResult(result, { ok: false, error: err, output: err.output, ms: err.ms, frames: failure && failure.frames });
  } finally {
    button.disabled = false;
    status.textContent = "";
  }
}

/**
 * A server traceback, most recent call last: the app's frames, each with its function and source line;
 * anvil-dev's and libraries' frames are there but hidden until the toggle shows them. `frames` come from
 * the host (anvil_dev/tracebacks.py); without them, Anvil's wire trace ([file, line], innermost first).
 */
function traceView(error, frames) {
  const list = frames && frames.length
    ? frames
    : (error.trace || []).filter(Array.isArray).slice().reverse().map(([file, line]) => ({ file, line, kind: "app" }));
  if (!list.some((f) => f.kind === "app" || f.omitted)) return null;
  const internal = list.filter((f) => !f.omitted && f.kind !== "app").length;
  const ol = h("ol", { class: "trace" }, list.map((f) => {
    if (f.omitted) return h("li", { class: "muted" }, `… ${f.omitted} frames left out …`);
    return h("li", { class: f.kind === "app" ? "frame-app" : "frame-internal", hidden: f.kind !== "app" },
      h("code", {}, String(f.file)), h("span", { class: "muted" }, ` line ${f.line}`),
      f.name ? [h("span", { class: "muted" }, ", in "), h("code", { class: "frame-fn" }, String(f.name))] : null,
      f.source ? h("pre", { class: "frame-src" }, String(f.source)) : null);
  }));
  const label = h("div", { class: "section-label" }, "Traceback (most recent call last)");
  if (internal) {
    const toggle = h("button", { class: "btn btn-small frames-toggle", type: "button" }, `show ${internal} anvil-dev / library frames`);
    toggle.addEventListener("click", () => {
      const show = toggle.dataset.shown !== "1";
      toggle.dataset.shown = show ? "1" : "";
      for (const li of ol.querySelectorAll(".frame-internal")) li.hidden = !show;
      toggle.textContent = `${show ? "hide" : "show"} ${internal} anvil-dev / library frames`;
    });
    label.append(" ", toggle);
  }
  return h("div", { class: "traceback" }, label, ol);
}

function showResult(el, r) {
  el.hidden = false;
  el.className = `result ${r.ok ? "result-ok" : "result-error"}`;
  el.replaceChildren();
  const head = h("div", { class: "result-head" },
    h("span", { class: `pill ${r.ok ? "pill-ok" : "pill-error"}` }, r.ok ? "returned" : r.local ? "not sent" : "raised"),
    r.ms !== undefined ? h("span", { class: "muted result-time" }, ms(r.ms)) : null);
  el.append(head);
  if (r.ok) {
    el.append(h("pre", { class: "value", html: renderValue(r.value) }));
  } else {
    const tv = traceView(r.error, r.frames);
    if (tv) el.append(tv);
    el.append(h("div", { class: "error-line" }, h("strong", {}, r.error.type), ": ", r.error.message));
  }
  if (r.output) el.append(h("div", { class: "section-label" }, "Output"), h("pre", { class: "output" }, r.output));
}

function renderFunctionCard(fn) {
  const formHolder = h("div", { class: "card-body" });
  const head = h("button", { class: "card-head", type: "button", "aria-expanded": "false" },
    h("span", { class: "chev", "aria-hidden": "true" }),
    h("span", { class: "fn-name" }, fn.name),
    h("span", { class: "fn-sig" }, fn.signature || "()"),
    h("span", { class: "grow" }),
    requireBadge(fn.require_user),
    fn.file ? h("span", { class: "fn-where muted" }, `${fn.file}${fn.line ? ":" + fn.line : ""}`) : null);
  const doc = fn.doc ? h("div", { class: "fn-doc" }, fn.doc.trim()) : null;
  const card = h("article", { class: "card fn-card", dataset: { name: fn.name } }, head, doc, formHolder);
  head.addEventListener("click", () => toggleCard(card, fn));
  return card;
}

function toggleCard(card, fn, open) {
  const entry = cards.get(fn.name);
  const willOpen = open ?? !card.classList.contains("open");
  card.classList.toggle("open", willOpen);
  $(".card-head", card).setAttribute("aria-expanded", String(willOpen));
  const body = $(".card-body", card);
  if (willOpen && !body.firstChild) body.append(buildForm(entry ? entry.fn : fn));
  if (willOpen) {
    const first = $("input.arg", body);
    if (first) first.focus({ preventScroll: true });
  }
}

function renderFunctions(functions) {
  const root = $("#functions");
  const seen = new Set();
  for (const fn of functions) {
    seen.add(fn.name);
    const prev = cards.get(fn.name);
    const sig = JSON.stringify([fn.signature, fn.doc, fn.require_user, fn.file, fn.line]);
    if (prev && prev.signature === sig) {
      prev.fn = fn;
      root.append(prev.el); // keeps the order, and the open form with what was typed in it
      continue;
    }
    const el = renderFunctionCard(fn);
    const wasOpen = prev && prev.el.classList.contains("open");
    if (prev) prev.el.replaceWith(el);
    root.append(el);
    cards.set(fn.name, { el, signature: sig, fn });
    if (wasOpen) toggleCard(el, fn, true);
  }
  for (const [name, entry] of cards) {
    if (!seen.has(name)) {
      entry.el.remove();
      cards.delete(name);
    }
  }
  $("#fn-count").textContent = functions.length ? String(functions.length) : "";
  applyFilter();
}

function applyFilter() {
  const q = $("#fn-filter").value.trim().toLowerCase();
  let shown = 0;
  for (const [name, { el, fn }] of cards) {
    const match = !q || name.toLowerCase().includes(q) || (fn.doc || "").toLowerCase().includes(q);
    el.hidden = !match;
    if (match) shown += 1;
  }
  const empty = $("#functions-empty");
  empty.hidden = shown > 0;
  empty.textContent = cards.size
    ? "No function matches the filter."
    : !$("#import-banner").hidden || !$("#syntax-banner").hidden
      ? "The server modules did not load: fix the error above and save, and their functions appear here."
      : "No server functions yet. Decorate one in server_code/ with @anvil.server.callable and save: it appears here.";
}

// ---- status and banners -----------------------------------------------------------------------

let services = {};

function showSyntaxError(err) {
  const banner = $("#syntax-banner");
  if (!err) {
    banner.hidden = true;
    return;
  }
  $("#syntax-title").textContent = "SyntaxError";
  $("#syntax-text").textContent = `in ${err.file || "?"}${err.line ? ` line ${err.line}` : ""}: ${err.message || ""}`;
  banner.hidden = false;
}

function showImportError(err) {
  const banner = $("#import-banner");
  if (!err) {
    banner.hidden = true;
    return;
  }
  $("#import-title").textContent = err.type || "ImportError";
  $("#import-text").textContent = err.message || "";
  banner.hidden = false;
}

async function loadStatus() {
  const s = await api("/status");
  $("#app-name").textContent = s.app.name;
  document.title = `${s.app.name} · anvil-dev console`;
  showSyntaxError(s.syntax_error);
  showImportError(s.syntax_error ? null : s.import_error);
  renderFunctions(s.functions || []);
  services = s.services || {};
  for (const tab of document.querySelectorAll("#tabs [data-tab]")) {
    if (tab.dataset.tab !== "functions") tab.hidden = !services[tab.dataset.tab];
  }
}

let statusTimer = null;
function refreshStatusSoon() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => loadStatus().catch(() => {}), 150);
}

// ---- who the console is logged in as -------------------------------------------------------------

async function loadMe() {
  const box = $("#me");
  if (!services.users) {
    box.hidden = true;
    return;
  }
  let me;
  try {
    me = await api("/me");
  } catch {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const who = me.email || me.user_id;
  $("#me-text").replaceChildren(who ? h("span", {}, "Logged in as ", h("span", { class: "me-user" }, who)) : "Not logged in");
  const action = $("#me-action");
  action.textContent = who ? "Log out" : "Log in";
  action.onclick = async () => {
    if (who) {
      await anvil.users.logout().catch(() => {});
      loadMe();
    } else {
      const form = $("#login-form");
      form.hidden = !form.hidden;
      if (!form.hidden) $("#login-email").focus();
    }
  };
}

async function submitLogin(e) {
  e.preventDefault();
  const error = $("#login-error");
  error.textContent = "";
  try {
    await anvil.users.loginWithEmail($("#login-email").value.trim(), $("#login-password").value);
    $("#login-form").hidden = true;
    $("#login-password").value = "";
    loadMe();
  } catch (err) {
    error.textContent = err.message || String(err);
  }
}

let meTimer = null;
function refreshMeSoon() {
  clearTimeout(meTimer);
  meTimer = setTimeout(loadMe, 300);
}

// ---- tabs and panels -----------------------------------------------------------------------------

let currentTab = "functions";
const loaders = {};

function selectTab(name) {
  currentTab = name;
  for (const tab of document.querySelectorAll("#tabs [data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.dataset.panel !== name;
  if (loaders[name]) loaders[name]();
  history.replaceState(null, "", name === "functions" ? location.pathname : `#${name}`);
}

function dataTable(columns, rows, cell, empty = "Nothing here yet.") {
  if (!rows.length) return h("div", { class: "empty" }, empty);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { title: c.title ? `type: ${c.title}` : null }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, cell ? cell(c, r) : fmtCell(r[c.key])))))));
}

const ISO_DATETIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:?\d{2}|Z)?$/;

function fmtCell(v) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "—");
  if (typeof v === "string" && ISO_DATETIME.test(v)) {
    const m = ISO_DATETIME.exec(v);
    return h("span", { class: "cell-date", title: v }, `${m[1]} ${m[2]}`);
  }
  if (typeof v === "boolean") return h("span", { class: v ? "yes" : "no" }, v ? "yes" : "no");
  if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1) {
    if ("link" in v) return h("code", { class: "cell-link", title: "a linked row" }, `→ ${v.link}`);
    if ("media" in v) return h("span", { class: "cell-link" }, "Media");
  }
  if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === "object" && "link" in x)) {
    return h("code", { class: "cell-link", title: "linked rows" }, v.map((x) => `→ ${x.link}`).join("  "));
  }
  if (typeof v === "object") return h("code", { class: "cell-json", title: JSON.stringify(v, null, 2) }, JSON.stringify(v));
  return String(v);
}

function panelError(el, e) {
  el.replaceChildren(h("div", { class: "empty empty-error" }, `Could not load: ${e.message}`));
}

// Tables: a list on the left, rows of the selected table on the right.
const tableState = { name: null, offset: 0, limit: 50, total: null };

loaders.tables = async () => {
  const list = $("#table-list");
  try {
    const { tables } = await api("/tables");
    list.replaceChildren(...tables.map((t) => {
      const name = t.name || t.python_name;
      const count = t.rows ?? t.row_count ?? t.count;
      return h("li", {},
        h("button", { class: `side-item${name === tableState.name ? " active" : ""}`, onclick: () => openTable(name) },
          h("span", {}, name), count !== undefined ? h("span", { class: "count" }, String(count)) : null));
    }));
    if (!tables.length) list.replaceChildren(h("li", { class: "muted side-empty" }, "No tables in anvil.yaml yet."));
    if (!tableState.name && tables.length) openTable(tables[0].name || tables[0].python_name);
    else if (tableState.name) loadRows();
  } catch (e) {
    panelError($("#rows"), e);
  }
};

function openTable(name) {
  tableState.name = name;
  tableState.offset = 0;
  for (const b of document.querySelectorAll("#table-list .side-item")) b.classList.toggle("active", b.firstChild.textContent === name);
  loadRows();
}

async function loadRows() {
  const el = $("#rows");
  if (!tableState.name) return;
  const q = new URLSearchParams({ offset: tableState.offset, limit: tableState.limit });
  const search = $("#row-search").value.trim();
  if (search) q.set("search", search);
  try {
    const r = await api(`/tables/${encodeURIComponent(tableState.name)}/rows?${q}`);
    const rows = r.rows || [];
    const columns = (r.columns || Object.keys(rows[0] || {})).map((c) => (typeof c === "string" ? c : c.name));
    const types = Object.fromEntries((r.columns || []).filter((c) => typeof c === "object").map((c) => [c.name, c.type]));
    const cols = [{ key: "__id", label: "id" }, ...columns.map((c) => ({ key: c, label: c, title: types[c] }))];
    el.replaceChildren(dataTable(cols, rows, (c, row) => fmtCell(c.key === "__id" ? row.id ?? row._id ?? null : (row.data || row)[c.key]),
      search ? "No rows match the search." : "This table has no rows yet."));
    tableState.total = r.total ?? null;
    const end = tableState.offset + rows.length;
    $("#row-info").textContent = rows.length
      ? `rows ${tableState.offset + 1}–${end}${tableState.total !== null ? ` of ${tableState.total}` : ""}`
      : "";
    $("#row-prev").disabled = tableState.offset === 0;
    $("#row-next").disabled = tableState.total !== null ? end >= tableState.total : rows.length < tableState.limit;
  } catch (e) {
    panelError(el, e);
  }
}

loaders.users = async () => {
  const el = $("#users");
  try {
    const { users } = await api("/users");
    const keys = [...new Set(users.flatMap((u) => Object.keys(u)))].filter((k) => k !== "password_hash" && k !== "email_confirmation_key");
    const order = ["id", "email", "enabled", "confirmed_email", "signed_up", "last_login"];
    keys.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
    el.replaceChildren(dataTable(keys.map((k) => ({ key: k, label: k.replace(/_/g, " ") })), users,
      (c, u) => (["signed_up", "last_login"].includes(c.key) && u[c.key] ? when(u[c.key]) : fmtCell(u[c.key])),
      "No users yet. Sign one up from your app, or run: anvil-dev users add EMAIL"));
  } catch (e) {
    panelError(el, e);
  }
};

loaders.sessions = async () => {
  const el = $("#sessions");
  try {
    const { sessions } = await api("/sessions");
    const emails = {};
    if (services.users) {
      try {
        for (const u of (await api("/users")).users) emails[u.id] = u.email;
      } catch {
        /* show ids instead */
      }
    }
    const cols = [
      { key: "id", label: "session" }, { key: "user_id", label: "user" }, { key: "client_type", label: "client" },
      { key: "data", label: "session data" }, { key: "created", label: "created" }, { key: "updated", label: "last used" },
    ];
    el.replaceChildren(dataTable(cols, sessions, (c, s) => {
      if (c.key === "id") return h("code", { title: s.id }, String(s.id).slice(0, 10) + "…");
      if (c.key === "created" || c.key === "updated") return when(s[c.key]);
      if (c.key === "data") {
        let data = s.data;
        try {
          data = typeof data === "string" ? JSON.parse(data) : data;
        } catch {
          /* show as text */
        }
        const keys = data && typeof data === "object" ? Object.keys(data).filter((k) => k !== "objects") : [];
        return keys.length ? h("code", { class: "cell-json", title: JSON.stringify(data, null, 2) }, keys.join(", ")) : h("span", { class: "muted" }, "empty");
      }
      if (c.key === "user_id" && s.user_id) return h("span", { title: s.user_id }, emails[s.user_id] || s.user_id);
      return fmtCell(s[c.key]);
    }, "No sessions stored yet: they appear once server code uses anvil.server.session or someone logs in."));
  } catch (e) {
    panelError(el, e);
  }
};

let tasksTimer = null;

loaders.tasks = async () => {
  const el = $("#tasks");
  clearTimeout(tasksTimer);
  try {
    const { tasks } = await api("/tasks");
    // Running tasks change by themselves (task_state, duration): keep them fresh while shown.
    if (tasks.some((t) => t.status === "running")) {
      tasksTimer = setTimeout(() => currentTab === "tasks" && loaders.tasks(), 2000);
    }
    const cols = [
      { key: "id", label: "id" }, { key: "name", label: "task" }, { key: "status", label: "status" },
      { key: "start_time", label: "started" }, { key: "duration", label: "duration" }, { key: "state", label: "task_state" },
      { key: "error", label: "error" }, { key: "actions", label: "" },
    ];
    el.replaceChildren(dataTable(cols, tasks, (c, t) => {
      const status = t.status || t.termination_status || (t.running ? "running" : "");
      if (c.key === "id") return h("code", { title: String(t.id) }, String(t.id).slice(0, 8));
      if (c.key === "error") {
        const e = t.error;
        if (!e) return "";
        return h("span", { class: "cell-error", title: (e.trace || []).map((f) => f.join(" line ")).join("\n") },
          `${e.type || "Error"}: ${e.message || ""}`);
      }
      if (c.key === "name") return t.name || t.task_name || "";
      if (c.key === "status") return h("span", { class: `pill pill-${status}` }, status || "?");
      if (c.key === "start_time") return when(t.start_time ?? t.started);
      if (c.key === "duration") {
        const d = t.duration ?? t.duration_s;
        return d !== undefined && d !== null ? ms(Number(d) * 1000) : "";
      }
      if (c.key === "state") return fmtCell(t.state ?? t.task_state);
      if (c.key === "actions") {
        if (status !== "running") return "";
        return h("button", { class: "btn btn-small btn-danger", onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api(`/tasks/${encodeURIComponent(t.id)}/kill`, { method: "POST", body: "{}" });
          } catch (err) {
            alert(`Could not kill task ${t.id}: ${err.message}`);
          }
          loaders.tasks();
        } }, "Kill");
      }
      return fmtCell(t[c.key]);
    }, "No background tasks yet. Server code starts one with anvil.server.launch_background_task()."));
  } catch (e) {
    panelError(el, e);
  }
};

loaders.outbox = async () => {
  const list = $("#outbox-list");
  try {
    const { messages } = await api("/outbox");
    list.replaceChildren(...messages.map((m) => h("li", {},
      h("button", { class: "side-item mail", onclick: (e) => openMessage(m.id, e.currentTarget) },
        h("span", { class: "mail-subject" }, m.subject || "(no subject)"),
        h("span", { class: "muted mail-to" }, `to ${[].concat(m.to || []).join(", ")}`),
        h("span", { class: "muted mail-time" }, when(m.time ?? m.sent ?? m.created))))));
    if (!messages.length) list.replaceChildren(h("li", { class: "muted side-empty" }, "No email sent yet. anvil.email.send() lands here."));
  } catch (e) {
    panelError($("#outbox-message"), e);
  }
};

async function openMessage(id, button) {
  for (const b of document.querySelectorAll("#outbox-list .side-item")) b.classList.toggle("active", b === button);
  const el = $("#outbox-message");
  try {
    const { message: m } = await api(`/outbox/${encodeURIComponent(id)}`);
    const header = (label, v) => (v && (!Array.isArray(v) || v.length) ? h("div", { class: "mail-h" }, h("span", { class: "muted" }, label), [].concat(v).join(", ")) : null);
    const body = m.html
      ? h("iframe", { class: "mail-html", sandbox: "", srcdoc: m.html, title: "HTML body" })
      : h("pre", { class: "output" }, m.text || "");
    const attachments = m.attachments || [];
    el.replaceChildren(...[
      h("div", { class: "mail-top" },
        h("h3", {}, m.subject || "(no subject)"),
        m.status ? h("span", { class: `pill pill-${m.status}`, title: m.error || "" }, m.status) : null,
        h("span", { class: "grow" }),
        h("a", { class: "btn btn-small", href: `${API}/outbox/${encodeURIComponent(m.id)}.eml`, download: "" }, "Download .eml")),
      m.error ? h("div", { class: "error-line" }, m.error) : null,
      header("From", m.from_address || m.from), header("To", m.to), header("Cc", m.cc), header("Bcc", m.bcc),
      header("Sent", when(m.time ?? m.sent ?? m.created)),
      body,
      m.html && m.text ? h("details", {}, h("summary", {}, "Plain text"), h("pre", { class: "output" }, m.text)) : null,
      attachments.length ? h("div", { class: "section-label" }, "Attachments") : null,
      attachments.length ? h("ul", {}, attachments.map((a) => h("li", {}, typeof a === "string" ? a : `${a.name || "attachment"} (${a.content_type || a["mime-type"] || "?"}${a.length !== undefined ? ", " + bytes(a.length) : ""})`))) : null,
    ].filter(Boolean));
  } catch (e) {
    panelError(el, e);
  }
}

// ---- live log ---------------------------------------------------------------------------------------

/** A dotted name that may wrap after its dots ("anvil.private.users.login_with_email"). */
function breakable(name) {
  return name.split(/(?<=\.)/).flatMap((part, i) => (i ? [h("wbr"), part] : [part]));
}

/** One log line: time, icon, what happened, a figure on the right, and optional detail below. */
function logItem(kind, time, { icon = "", iconClass = "", main = [], right = "", detail = null }) {
  return h("li", { class: `log-item log-${kind}`, dataset: { kind } },
    h("time", { class: "log-time" }, clock(time)),
    h("span", { class: `log-icon ${iconClass}`, "aria-hidden": "true" }, icon),
    h("div", { class: "log-main" }, main),
    h("span", { class: "log-ms" }, right),
    detail ? h("div", { class: "log-detail" }, detail) : null);
}

function addLog(item) {
  const log = $("#log");
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  log.append(item);
  while (log.children.length > LOG_LIMIT) log.firstElementChild.remove();
  $("#log-empty").hidden = true;
  if (stick) log.scrollTop = log.scrollHeight;
}

// ---- replay: run a logged call again, as its caller, and show both results side by side -----------------

/** A reply message as showResult takes it (values decoded; media downloaded where still available). */
async function replyResult(message, frames) {
  if (!message) return null;
  const output = message.output || "";
  if (message.error) {
    const e = message.error;
    return { ok: false, error: new AnvilError(e.type || "Error", e.message || "", e.trace, output), output, frames };
  }
  try {
    await decodeMessage(message);
  } catch (e) {
    return { ok: false, local: true, error: new AnvilError("MediaGone", `its media could not be read: ${e.message || e}`) };
  }
  return { ok: true, value: message.response, output };
}

function resultColumn(title, r, missing) {
  const box = h("div", { class: "result" });
  if (r) showResult(box, r);
  else {
    box.className = "result";
    box.append(h("div", { class: "result-head" }, h("span", { class: "muted" }, missing)));
  }
  return h("div", { class: "replay-col" }, h("div", { class: "section-label" }, title), box);
}

async function replayCall(d, item, button) {
  button.disabled = true;
  button.textContent = "Replaying…";
  let holder = $(".replay", item);
  if (!holder) {
    holder = h("div", { class: "replay log-detail" });
    item.append(holder);
  }
  try {
    const r = await api(`/calls/${encodeURIComponent(d.id)}/replay`, { method: "POST", body: "{}" });
    const original = r.original || {};
    const before = await replyResult(original.reply, original.frames);
    const after = await replyResult(r.reply, r.frames);
    const missing = original.result_size ? `its result (${original.result_size} bytes) was too large to keep` : "not kept";
    const grid = h("div", { class: "replay-grid" },
      resultColumn(`Original #${r.of}`, before, missing),
      resultColumn(`Replay #${r.id}`, after, ""));
    const notes = (r.notes || []).length ? [h("ul", { class: "replay-notes" }, r.notes.map((n) => h("li", {}, n)))] : [];
    holder.replaceChildren(grid, ...notes);
  } catch (e) {
    holder.replaceChildren(h("div", { class: "replay-error" }, `Could not replay #${d.id}: ${e.message}`));
  } finally {
    button.disabled = false;
    button.textContent = "Replay";
  }
}

const onEvent = {
  call(d, t) {
    const ok = d.ok !== false && !d.error_type;
    const item = logItem(ok ? "call" : "call-error", d.time ?? t, {
      icon: ok ? "✓" : "✕", iconClass: ok ? "ok" : "bad",
      main: [
        h("span", { class: "log-fn" }, breakable(d.command || "?")),
        d.client_type ? h("span", { class: "tag" }, d.client_type) : null,
        d.user ? h("span", { class: "tag tag-user", title: "called as this user" }, String(d.user)) : null,
        d.id ? h("span", { class: "tag log-id", title: `anvil-dev call --replay ${d.id} runs it again` }, `#${d.id}`) : null,
        d.replay_of ? h("span", { class: "tag tag-replay" }, `replay of #${d.replay_of}`) : null,
      ],
      right: ms(d.duration_ms),
      detail: ok ? null : [
        traceView({ trace: [] }, d.frames),
        h("div", {}, h("strong", {}, d.error_type || "Error"), d.error_message ? `: ${d.error_message}` : ""),
      ],
    });
    if (d.id) {
      item.dataset.callId = String(d.id);
      if (d.replayable !== false) {
        const button = h("button", { class: "btn btn-small replay-btn", type: "button", title: "Run this call again, as the same caller, with the code as it is now" }, "Replay");
        button.addEventListener("click", () => replayCall(d, item, button));
        $(".log-main", item).append(button);
      }
    }
    addLog(item);
    if (currentTab !== "functions" && loaders[currentTab]) refreshPanelSoon();
    // A login or logout (here or on an app page in this browser) changes who the console is.
    if (String(d.command || "").startsWith("anvil.private.users.")) refreshMeSoon();
  },
  output(d, t) {
    const text = String(d.text || "").replace(/\n$/, "");
    if (!text) return;
    addLog(logItem("output", t, {
      icon: "›", main: [h("span", { class: "log-src" }, `${d.command || ""} printed`)], detail: h("pre", {}, text),
    }));
  },
  client_output(d, t) {
    const text = String(d.text || "").replace(/\n$/, "");
    if (!text) return;
    addLog(logItem("output", t, {
      icon: "›", main: [h("span", { class: "log-src" }, "client code printed")], detail: h("pre", {}, text),
    }));
  },
  client_error(d, t) {
    const where = (d.trace || [])[0];
    addLog(logItem("client-error", t, {
      icon: "✕", iconClass: "bad",
      main: [h("strong", {}, d.type || "Error"), " in client code",
        where ? " at " : "", where ? h("code", {}, `${where[0]} line ${where[1]}`) : ""],
      detail: d.message || "",
    }));
  },
  reload(d, t) {
    addLog(logItem("reload", d.time ?? t, {
      icon: "↻", iconClass: "reload", main: ["Reloaded ", h("code", {}, d.file || "server code")], right: ms(d.ms),
    }));
    refreshStatusSoon();
  },
  syntax_error(d, t) {
    showSyntaxError(d);
    addLog(logItem("syntax-error", t, {
      icon: "✕", iconClass: "bad",
      main: [h("strong", {}, "SyntaxError"), ` in ${d.file || "?"}${d.line ? ` line ${d.line}` : ""}`],
      detail: d.message || "",
    }));
    refreshStatusSoon();
  },
  reload_failed(d, t) {
    showImportError(d);
    addLog(logItem("syntax-error", d.time ?? t, {
      icon: "✕", iconClass: "bad",
      main: [h("strong", {}, "Reload failed"), ` ${d.changed || ""}: ${d.type || "Exception"}`
        + (d.file ? ` at ${d.file}${d.line ? ` line ${d.line}` : ""}` : "")],
      detail: d.message || "",
    }));
    refreshStatusSoon();
  },
  syntax_ok(d, t) {
    showSyntaxError(null);
    addLog(logItem("syntax-ok", t, { icon: "✓", iconClass: "ok", main: ["Syntax error fixed"] }));
    refreshStatusSoon();
  },
  task_killed(d, t) {
    addLog(logItem("task", t, { icon: "■", iconClass: "bad", main: [`Killed background task ${d.name ? d.name + " " : ""}`, h("code", {}, String(d.id).slice(0, 8))] }));
  },
};

let panelTimer = null;
function refreshPanelSoon() {
  clearTimeout(panelTimer);
  panelTimer = setTimeout(() => loaders[currentTab] && loaders[currentTab](), 400);
}

function connectEvents() {
  const live = $("#live");
  const setLive = (state, text) => {
    live.dataset.state = state;
    $(".live-text", live).textContent = text;
  };
  const es = new EventSource("/_/console/events");
  es.onopen = () => setLive("live", "live");
  es.onerror = () => setLive("down", es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");
  for (const kind of Object.keys(onEvent)) {
    es.addEventListener(kind, (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      onEvent[kind](msg.data || {}, msg.time);
    });
  }
}

// ---- start -----------------------------------------------------------------------------------------

function start() {
  for (const tab of document.querySelectorAll("#tabs [data-tab]")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  for (const b of document.querySelectorAll("[data-refresh]")) b.addEventListener("click", () => loaders[b.dataset.refresh]());
  $("#fn-filter").addEventListener("input", applyFilter);
  let searchTimer = null;
  $("#row-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      tableState.offset = 0;
      loadRows();
    }, 250);
  });
  $("#row-prev").addEventListener("click", () => {
    tableState.offset = Math.max(0, tableState.offset - tableState.limit);
    loadRows();
  });
  $("#row-next").addEventListener("click", () => {
    tableState.offset += tableState.limit;
    loadRows();
  });
  $("#log-clear").addEventListener("click", () => {
    $("#log").replaceChildren();
    $("#log-empty").hidden = false;
  });
  $("#log-output").addEventListener("change", (e) => document.body.classList.toggle("hide-output", !e.target.checked));
  $("#login-form").addEventListener("submit", submitLogin);
  loadStatus()
    .then(() => {
      loadMe();
      const wanted = location.hash.slice(1);
      if (wanted && services[wanted]) selectTab(wanted);
    })
    .catch((e) => {
      $("#functions-empty").hidden = false;
      $("#functions-empty").textContent = `Could not load the server's functions: ${e.message}`;
    });
  connectEvents();
}

start();

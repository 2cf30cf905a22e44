// anvil-dev browser client: call Anvil server functions from a plain web page.
//
// Served at /_/anvil.js as an ES module (no build step):
//
//   <script type="module">
//     import { anvil } from "/_/anvil.js";      // also available as window.anvil
//     const n = await anvil.server.call("add", 1, 2);
//   </script>
//
// anvil.server.call(name, ...args)     -> Promise of the decoded result; shows the loading spinner
// anvil.server.call_s(name, ...args)   -> the same without the spinner
// anvil.server.kwargs({k: v})          -> pass as the LAST argument to send Python keyword arguments:
//                                         call("f", 1, anvil.server.kwargs({flag: true}))  ==  f(1, flag=True)
// anvil.server.noLoadingIndicator(fn)  -> runs async fn(); calls made until it settles show no spinner
// anvil.users.loginWithEmail(email, password, {remember}) / signupWithEmail / logout / getUser
//
// Failed calls reject with an AnvilError: .type is Anvil's type name ("anvil.server.NoServerFunctionError",
// "ValueError", ...), .message the server's message, .trace a list of [file, line]. Text the server
// function print()ed is written to the browser console.
//
// Values (Anvil's wire format: JSON plus an "objects" list describing the non-JSON values):
//   Python                JavaScript
//   int beyond 32 bits    Number (BigInt beyond 2**53; BigInt arguments are sent as ints)
//   inf / nan             Infinity / NaN
//   datetime              Date (sent back with the browser's UTC offset)
//   date                  anvil.DateOnly (new DateOnly(2024, 5, 6), .toString() "2024-05-06")
//   Media                 File/Blob (with .name and .type); pass a Blob or File to upload one
//   portable class        plain object (or array) with a non-enumerable __type__ naming the class;
//                         pass it back unchanged, or build one with anvil.server.portable("pkg.Cls", {...})
//   data table row        anvil.Row: columns as properties (row.email, row["Lic. #"]), row.getId();
//                         pass it back unchanged as an argument to get the live row on the server
//   data table / view     anvil.Table (see "Data tables" below)
//
// Data tables (the server checks every permission: the table's `client` setting, views, client_hidden):
//   const tables = await anvil.tables.getAppTables();      // the tables whose client access is not none
//   const found = tables.notes.search({owner: "ann"}, {pageSize: 100, args: [anvil.tables.orderBy("n")]});
//   for await (const row of found) { ... }                 // pages are fetched as iteration reaches them
//   await found.length(); await tables.notes.get({n: 3}); await tables.notes.getById(id);
//   await tables.todo.addRow({title: "x"});                // client: full tables and writable views only
//   await row.update({done: true}); await row.delete();    // through the table or view it was found by
//   await row.get("boss")                                  // a column; a linked row beyond the data sent
//                                                          // with its row is loaded first
//   A search a server function returns is an array when it fits in one page, else an
//   anvil.tables.SearchIterator holding the first page: `for await` it to read the rest.

const CALL_URL = new URL("call", import.meta.url).href;
const MAX_INT = 2147483647;

// ---- errors -------------------------------------------------------------------------------

/** A server function's error, or a failure to reach the server. */
export class AnvilError extends Error {
  constructor(type, message, trace = [], output = "") {
    super(message);
    this.type = type;
    this.trace = trace || [];
    this.output = output || "";
    // The short type name makes console messages read like Python's: "NoServerFunctionError: ...".
    this.name = String(type).split(".").pop();
  }
}

function serializationError(what, path) {
  return new AnvilError("anvil.server.SerializationError", `${what} at ${formatPath(path)}`);
}

function formatPath(path) {
  return "msg" + path.map((p) => `[${JSON.stringify(p)}]`).join("");
}

// ---- values that have no JSON form ----------------------------------------------------------

/** A calendar date without time of day: Python's datetime.date. */
export class DateOnly {
  constructor(year, month, day) {
    this.year = year;
    this.month = month;
    this.day = day;
  }
  static parse(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(text).trim());
    if (!m) throw new TypeError(`not a YYYY-MM-DD date: ${text}`);
    return new DateOnly(+m[1], +m[2], +m[3]);
  }
  static fromDate(d) {
    return new DateOnly(d.getFullYear(), d.getMonth() + 1, d.getDate());
  }
  toDate() {
    return new Date(this.year, this.month - 1, this.day);
  }
  toString() {
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(this.year, 4)}-${pad(this.month)}-${pad(this.day)}`;
  }
  toJSON() {
    return this.toString();
  }
}

/** A portable class object itself (Python returned the class, not an instance). */
export class PortableClass {
  constructor(typeName) {
    this.typeName = typeName;
  }
  toString() {
    return `<class ${this.typeName}>`;
  }
}

/** A portable class instance whose serialized form is not an object or array (e.g. a string). */
export class PortableValue {
  constructor(typeName, value) {
    Object.defineProperty(this, "__type__", { value: typeName });
    this.value = value;
  }
  valueOf() {
    return this.value;
  }
}

/** Mark `data` (an object or array) as an instance of the portable class `typeName`. */
export function portable(typeName, data) {
  if (data === null || typeof data !== "object") return new PortableValue(typeName, data);
  Object.defineProperty(data, "__type__", { value: typeName, configurable: true });
  return data;
}

/** A data table row: its columns are its own properties; the row reference is kept aside. */
export class Row {
  constructor(ref, columns) {
    Object.defineProperty(this, "__type__", { value: "anvil.tables.Row" });
    Object.defineProperty(this, "_anvilRef", { value: ref });
    Object.assign(this, columns || {});
  }
  /** Anvil's row id, the string "[table_id,row_id]". */
  getId() {
    return this._anvilRef.id;
  }
  get_id() {
    return this._anvilRef.id;
  }
  get tableName() {
    return this._anvilRef.table;
  }
}

const TABLES = "anvil.private.tables.client.";

Row.prototype.isLoaded = function () {
  return this._anvilRef.loaded !== false;
};

/** Load a row the client holds by reference only (a link beyond the data sent with its row). */
Row.prototype.fetch = async function () {
  if (this.isLoaded()) return this;
  const fresh = await call_s(TABLES + "get_row", this);
  Object.assign(this, fresh);
  this._anvilRef.loaded = true;
  return this;
};

/** A column's value; a linked row that arrived as a reference is loaded before it is returned. */
Row.prototype.get = async function (column) {
  await this.fetch();
  const value = this[column];
  // Rows linked from a row of a client_writable_cascade view are written through that view.
  const cascade = this._anvilVia && this._anvilVia._anvilRef.perm === "rwc" ? this._anvilVia : null;
  for (const r of Array.isArray(value) ? value : [value]) {
    if (cascade && r instanceof Row && !r._anvilVia) via(cascade, r);
  }
  if (value instanceof Row) await value.fetch();
  if (Array.isArray(value)) await Promise.all(value.filter((v) => v instanceof Row).map((v) => v.fetch()));
  return value;
};

/** Write columns, through the table or view this row was found by (the server checks it may). */
Row.prototype.update = async function (values) {
  const fresh = await call_s(TABLES + "update_row", this._anvilVia || null, this, values);
  Object.assign(this, fresh);
};

Row.prototype.delete = async function () {
  await call_s(TABLES + "delete_row", this._anvilVia || null, this);
};

function via(table, row) {
  if (row instanceof Row) Object.defineProperty(row, "_anvilVia", { value: table, configurable: true });
  return row;
}

/** A data table, or a view of one that server code made, as client code may use it. */
export class Table {
  constructor(ref) {
    Object.defineProperty(this, "_anvilRef", { value: ref });
  }
  get name() {
    return this._anvilRef.name;
  }
  /** A lazy search: nothing is fetched until it is iterated (pages of `pageSize` rows). */
  search(kw = {}, { pageSize = null, args = [] } = {}) {
    return new SearchIterator(this, args, kw, pageSize);
  }
  async get(kw = {}, { args = [] } = {}) {
    return via(this, await call_s(TABLES + "get", this, args, kw));
  }
  async getById(id) {
    return via(this, await call_s(TABLES + "get_by_id", this, id));
  }
  async addRow(values) {
    return via(this, await call_s(TABLES + "add_row", this, values));
  }
  listColumns() {
    return call_s(TABLES + "list_columns", this);
  }
}

/** The rows of a client-side search, fetched a page at a time. */
export class SearchIterator {
  constructor(table, args, kw, pageSize) {
    this.table = table;
    this.args = args;
    this.kw = kw;
    this.pageSize = pageSize;
    this.loaded = [];
    this.more = true;
    this.pagesLoaded = 0;
  }
  /** A search a server function returned: its first page, and the server's cursor for the rest. */
  static fromServer(rows, cursor) {
    const it = new SearchIterator(null, [], {}, null);
    it.cursor = cursor;
    it.loaded.push(...rows);
    it.pagesLoaded = 1;
    return it;
  }
  /** Fetch the next page; resolves to its rows ([] at the end). */
  async nextPage() {
    if (!this.more) return [];
    const page = this.cursor
      ? await call_s(TABLES + "next_page", this.cursor, this.loaded.length)
      : await call_s(TABLES + "search", this.table, this.args, this.kw, this.loaded.length, this.pageSize);
    const rows = page.rows.map((r) => via(this.table, r));
    this.loaded.push(...rows);
    this.more = page.more;
    this.pagesLoaded += 1;
    return rows;
  }
  async *[Symbol.asyncIterator]() {
    for (let i = 0; ; i++) {
      while (i >= this.loaded.length) {
        if (!this.more || !(await this.nextPage()).length) return;
      }
      yield this.loaded[i];
    }
  }
  async length() {
    if (!this.more) return this.loaded.length;
    if (this.cursor) return call_s(TABLES + "cursor_length", this.cursor);
    return call_s(TABLES + "length", this.table, this.args, this.kw);
  }
  async toArray() {
    const out = [];
    for await (const row of this) out.push(row);
    return out;
  }
}

let appTablesCache = null;

const tables = {
  /** The tables client code may use, by name (fetched once per page). */
  async getAppTables() {
    if (appTablesCache === null) appTablesCache = await call_s(TABLES + "get_app_tables");
    return appTablesCache;
  },
  /** anvil.tables.order_by(column, ascending): pass in search()'s `args`. */
  orderBy(column, ascending = true) {
    return portable("anvil.tables.order_by", { column_name: column, ascending });
  },
  Table,
  SearchIterator,
};

/** Keyword arguments for a call; must be the last argument. */
class Kwargs {
  constructor(values) {
    this.values = values || {};
  }
}

export function kwargs(values) {
  return new Kwargs(values);
}

// ---- encoding (JavaScript -> wire) --------------------------------------------------------

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** Anvil's DateTime string, in the browser's UTC offset (as Anvil's browser client sends). */
function formatDateTime(d) {
  if (Number.isNaN(d.getTime())) throw new TypeError("cannot send an invalid Date");
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const ms = String(d.getMilliseconds()).padStart(3, "0") + "000";
  return (
    `${String(d.getFullYear()).padStart(4, "0")}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${ms}` +
    `${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`
  );
}

function isPlainObject(v) {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

class Encoder {
  constructor() {
    this.objects = [];
    this.media = []; // [{id, blob}]
    this.active = new Set();
  }

  encode(v, path) {
    if (v === null || v === undefined) return null;
    switch (typeof v) {
      case "string":
      case "boolean":
        return v;
      case "number":
        if (!Number.isFinite(v)) {
          const text = Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
          this.objects.push({ path, type: ["Float"], value: text });
          return null;
        }
        if (Number.isInteger(v) && Math.abs(v) > MAX_INT) {
          this.objects.push({ path, type: ["Long"], value: BigInt(v).toString() });
          return null;
        }
        return v;
      case "bigint":
        if (v >= -MAX_INT && v <= MAX_INT) return Number(v);
        this.objects.push({ path, type: ["Long"], value: v.toString() });
        return null;
      case "object":
        return this.encodeObject(v, path);
      default:
        throw serializationError(`Cannot serialize a ${typeof v}`, path);
    }
  }

  encodeObject(v, path) {
    if (v instanceof Date) {
      this.objects.push({ path, type: ["DateTime"], value: formatDateTime(v) });
      return null;
    }
    if (v instanceof DateOnly) {
      this.objects.push({ path, type: ["Date"], value: v.toString() });
      return null;
    }
    if (v instanceof PortableClass) {
      this.objects.push({ path, type: ["ClassType"], typeName: v.typeName });
      return null;
    }
    if (typeof Blob !== "undefined" && v instanceof Blob) {
      const id = `m${this.media.length}`;
      this.media.push({ id, blob: v });
      this.objects.push({
        path, type: ["DataMedia"], id,
        "mime-type": v.type || "application/octet-stream",
        name: v.name || null,
        length: v.size,
      });
      return null;
    }
    if (v instanceof Kwargs) throw serializationError("anvil.server.kwargs() must be the last argument", path);
    if (this.active.has(v)) {
      throw serializationError("Cannot serialize a value that contains itself (a circular reference)", path);
    }
    this.active.add(v);
    try {
      if (v instanceof SearchIterator && v.cursor) {
        const data = { rows: this.encode(v.loaded, [...path, "rows"]), more: v.cursor };
        this.objects.push({ path, type: ["ValueType"], typeName: "anvil.tables.SearchIterator" });
        return data;
      }
      if (v instanceof Table) {
        const data = this.encodeEntries(v._anvilRef, path);
        this.objects.push({ path, type: ["ValueType"], typeName: "anvil.tables.Table" });
        return data;
      }
      if (v instanceof Row) {
        const ref = v._anvilRef;
        const data = this.encodeEntries(v, [...path, "data"]);
        this.objects.push({ path, type: ["ValueType"], typeName: "anvil.tables.Row" });
        return { id: ref.id, table: ref.table, mac: ref.mac, data };
      }
      const typeName = Object.prototype.hasOwnProperty.call(v, "__type__") ? v.__type__ : null;
      let out;
      if (v instanceof PortableValue) out = this.encode(v.value, path);
      else if (Array.isArray(v)) out = v.map((item, i) => this.encode(item, [...path, i]));
      else if (typeName !== null || isPlainObject(v)) out = this.encodeEntries(v, path);
      else {
        const cls = (v.constructor && v.constructor.name) || "object";
        throw serializationError(`Cannot serialize ${cls} object (send plain objects, arrays, Dates, Blobs)`, path);
      }
      // The class's entry comes after its fields' entries, so they are decoded first.
      if (typeName !== null) this.objects.push({ path, type: ["ValueType"], typeName });
      return out;
    } finally {
      this.active.delete(v);
    }
  }

  encodeEntries(obj, path) {
    const out = {};
    for (const [k, item] of Object.entries(obj)) {
      if (item === undefined) continue; // as JSON.stringify does
      out[k] = this.encode(item, [...path, k]);
    }
    return out;
  }
}

function splitKwargs(args) {
  if (args.length && args[args.length - 1] instanceof Kwargs) {
    return [args.slice(0, -1), args[args.length - 1].values];
  }
  return [args, {}];
}

/** The request body for a call: JSON, or multipart when Blobs/Files are among the arguments. */
function encodeCall(command, args, kw) {
  const enc = new Encoder();
  const message = {
    command,
    args: args.map((a, i) => enc.encode(a, ["args", i])),
    kwargs: enc.encodeEntries(kw, ["kwargs"]),
  };
  message.objects = enc.objects;
  const json = JSON.stringify(message);
  if (!enc.media.length) return { body: json, headers: { "Content-Type": "application/json" } };
  const form = new FormData();
  form.append("json", json);
  for (const { id, blob } of enc.media) form.append(id, blob, blob.name || id);
  return { body: form, headers: {} };
}

// ---- decoding (wire -> JavaScript) --------------------------------------------------------

function parseDateTime(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(
    String(text).trim()
  );
  if (!m) return new Date(NaN);
  const ms = m[7] ? Number((m[7] + "000").slice(0, 3)) : 0;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (!m[8]) return new Date(y, mo - 1, d, h, mi, s, ms); // naive: browser's local time
  let offset = 0;
  if (m[8] !== "Z") {
    const digits = m[8].replace(":", "");
    offset = (digits[0] === "-" ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms) - offset * 60000);
}

function decodeLong(text) {
  const big = BigInt(text);
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big;
}

function getAt(root, path) {
  let node = root;
  for (const p of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = node[p];
  }
  return node;
}

function setAt(root, path, value) {
  const parent = getAt(root, path.slice(0, -1));
  if (parent !== null && typeof parent === "object") parent[path[path.length - 1]] = value;
}

async function fetchMedia(entry) {
  if (!entry.url) {
    throw new AnvilError("anvil.server.InternalError", `media ${entry.name || entry.id} arrived without a URL`);
  }
  const r = await fetch(entry.url, { credentials: "same-origin" });
  if (!r.ok) {
    throw new AnvilError("anvil.server.InternalError", `could not download media ${entry.name || entry.id}: HTTP ${r.status}`);
  }
  const bytes = await r.blob();
  const type = entry["mime-type"] || bytes.type || "application/octet-stream";
  if (entry.name) return new File([bytes], entry.name, { type });
  const blob = new Blob([bytes], { type });
  Object.defineProperty(blob, "name", { value: null });
  return blob;
}

function decodeEntry(message, entry, media) {
  const kind = Array.isArray(entry.type) ? entry.type[0] : entry.type;
  switch (kind) {
    case "Long":
      return decodeLong(entry.value);
    case "Float":
      return { Infinity: Infinity, "-Infinity": -Infinity, NaN: NaN }[entry.value] ?? Number(entry.value);
    case "Date":
      return DateOnly.parse(entry.value);
    case "DateTime":
      return parseDateTime(entry.value);
    case "Primitive":
      return entry.value;
    case "DataMedia":
      return media.get(entry);
    case "ClassType":
      return new PortableClass(entry.typeName);
    case "ValueType": {
      const data = getAt(message, entry.path);
      if (entry.typeName === "anvil.tables.Row" && data && typeof data === "object" && !Array.isArray(data)) {
        return new Row({ id: data.id, table: data.table, mac: data.mac, loaded: "data" in data }, data.data);
      }
      if (entry.typeName === "anvil.tables.Table" && data && typeof data === "object" && !Array.isArray(data)) {
        return new Table(data);
      }
      if (entry.typeName === "anvil.tables.SearchIterator" && data && typeof data === "object" && "more" in data) {
        return SearchIterator.fromServer(data.rows || [], data.more);
      }
      return portable(entry.typeName, data);
    }
    default:
      // An object type this client does not know (LiveObject, Capability...): keep its description.
      return { __unknown__: kind, ...entry };
  }
}

/** Put back the values a message's "objects" list describes; downloads media first (the console uses it). */
export async function decodeMessage(message) {
  const objects = Array.isArray(message.objects) ? message.objects : [];
  const mediaEntries = objects.filter((e) => (Array.isArray(e.type) ? e.type[0] : e.type) === "DataMedia");
  const blobs = await Promise.all(mediaEntries.map(fetchMedia));
  const media = new Map(mediaEntries.map((e, i) => [e, blobs[i]]));
  // In order: a portable class's fields come before the class's own entry.
  for (const entry of objects) {
    if (!Array.isArray(entry.path) || !entry.path.length) continue;
    setAt(message, entry.path, decodeEntry(message, entry, media));
  }
  return message;
}

// ---- the loading spinner ------------------------------------------------------------------

const SPINNER_DELAY_MS = 120; // quick calls should not flash a spinner
let spinnerCount = 0;
let spinnerTimer = null;
let suppressDepth = 0;

function spinnerElement() {
  let el = document.getElementById("anvil-loading");
  if (el) return el;
  if (!document.getElementById("anvil-loading-style")) {
    const style = document.createElement("style");
    style.id = "anvil-loading-style";
    style.textContent = `
      #anvil-loading { position: fixed; inset: 0; z-index: 2147483000; display: flex; align-items: center;
        justify-content: center; pointer-events: none; opacity: 0; transition: opacity .15s ease-in; }
      #anvil-loading[hidden] { display: none; }
      #anvil-loading.anvil-loading-visible { opacity: 1; }
      #anvil-loading .anvil-spinner { width: 44px; height: 44px; border-radius: 50%; box-sizing: border-box;
        border: 4px solid rgba(40, 110, 220, .18); border-top-color: #2a6edc; background: rgba(255,255,255,.85);
        box-shadow: 0 2px 12px rgba(0,0,0,.12); animation: anvil-spin .8s linear infinite; }
      @keyframes anvil-spin { to { transform: rotate(360deg); } }
      @media (prefers-reduced-motion: reduce) { #anvil-loading .anvil-spinner { animation-duration: 2.4s; } }`;
    document.head.appendChild(style);
  }
  el = document.createElement("div");
  el.id = "anvil-loading";
  el.className = "anvil-loading";
  el.setAttribute("role", "progressbar");
  el.setAttribute("aria-label", "Loading");
  el.innerHTML = '<div class="anvil-spinner"></div>';
  el.hidden = true;
  document.body.appendChild(el);
  return el;
}

function spinnerStart() {
  spinnerCount += 1;
  if (spinnerCount > 1 || typeof document === "undefined") return;
  spinnerTimer = setTimeout(() => {
    spinnerTimer = null;
    const el = spinnerElement();
    el.hidden = false;
    requestAnimationFrame(() => el.classList.add("anvil-loading-visible"));
  }, SPINNER_DELAY_MS);
}

function spinnerStop() {
  spinnerCount = Math.max(0, spinnerCount - 1);
  if (spinnerCount > 0 || typeof document === "undefined") return;
  if (spinnerTimer !== null) {
    clearTimeout(spinnerTimer);
    spinnerTimer = null;
  }
  const el = document.getElementById("anvil-loading");
  if (el) {
    el.classList.remove("anvil-loading-visible");
    el.hidden = true;
  }
}

/**
 * Run `fn` (usually async); server calls made until its promise settles show no spinner.
 * Browsers cannot tell which code a call came from, so this covers every call in that time.
 */
export async function noLoadingIndicator(fn) {
  suppressDepth += 1;
  try {
    return await fn();
  } finally {
    suppressDepth -= 1;
  }
}

// ---- calls --------------------------------------------------------------------------------

function logOutput(command, text) {
  if (!text) return;
  const lines = String(text).replace(/\n$/, "").split("\n");
  console.log(lines.map((l) => `[${command}] ${l}`).join("\n"));
}

async function post(command, args, kw) {
  const { body, headers } = encodeCall(command, args, kw);
  let response;
  try {
    response = await fetch(CALL_URL, { method: "POST", credentials: "same-origin", headers, body });
  } catch (e) {
    throw new AnvilError("anvil.server.AppOfflineError", `Could not reach the server at ${CALL_URL} (${e.message}). Is anvil-dev serve running?`);
  }
  let message;
  try {
    message = await response.json();
  } catch {
    throw new AnvilError("anvil.server.InternalError", `The server answered HTTP ${response.status} with no call result`);
  }
  // A failed call's id in anvil-dev's recent calls: the dev console fetches its traceback by it.
  const callId = response.headers.get("X-Anvil-Dev-Call");
  if (callId && message && message.error) Object.defineProperty(message, "callId", { value: callId });
  return message;
}

/**
 * Call a server function and report everything about it: resolves to {value, output, ms};
 * rejects with an AnvilError that also carries .output and .ms. Used by the dev console.
 * options.spinner (default true) shows the loading spinner.
 */
export async function callDetailed(name, args = [], kw = {}, options = {}) {
  if (typeof name !== "string") throw new TypeError("the first argument to call() must be the server function's name (a string)");
  const spinner = options.spinner !== false && suppressDepth === 0;
  const start = performance.now();
  if (spinner) spinnerStart();
  try {
    const message = await post(name, args, kw);
    const output = message.output || "";
    logOutput(name, output);
    if (message.error) {
      const e = message.error;
      const err = new AnvilError(e.type || "anvil.server.InternalError", e.message || "", e.trace, output);
      err.ms = performance.now() - start;
      if (message.callId) err.callId = message.callId;
      throw err;
    }
    await decodeMessage(message);
    return { value: message.response, output, ms: performance.now() - start };
  } catch (e) {
    if (e instanceof AnvilError && e.ms === undefined) e.ms = performance.now() - start;
    throw e;
  } finally {
    if (spinner) spinnerStop();
  }
}

/** Call a server function; resolves to its return value, rejects with an AnvilError. */
export async function call(name, ...args) {
  const [positional, kw] = splitKwargs(args);
  return (await callDetailed(name, positional, kw)).value;
}

/** Like call(), without the loading spinner. */
export async function call_s(name, ...args) {
  const [positional, kw] = splitKwargs(args);
  return (await callDetailed(name, positional, kw, { spinner: false })).value;
}

// ---- users --------------------------------------------------------------------------------

const users = {
  /** Log in; resolves to the user row, rejects with anvil.users.AuthenticationFailed etc. */
  loginWithEmail(email, password, { remember = false } = {}) {
    return call("anvil.private.users.login_with_email", email, password, kwargs({ remember }));
  },
  /** Sign up (and log in, where the app allows it); resolves to the new user row. */
  signupWithEmail(email, password, { remember = false } = {}) {
    return call("anvil.private.users.signup_with_email", email, password, kwargs({ remember }));
  },
  logout() {
    return call("anvil.private.users.logout");
  },
  /** The logged-in user's row, or null. */
  getUser() {
    return call_s("anvil.private.users.get_current_user");
  },
};

export const server = { call, call_s, callDetailed, kwargs, noLoadingIndicator, portable, AnvilError };
export { users, tables };
export const anvil = { server, users, tables, AnvilError, DateOnly, Row, Table, PortableClass, PortableValue };

if (typeof window !== "undefined") window.anvil = anvil;
export default anvil;

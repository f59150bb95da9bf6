// Small DOM helpers. Text always goes in as text (never as HTML): task names, tags and logs are
// whatever clients sent.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export const STATES = [
  "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR",
  "SYSTEM_ERROR", "CANCELING", "CANCELED", "PREEMPTED", "UNKNOWN",
];
export const FINAL = new Set(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"]);

export function stateBadge(state) {
  return h("span", { class: `state state-${(state ?? "UNKNOWN").toLowerCase()}` }, state ?? "UNKNOWN");
}

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function duration(startIso, endIso) {
  if (!startIso) return "";
  const ms = (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
  if (!Number.isFinite(ms) || ms < 0) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function bytes(value) {
  if (value === undefined || value === null || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]} (${n} B)`;
}

// Key/value rows; values that are not strings are shown as JSON.
export function table(rows, { headers, cls } = {}) {
  return h(
    "table",
    { class: cls },
    headers ? h("thead", {}, h("tr", {}, headers.map((name) => h("th", {}, name)))) : null,
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
  );
}

export function fields(pairs) {
  return h(
    "dl",
    { class: "fields" },
    pairs
      .filter(([, value]) => value !== undefined && value !== null && value !== "")
      .map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

export function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" });
  if (error?.status === 401) {
    const next = location.pathname + location.search;
    box.append(
      h("strong", {}, error.title ?? "Unauthorized"),
      error.detail ? `: ${error.detail} ` : " ",
      h("a", { href: `${loginHref()}?next=${encodeURIComponent(next)}` }, "Sign in"),
    );
  } else if (error?.title) {
    box.append(h("strong", { class: "error-title" }, error.title), error.detail ? ": " : "",
      h("span", { class: "error-detail" }, error.detail ?? ""));
  } else {
    box.append(String(error?.message ?? error));
  }
  return box;
}

let loginPath = "";
export function setLoginHref(path) {
  loginPath = path;
}
function loginHref() {
  return loginPath;
}

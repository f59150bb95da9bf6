// The TES API as the browser calls it: same origin, the user's own credentials.
const root = document.querySelector('meta[name="tesk-root"]')?.content ?? "";
export const API = `${root}/ga4gh/tes/v1`;
export const DASHBOARD = `${root}/dashboard`;

// sessionStorage: credentials live as long as the tab and are never written to disk or cookies,
// so the API (not a session cookie) decides on every call what the caller may see.
const KEY = "tesk.dashboard.credentials";

export function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "null");
  } catch {
    return null;
  }
}

export function saveCredentials(value) {
  sessionStorage.setItem(KEY, JSON.stringify(value));
}

export function forgetCredentials() {
  sessionStorage.removeItem(KEY);
}

export function basicCredentials(user, password) {
  // btoa takes Latin-1 only: encode as UTF-8 first (RFC 7617 with charset="UTF-8").
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  const binary = Array.from(bytes, (b) => String.fromCharCode(b)).join("");
  return { kind: "basic", user, header: `Basic ${btoa(binary)}` };
}

export function bearerCredentials(token) {
  return { kind: "bearer", user: null, header: `Bearer ${token.trim()}` };
}

export class ApiError extends Error {
  constructor(status, body, challenge) {
    const detail = body?.detail ?? body?.message ?? "";
    const title = body?.title ?? `HTTP ${status}`;
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.challenge = challenge;
  }
}

// `auth`: credentials to use instead of the stored ones (null: none).
export async function call(path, { method = "GET", query = [], body, auth } = {}) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of query) url.searchParams.append(key, value);
  const headers = { Accept: "application/json" };
  const creds = auth === undefined ? credentials() : auth;
  if (creds) headers.Authorization = creds.header;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // credentials "omit": with them, the browser answers a Basic challenge with its own login
  // dialog; the dashboard's login page asks instead. Explicit Authorization headers still go out.
  const response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store" });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    throw new ApiError(response.status, data, response.headers.get("WWW-Authenticate"));
  }
  return data;
}

const id = (taskId) => encodeURIComponent(taskId);

export const tes = {
  listTasks: (query, auth) => call("/tasks", { query, auth }),
  getTask: (taskId, view = "FULL") => call(`/tasks/${id(taskId)}`, { query: [["view", view]] }),
  cancelTask: (taskId) => call(`/tasks/${id(taskId)}:cancel`, { method: "POST" }),
  // The text as typed: the API's own words say what is wrong with it, even for broken JSON.
  createTask: (text) => call("/tasks", { method: "POST", body: text }),
  serviceInfo: () => call("/service-info"),
};

// Sign in: Basic (users file) or a pasted OIDC bearer token. Credentials are checked with one
// ListTasks call and kept in this tab's sessionStorage.
import { DASHBOARD, basicCredentials, bearerCredentials, saveCredentials, tes } from "./api.js";
import { errorBox, h } from "./dom.js";

const PROBE = [["view", "MINIMAL"], ["page_size", "1"]];

export function renderLogin(main) {
  const next = safeNext(new URLSearchParams(location.search).get("next"));
  const mode = h("p", { id: "auth-mode", class: "muted" }, "Asking TESK which credentials it takes…");
  const result = h("div", { id: "login-result" });

  async function signIn(creds) {
    result.replaceChildren();
    try {
      await tes.listTasks(PROBE, creds);
      saveCredentials(creds);
      location.assign(next);
    } catch (error) {
      // On this page a 401 is the answer itself, not a reason to come here.
      result.replaceChildren(errorBox(error.status === 401 ? { title: error.title, detail: error.detail } : error));
    }
  }

  const user = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const basic = h("form", { id: "basic-login", onsubmit: (event) => {
    event.preventDefault();
    signIn(basicCredentials(user.value, password.value));
  } }, h("h2", {}, "User name and password"),
  h("label", {}, "User name ", user), h("label", {}, "Password ", password),
  h("button", { type: "submit" }, "Sign in"));

  const token = h("textarea", { name: "token", rows: 4, spellcheck: "false", required: true, placeholder: "eyJ…" });
  const bearer = h("form", { id: "token-login", onsubmit: (event) => {
    event.preventDefault();
    signIn(bearerCredentials(token.value));
  } }, h("h2", {}, "Bearer token (OIDC)"),
  h("label", {}, "Access token ", token),
  h("button", { type: "submit" }, "Use token"));

  main.replaceChildren(h("h1", {}, "Sign in"), mode,
    h("p", {}, "Credentials are kept in this browser tab only (sessionStorage) and sent to the TES API with each call."),
    h("div", { class: "login" }, basic, bearer), result);

  // What the API's challenge asks for decides which form comes first.
  tes.listTasks(PROBE, null).then(
    () => { mode.textContent = "This TESK needs no credentials: every caller sees every task."; },
    (error) => {
      const scheme = (error.challenge ?? "").split(" ")[0].toLowerCase();
      if (scheme === "basic") mode.textContent = "This TESK asks for a user name and password.";
      else if (scheme === "bearer") {
        mode.textContent = "This TESK asks for a bearer token from its identity provider.";
        bearer.after(basic);
      } else mode.textContent = error.message;
    });
}

// Only a dashboard path: `next` comes from the URL and must not send the user elsewhere.
function safeNext(value) {
  if (value && value.startsWith(`${DASHBOARD}/`) && !value.startsWith("//")) return value;
  return `${DASHBOARD}/`;
}

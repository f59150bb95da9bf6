// Routes the dashboard's paths to their views.
import { DASHBOARD, credentials, forgetCredentials } from "./api.js";
import { h, setLoginHref } from "./dom.js";
import { renderServiceInfo } from "./info.js";
import { renderList } from "./list.js";
import { renderLogin } from "./login.js";
import { renderSubmit } from "./submit.js";
import { renderTask } from "./task.js";

setLoginHref(`${DASHBOARD}/login`);

function who() {
  const slot = document.getElementById("who");
  const creds = credentials();
  if (creds) {
    slot.replaceChildren(
      h("span", { id: "user" }, creds.kind === "basic" ? creds.user : "token"), " ",
      h("button", { type: "button", id: "sign-out", onclick: () => {
        forgetCredentials();
        location.assign(`${DASHBOARD}/login`);
      } }, "Sign out"));
  } else {
    slot.replaceChildren(h("a", { href: `${DASHBOARD}/login`, id: "sign-in" }, "Sign in"));
  }
}

function route() {
  const main = document.getElementById("main");
  const path = location.pathname.slice(DASHBOARD.length).replace(/\/+$/, "");
  const task = path.match(/^\/tasks\/([^/]+)$/);
  let nav = "tasks";
  if (path === "") renderList(main);
  else if (task) renderTask(main, decodeURIComponent(task[1]));
  else if (path === "/submit") { nav = "submit"; renderSubmit(main); }
  else if (path === "/service-info") { nav = "service-info"; renderServiceInfo(main); }
  else if (path === "/login") { nav = ""; renderLogin(main); }
  else main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No dashboard page here."));
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
}

who();
route();

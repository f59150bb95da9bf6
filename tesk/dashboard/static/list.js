// The task list: newest first (the API's order), filters kept in the URL, counts by state.
import { DASHBOARD, tes } from "./api.js";
import { STATES, errorBox, h, stateBadge, time } from "./dom.js";
import { follow } from "./live.js";

const PAGE_SIZE = 25;
// Counting pages through MINIMAL listings (ids and states only); beyond this many tasks the
// count says "at least".
const COUNT_PAGE_SIZE = 2047;
const COUNT_MAX_PAGES = 5;

export function filtersFrom(search) {
  const params = new URLSearchParams(search);
  const keys = params.getAll("tag_key");
  const values = params.getAll("tag_value");
  return {
    namePrefix: params.get("name_prefix") ?? "",
    state: params.get("state") ?? "",
    tags: keys.map((key, i) => [key, values[i] ?? ""]).filter(([key]) => key !== ""),
  };
}

// The query both the dashboard's URL and ListTasks take.
export function filterQuery(filters, { withState = true } = {}) {
  const query = [];
  if (filters.namePrefix) query.push(["name_prefix", filters.namePrefix]);
  if (withState && filters.state) query.push(["state", filters.state]);
  // Keys and values are zipped by position; an empty value matches any value of its key, so
  // values are sent only up to the last one that says something.
  const lastValue = filters.tags.findLastIndex(([, value]) => value !== "");
  filters.tags.forEach(([key]) => query.push(["tag_key", key]));
  filters.tags.slice(0, lastValue + 1).forEach(([, value]) => query.push(["tag_value", value]));
  return query;
}

async function countStates(filters) {
  const counts = {};
  let token = "";
  let total = 0;
  for (let page = 0; page < COUNT_MAX_PAGES; page += 1) {
    const query = [...filterQuery(filters, { withState: false }), ["view", "MINIMAL"],
      ["page_size", String(COUNT_PAGE_SIZE)]];
    if (token) query.push(["page_token", token]);
    const answer = await tes.listTasks(query);
    for (const task of answer.tasks ?? []) {
      counts[task.state] = (counts[task.state] ?? 0) + 1;
      total += 1;
    }
    token = answer.next_page_token ?? "";
    if (!token) return { counts, total, complete: true };
  }
  return { counts, total, complete: false };
}

export function renderList(main) {
  let filters = filtersFrom(location.search);
  let tokens = [""]; // page tokens of the pages seen so far; the last one is shown
  let nextToken = "";

  const nameInput = h("input", { name: "name_prefix", placeholder: "name starts with", type: "search" });
  const stateSelect = h("select", { name: "state" }, h("option", { value: "" }, "any state"),
    STATES.map((state) => h("option", { value: state }, state)));
  const tagKey = h("input", { name: "tag_key", placeholder: "tag key" });
  const tagValue = h("input", { name: "tag_value", placeholder: "tag value (any)" });
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    apply({
      namePrefix: nameInput.value,
      state: stateSelect.value,
      tags: tagKey.value ? [[tagKey.value, tagValue.value], ...filters.tags.slice(1)] : [],
    });
  } },
  h("label", {}, "Name ", nameInput), h("label", {}, "State ", stateSelect),
  h("label", {}, "Tag ", tagKey, " = ", tagValue),
  h("button", { type: "submit" }, "Filter"),
  h("button", { type: "button", onclick: () => apply({ namePrefix: "", state: "", tags: [] }) }, "Clear"));
  stateSelect.addEventListener("change", () => form.requestSubmit());

  const counts = h("div", { class: "counts", "aria-label": "tasks by state" });
  const status = h("div", { class: "status" });
  const rows = h("tbody", { id: "task-rows" });
  const previous = h("button", { type: "button", onclick: () => page(-1) }, "‹ Newer");
  const next = h("button", { type: "button", onclick: () => page(1) }, "Older ›");
  const pageLabel = h("span", { class: "muted" });
  main.replaceChildren(
    h("h1", {}, "Tasks"), form, counts, status,
    h("table", { class: "tasks" },
      h("thead", {}, h("tr", {}, ["Name", "State", "Created", "Tags", "ID"].map((c) => h("th", {}, c)))),
      rows),
    h("div", { class: "pager" }, previous, pageLabel, next),
  );

  function showFilters() {
    nameInput.value = filters.namePrefix;
    stateSelect.value = filters.state;
    tagKey.value = filters.tags[0]?.[0] ?? "";
    tagValue.value = filters.tags[0]?.[1] ?? "";
  }

  function apply(newFilters) {
    filters = newFilters;
    const query = new URLSearchParams(filterQuery(filters)).toString();
    history.pushState(null, "", `${DASHBOARD}/${query ? `?${query}` : ""}`);
    restart();
  }

  function restart() {
    showFilters();
    tokens = [""];
    rows.replaceChildren();
    list.refresh();
    tally.refresh();
  }

  function page(step) {
    if (step > 0 && nextToken) tokens.push(nextToken);
    else if (step < 0 && tokens.length > 1) tokens.pop();
    else return;
    list.refresh();
  }

  const list = follow(async () => {
    const query = [...filterQuery(filters), ["view", "BASIC"], ["page_size", String(PAGE_SIZE)]];
    const token = tokens.at(-1);
    if (token) query.push(["page_token", token]);
    return tes.listTasks(query);
  }, {
    // Every change of any task the user may see reloads the page of the list.
    events: "/events",
    onData: (answer) => {
      status.replaceChildren();
      nextToken = answer.next_page_token ?? "";
      const tasks = answer.tasks ?? [];
      rows.replaceChildren(...tasks.map(row));
      if (!tasks.length) rows.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No tasks.")));
      previous.disabled = tokens.length <= 1;
      next.disabled = !nextToken;
      pageLabel.textContent = `page ${tokens.length}`;
    },
    onError: (error) => status.replaceChildren(errorBox(error)),
  });

  const tally = follow(() => countStates(filters), {
    intervalMs: 10000,
    onData: ({ counts: byState, total, complete }) => {
      const more = complete ? "" : "+";
      const chip = (label, state, n) => h("a", {
        class: `count${filters.state === state ? " selected" : ""}`,
        href: "#", "data-state": state,
        onclick: (event) => {
          event.preventDefault();
          apply({ ...filters, state });
        },
      }, state ? stateBadge(label) : label, ` ${n}${more}`);
      counts.replaceChildren(chip("all", "", total),
        ...STATES.filter((state) => byState[state]).map((state) => chip(state, state, byState[state])));
    },
    onError: () => counts.replaceChildren(),
  });

  window.addEventListener("popstate", () => {
    filters = filtersFrom(location.search);
    restart();
  });
  showFilters();
}

function row(task) {
  const href = `${DASHBOARD}/tasks/${encodeURIComponent(task.id)}`;
  const tags = Object.entries(task.tags ?? {}).map(([key, value]) =>
    h("span", { class: "tag" }, value ? `${key}=${value}` : key));
  return h("tr", { "data-task-id": task.id },
    h("td", {}, h("a", { href }, task.name || h("span", { class: "muted" }, "(no name)"))),
    h("td", {}, stateBadge(task.state)),
    h("td", {}, time(task.creation_time)),
    h("td", {}, tags),
    h("td", { class: "mono" }, h("a", { href }, task.id)));
}

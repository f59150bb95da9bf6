// Submit a task as JSON; the API's 400 answer is shown as the API words it.
import { DASHBOARD, tes } from "./api.js";
import { errorBox, h } from "./dom.js";

const EXAMPLE = {
  name: "hello",
  description: "Says hello and counts the words of an inline input.",
  inputs: [{ path: "/data/in/words.txt", content: "one two three\n" }],
  executors: [{
    image: "busybox",
    command: ["sh", "-c", "echo hello from TESK; wc -w /data/in/words.txt"],
  }],
  tags: { project: "demo" },
};

export function renderSubmit(main) {
  const editor = h("textarea", { id: "task-json", spellcheck: "false", rows: 22, "aria-label": "task JSON" });
  editor.value = JSON.stringify(EXAMPLE, null, 2);
  const result = h("div", { id: "submit-result" });
  const submit = h("button", { type: "submit" }, "Submit task");
  const form = h("form", { class: "submit", onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    result.replaceChildren();
    try {
      const { id } = await tes.createTask(editor.value);
      const href = `${DASHBOARD}/tasks/${encodeURIComponent(id)}`;
      result.replaceChildren(h("div", { class: "notice" }, "Created ", h("a", { href }, id)));
      location.assign(href);
    } catch (error) {
      result.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  } },
  h("p", {}, "A TES task as JSON (tesTask). The API checks it; what it refuses is shown below as it says it."),
  editor,
  h("div", { class: "actions" }, submit,
    h("button", { type: "button", onclick: () => { editor.value = JSON.stringify(EXAMPLE, null, 2); } }, "Reset example")),
  result);
  main.replaceChildren(h("h1", {}, "Submit a task"), form);
}

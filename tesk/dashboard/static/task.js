// One task in the FULL view: executors with their logs, inputs, outputs, system logs, metadata.
import { tes } from "./api.js";
import { FINAL, bytes, duration, errorBox, fields, h, show, stateBadge, table, time } from "./dom.js";
import { follow } from "./live.js";

export function renderTask(main, taskId) {
  const title = h("h1", {}, "Task ", h("span", { class: "mono" }, taskId));
  const status = h("div", { class: "status" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel", onclick: doCancel }, "Cancel task");
  const body = h("div", { id: "task" });
  main.replaceChildren(title, h("div", { class: "actions" }, cancel), status, body);
  let last = null;

  async function doCancel() {
    cancel.disabled = true;
    try {
      await tes.cancelTask(taskId);
      status.replaceChildren(h("div", { class: "notice" }, "Cancel requested."));
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
    live.refresh();
  }

  const live = follow(() => tes.getTask(taskId, "FULL"), {
    intervalMs: 3000,
    events: `/tasks/${encodeURIComponent(taskId)}/events`,
    onData: (task) => {
      last = task;
      document.title = `${task.name || task.id} · TESK`;
      title.replaceChildren(task.name || "Task", " ", stateBadge(task.state));
      cancel.disabled = FINAL.has(task.state) || task.state === "CANCELING";
      // Keep what the reader opened open across refreshes.
      const open = new Set([...body.querySelectorAll("details[open]")].map((d) => d.dataset.key));
      body.replaceChildren(...sections(task).filter(Boolean));
      body.querySelectorAll("details").forEach((d) => {
        if (open.has(d.dataset.key)) d.open = true;
      });
      // A final task changes no more.
      if (FINAL.has(task.state)) live.stop();
    },
    onError: (error) => {
      status.replaceChildren(errorBox(error));
      if (!last) body.replaceChildren();
    },
  });
}

function lastLog(task) {
  const logs = task.logs ?? [];
  return logs.length ? logs[logs.length - 1] : {};
}

function sections(task) {
  const log = lastLog(task);
  return [
    h("section", {},
      fields([
        ["ID", h("span", { class: "mono", id: "task-id" }, task.id)],
        ["State", h("span", { id: "task-state" }, stateBadge(task.state))],
        ["Name", task.name],
        ["Description", task.description],
        ["Created", time(task.creation_time)],
        ["Started", log.start_time ? time(log.start_time) : null],
        ["Ended", log.end_time ? time(log.end_time) : null],
        ["Duration", duration(log.start_time, log.end_time)],
        ["Tags", Object.keys(task.tags ?? {}).length
          ? Object.entries(task.tags).map(([k, v]) => h("span", { class: "tag" }, v ? `${k}=${v}` : k))
          : null],
        ["Resources", task.resources ? resources(task.resources) : null],
        ["Volumes", (task.volumes ?? []).join(", ")],
      ])),
    executors(task, log),
    inputs(task),
    outputs(task, log),
    systemLogs(log),
    metadata(log),
    h("details", { "data-key": "json" }, h("summary", {}, "Task document (JSON)"),
      h("pre", { class: "json" }, JSON.stringify(task, null, 2))),
  ];
}

function resources(r) {
  return Object.entries(r).map(([key, value]) => `${key}: ${show(value)}`).join(" · ");
}

function executors(task, log) {
  const logs = log.logs ?? [];
  return h("section", { id: "executors" }, h("h2", {}, "Executors"),
    (task.executors ?? []).map((executor, i) => {
      const run = logs[i];
      return h("article", { class: "executor", "data-index": i },
        h("h3", {}, `#${i + 1} `, h("span", { class: "mono" }, executor.image)),
        fields([
          ["Command", h("code", {}, (executor.command ?? []).map(quote).join(" "))],
          ["Workdir", executor.workdir],
          ["Env", executor.env ? Object.entries(executor.env).map(([k, v]) => `${k}=${v}`).join(" ") : null],
          ["Exit code", run && run.exit_code !== undefined ? h("span", { class: "exit-code" }, String(run.exit_code)) : null],
          ["Started", run?.start_time ? time(run.start_time) : null],
          ["Ended", run?.end_time ? time(run.end_time) : null],
          ["Duration", run ? duration(run.start_time, run.end_time) : null],
        ]),
        run ? null : h("p", { class: "muted" }, "Not run yet."),
        run?.stdout ? [h("h4", {}, "stdout (tail)"), h("pre", { class: "stdout" }, run.stdout)] : null,
        run?.stderr ? [h("h4", {}, "stderr (tail)"), h("pre", { class: "stderr" }, run.stderr)] : null);
    }));
}

function quote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function inputs(task) {
  const list = task.inputs ?? [];
  if (!list.length) return null;
  return h("section", { id: "inputs" }, h("h2", {}, "Inputs"),
    table(list.map((input) => [
      input.name ?? "", h("span", { class: "mono" }, input.path), input.type ?? "",
      input.content !== undefined && input.content !== ""
        ? h("span", { class: "muted" }, `inline content, ${new TextEncoder().encode(input.content).length} B`)
        : h("span", { class: "mono" }, input.url ?? ""),
    ]), { headers: ["Name", "Path", "Type", "Source"] }));
}

function outputs(task, log) {
  const declared = task.outputs ?? [];
  const uploaded = log.outputs ?? [];
  if (!declared.length && !uploaded.length) return null;
  return h("section", { id: "outputs" }, h("h2", {}, "Outputs"),
    declared.length ? table(declared.map((o) => [
      o.name ?? "", h("span", { class: "mono" }, o.path), o.type ?? "", h("span", { class: "mono" }, o.url),
    ]), { headers: ["Name", "Path", "Type", "URL"] }) : null,
    uploaded.length ? [h("h3", {}, "Uploaded files"), table(uploaded.map((o) => [
      h("span", { class: "mono" }, o.path), h("span", { class: "mono" }, o.url),
      h("span", { class: "size" }, bytes(o.size_bytes)),
    ]), { headers: ["Path", "URL", "Size"], cls: "uploaded" })] : null);
}

function systemLogs(log) {
  const lines = log.system_logs ?? [];
  if (!lines.length) return null;
  return h("section", { id: "system-logs" }, h("h2", {}, "System logs"), h("pre", {}, lines.join("\n")));
}

function metadata(log) {
  const entries = Object.entries(log.metadata ?? {});
  if (!entries.length) return null;
  return h("section", { id: "metadata" }, h("h2", {}, "Metadata"),
    table(entries.map(([key, value]) => [h("span", { class: "mono" }, key), show(value)]),
      { headers: ["Key", "Value"] }));
}

// service-info: who runs this TESK and what it offers.
import { tes } from "./api.js";
import { errorBox, fields, h, show, time } from "./dom.js";

export async function renderServiceInfo(main) {
  main.replaceChildren(h("h1", {}, "Service info"));
  try {
    const info = await tes.serviceInfo();
    const type = info.type ? `${info.type.group}:${info.type.artifact}:${info.type.version}` : null;
    main.append(fields([
      ["Name", info.name],
      ["ID", info.id],
      ["Description", info.description],
      ["Type", type],
      ["Version", info.version],
      ["Organization", info.organization ? organization(info.organization) : null],
      ["Contact", info.contactUrl],
      ["Documentation", info.documentationUrl],
      ["Environment", info.environment],
      ["Started", info.createdAt ? time(info.createdAt) : null],
      ["Storage", (info.storage ?? []).length ? h("ul", {}, info.storage.map((s) => h("li", { class: "mono" }, s))) : null],
      ["Backend parameters", (info.tesResources_backend_parameters ?? []).map(show).join(", ")],
    ]), h("details", {}, h("summary", {}, "JSON"), h("pre", { class: "json" }, JSON.stringify(info, null, 2))));
  } catch (error) {
    main.append(errorBox(error));
  }
}

function organization(org) {
  return org.url ? h("span", {}, org.name, " (", h("span", { class: "mono" }, org.url), ")") : org.name;
}

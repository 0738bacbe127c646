// Settings › Personas: the current persona, my personas, system personas;
// create / edit (see persona-editor.js), delete, import and export cards.

import { api, seg } from "../api.js";
import { avatar, confirmDialog, errorBox, fillNames, h, mount, toast } from "../dom.js";
import { go } from "../router.js";
import { currentPersona, loadPersonas, session, setCurrentPersona, userName } from "../state.js";
import { openEditor } from "./persona-editor.js";
import { settingsHeader } from "./settings-nav.js";

export async function personasView(main) {
  const error = errorBox();
  const body = h("div", { class: "persona-sections" });
  const importInput = h("input", {
    type: "file", id: "import-card", class: "visually-hidden", accept: ".png,.json,.charx,image/png,application/json,application/zip",
  });
  const create = h("button", { type: "button", class: "primary" }, "+ New persona");
  main.append(h("section", { class: "page" }, settingsHeader("/settings/personas"), error, body));

  const refresh = async () => {
    try {
      await loadPersonas();
    } catch (failure) {
      error.show(failure.message);
    }
    draw();
  };

  create.addEventListener("click", async () => {
    const saved = await openEditor(null);
    if (saved) {
      toast(`Created ${saved.name}.`);
      await refresh();
    }
  });

  importInput.addEventListener("change", async () => {
    const file = importInput.files[0];
    if (!file) return;
    error.clear();
    try {
      const persona = await api.upload("POST", "/api/personas/import", file);
      toast([`Imported ${persona.name} as ${persona.id}.`, ...(persona.notes || [])].join(" "));
      await refresh();
    } catch (failure) {
      error.show(`Could not import ${file.name}: ${failure.message}`);
    } finally {
      importInput.value = "";
    }
  });

  const use = async (persona) => {
    try {
      await setCurrentPersona(persona.id);
      draw();
      toast(`You are now talking to ${persona.name}.`, { action: { label: "Open chat", onclick: () => go("/chat") } });
    } catch (failure) {
      error.show(failure.message);
    }
  };

  const remove = async (persona) => {
    // Say what will be lost: the card, and the user's conversations and memories with it.
    let facts = 0;
    let conversations = 0;
    try {
      const base = `/api/personas/${seg(persona.id)}`;
      [facts, conversations] = await Promise.all([
        api.get(`${base}/memory`).then((r) => r.items.length),
        api.get(`${base}/conversations`).then((r) => r.conversations.length),
      ]);
    } catch {
      /* counts are informative only */
    }
    const lost = [
      `the persona “${persona.name}”${persona.avatar_url ? " and its avatar" : ""}`,
      `${conversations} conversation${conversations === 1 ? "" : "s"} you had with it`,
      `${facts} thing${facts === 1 ? "" : "s"} it learned about you`,
    ];
    if (persona.shared) lost.push("other users’ access to it (it is shared)");
    const ok = await confirmDialog({
      title: `Delete ${persona.name}?`,
      body: [h("p", {}, "This will permanently delete:"), h("ul", {}, lost.map((item) => h("li", {}, item))),
        h("p", {}, "This cannot be undone. Export the card first if you may want it back.")],
      confirmLabel: "Delete persona",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.del(`/api/personas/${seg(persona.id)}/data`);
      await api.del(`/api/personas/${seg(persona.id)}`);
      toast(`Deleted ${persona.name}.`);
      await refresh();
    } catch (failure) {
      error.show(failure.message);
    }
  };

  const edit = async (persona) => {
    const saved = await openEditor(persona);
    if (saved) {
      toast(`Saved ${saved.name}.`);
      await refresh();
    }
  };

  const exportMenu = (persona) =>
    h("details", { class: "menu" },
      h("summary", { class: "button ghost small", "aria-label": `Export ${persona.name}` }, "Export"),
      h("div", { class: "menu-items" },
        h("a", { href: `/api/personas/${seg(persona.id)}/card?format=png`, download: `${persona.id}.png` }, "Card as PNG"),
        h("a", { href: `/api/personas/${seg(persona.id)}/card?format=json`, download: `${persona.id}.json` }, "Card as JSON"),
        h("a", { href: `/api/personas/${seg(persona.id)}/card?format=charx`, download: `${persona.id}.charx` }, "Card as CHARX"),
        persona.lorebook_entries > 0 && h("a", { href: `/api/personas/${seg(persona.id)}/lorebook`, download: `${persona.id}-lorebook.json` }, "Lorebook (World Info)")));

  const card = (persona, { highlight = false } = {}) => {
    const isCurrent = persona.id === currentPersona()?.id;
    const badges = [
      isCurrent && h("span", { class: "badge accent" }, "Current"),
      persona.system && h("span", { class: "badge" }, "System"),
      persona.shared && !persona.system && h("span", { class: "badge" }, "Shared"),
      persona.sharing_group && h("span", { class: "badge", title: "Shares memories with its group" }, `Group: ${persona.sharing_group}`),
      persona.curiosity && persona.curiosity !== "off" && h("span", { class: "badge" }, `Curiosity: ${persona.curiosity}`),
    ];
    const actions = [
      highlight
        ? h("button", { type: "button", class: "primary small", onclick: () => go("/chat") }, "Chat now")
        : !isCurrent && h("button", { type: "button", class: "small", onclick: () => use(persona),
          "aria-label": `Talk to ${persona.name}` }, "Talk to"),
      persona.editable && h("button", { type: "button", class: "ghost small", onclick: () => edit(persona),
        "aria-label": `Edit ${persona.name}` }, "Edit"),
      exportMenu(persona),
      persona.mine && !highlight && h("button", { type: "button", class: "ghost small danger-text",
        onclick: () => remove(persona), "aria-label": `Delete ${persona.name}` }, "Delete"),
    ];
    return h("article", { class: `persona-card${highlight ? " highlight" : ""}${isCurrent ? " current" : ""}`,
      dataset: { persona: persona.id } },
      h("div", { class: "persona-top" }, avatar(persona, highlight ? "xl" : "lg"),
        h("div", {}, h("h3", {}, persona.name), h("p", { class: "badges" }, badges))),
      h("p", { class: "desc" }, fillNames(persona.description, { char: persona.name, user: userName() }) || "No description."),
      h("div", { class: "card-actions" }, actions));
  };

  const grid = (personas, empty) =>
    personas.length ? h("div", { class: "persona-grid" }, personas.map((p) => card(p))) : h("p", { class: "empty" }, empty);

  const draw = () => {
    const current = currentPersona();
    const mine = session.personas.filter((p) => p.mine);
    const system = session.personas.filter((p) => p.system);
    const shared = session.personas.filter((p) => !p.mine && !p.system);
    mount(body,
      h("section", { "aria-labelledby": "current-heading", class: "current-section" },
        h("h2", { id: "current-heading" }, "Current persona"),
        current ? card(current, { highlight: true }) : h("p", { class: "empty" }, "Pick a persona below.")),
      h("section", { "aria-labelledby": "mine-heading" },
        h("div", { class: "section-head" }, h("h2", { id: "mine-heading" }, "My personas"),
          h("div", { class: "row" }, create, importInput,
            // The file input stays focusable (visually hidden); its label looks like a button.
            h("label", { for: "import-card", class: "button ghost file-button" }, "Import card (PNG/JSON/CHARX)"))),
        grid(mine, "You have not made a persona yet. Create one, or import a character card.")),
      shared.length > 0 && h("section", { "aria-labelledby": "shared-heading" },
        h("h2", { id: "shared-heading" }, "Shared with me"), grid(shared, "")),
      h("section", { "aria-labelledby": "system-heading" },
        h("h2", { id: "system-heading" }, "System personas"), grid(system, "No system personas.")));
  };

  await refresh(); // other tabs or devices may have changed the list
  return undefined;
}

// Memory: what each persona has learned about me (edit, delete), two personas
// side by side, export of my data, and "forget me" per persona or everywhere.

import { api, seg } from "../api.js";
import { busy, confirmDialog, errorBox, field, h, mount, toast } from "../dom.js";
import { currentPersona, loadPersonas, personaById, session } from "../state.js";

const KINDS = ["fact", "interest", "preference", "trait"];

const personaOptions = (selected) =>
  session.personas.map((p) => h("option", { value: p.id, selected: p.id === selected }, p.name));

const fetchMemory = async (personaId) => await api.get(`/api/personas/${seg(personaId)}/memory`);
const fetchItems = async (personaId) => (await fetchMemory(personaId)).items;

export async function memoryView(main) {
  const error = errorBox();
  await loadPersonas().catch((failure) => error.show(failure.message));
  const first = currentPersona()?.id || session.personas[0]?.id;
  const others = session.personas.filter((p) => p.id !== first);

  // -- one persona's memory, editable
  const picker = h("select", { id: "memory-persona" }, personaOptions(first));
  const list = h("ul", { class: "memory-list", "aria-live": "polite" });
  const refresh = h("button", { type: "button", class: "ghost small" }, "Refresh");

  const itemRow = (personaId, item) => {
    const text = h("p", { class: "memory-text" }, item.text);
    const meta = h("p", { class: "memory-meta" }, h("span", { class: "badge" }, item.kind),
      ` ${Math.round(item.confidence * 100)}% sure · learned ${new Date(item.created_at).toLocaleDateString()}`);
    const row = h("li", { class: "memory-item", dataset: { id: item.id } });
    const edit = h("button", { type: "button", class: "ghost small", "aria-label": `Edit “${item.text}”` }, "Edit");
    const del = h("button", { type: "button", class: "ghost small danger-text", "aria-label": `Delete “${item.text}”` }, "Delete");
    const view = () => mount(row, h("div", { class: "grow" }, text, meta), h("div", { class: "row" }, edit, del));
    edit.addEventListener("click", () => {
      const input = h("textarea", { name: "text", rows: "2", required: true, maxlength: "4000" }, item.text);
      const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k, selected: k === item.kind }, k)));
      const save = h("button", { type: "submit", class: "primary small" }, "Save");
      const form = h("form", { class: "memory-edit grow" }, field("Memory", input), field("Kind", kind),
        h("div", { class: "row" }, h("button", { type: "button", class: "ghost small", onclick: () => { view(); edit.focus(); } }, "Cancel"), save));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(save, async () => {
          try {
            const updated = await api.patch(`/api/personas/${seg(personaId)}/memory/${item.id}`,
              { text: input.value.trim(), kind: kind.value });
            const fresh = itemRow(personaId, updated); // new labels name the new text
            row.replaceWith(fresh);
            fresh.querySelector("button").focus();
          } catch (failure) {
            error.show(failure.message);
          }
        });
      });
      mount(row, form);
      input.focus();
    });
    del.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: "Delete this memory?",
        body: h("p", {}, `${personaById(personaId)?.name || "The persona"} will no longer remember: “${item.text}”.`),
        confirmLabel: "Delete", danger: true,
      });
      if (!ok) return;
      try {
        await api.del(`/api/personas/${seg(personaId)}/memory/${item.id}`);
        row.remove();
        if (!list.children.length) list.append(emptyRow(personaId));
        toast("Memory deleted.");
      } catch (failure) {
        error.show(failure.message);
      }
    });
    view();
    return row;
  };

  const emptyRow = (personaId) =>
    h("li", { class: "empty" }, `${personaById(personaId)?.name || "This persona"} has not learned anything about you yet.`);

  // what fell out of the model's window, summarised (read-only; forgotten with the conversation)
  const summaries = h("ul", { class: "plain summary-list", "aria-label": "Conversation summaries" });
  const summaryRows = (found) => found.length
    ? found.map((s) => h("li", {}, h("span", { class: "badge" }, s.conversation), " ", s.text))
    : h("li", { class: "empty" }, "No conversation is long enough to be summarised yet.");

  const loadList = async () => {
    error.clear();
    try {
      const memory = await fetchMemory(picker.value);
      const items = memory.items;
      mount(summaries, summaryRows(memory.summaries || []));
      mount(list, items.length ? items.map((item) => itemRow(picker.value, item)) : emptyRow(picker.value));
    } catch (failure) {
      error.show(failure.message);
    }
  };
  picker.addEventListener("change", loadList);
  refresh.addEventListener("click", () => busy(refresh, loadList));

  // -- compare two personas side by side (read-only)
  const left = h("select", { id: "compare-left" }, personaOptions(first));
  const right = h("select", { id: "compare-right" }, personaOptions(others[0]?.id || first));
  const columns = h("div", { class: "compare-columns" });
  const column = async (select) => {
    const persona = personaById(select.value);
    let body;
    try {
      const items = await fetchItems(select.value);
      body = items.length
        ? h("ul", { class: "plain" }, items.map((i) => h("li", {}, h("span", { class: "badge" }, i.kind), " ", i.text)))
        : h("p", { class: "empty" }, "Knows nothing about you yet.");
    } catch (failure) {
      body = h("p", { class: "error" }, failure.message);
    }
    return h("section", { class: "compare-col", "aria-label": `What ${persona?.name} knows` },
      h("h3", {}, persona?.name || select.value), persona?.sharing_group &&
        h("p", { class: "hint" }, `Shares memories with group “${persona.sharing_group}”.`), body);
  };
  const loadCompare = async () => mount(columns, await Promise.all([column(left), column(right)]));
  left.addEventListener("change", loadCompare);
  right.addEventListener("change", loadCompare);

  // -- my data: export and forget
  const forgetPersona = h("select", { id: "forget-persona" }, personaOptions(first));
  const forgetOne = h("button", { type: "button", class: "danger" }, "Forget me for this persona");
  const forgetAll = h("button", { type: "button", class: "danger" }, "Forget me everywhere");
  const forget = async (personaId) => {
    const persona = personaId && personaById(personaId);
    const ok = await confirmDialog({
      title: persona ? `Make ${persona.name} forget you?` : "Forget me everywhere?",
      body: [h("p", {}, persona
        ? `${persona.name} loses everything about you: your conversations, what it learned about you and any pending questions.`
        : "Every persona loses everything about you: all conversations, everything learned about you and pending questions. Your account and your personas stay."),
      h("p", {}, "This cannot be undone. Export your data first if you want a copy.")],
      confirmLabel: persona ? `Forget me for ${persona.name}` : "Forget everything",
      danger: true,
    });
    if (!ok) return;
    try {
      const done = await (persona ? api.del(`/api/personas/${seg(personaId)}/data`) : api.del("/api/me/data"));
      toast(`Forgotten: ${done.total} record${done.total === 1 ? "" : "s"} deleted.`);
      await Promise.all([loadList(), loadCompare()]);
    } catch (failure) {
      error.show(failure.message);
    }
  };
  forgetOne.addEventListener("click", () => forget(forgetPersona.value));
  forgetAll.addEventListener("click", () => forget(null));

  main.append(h("section", { class: "page" },
    h("h1", {}, "Memory"),
    h("p", { class: "muted lead" }, "What personas have learned about you from your conversations. Edit or delete anything."),
    error,
    h("div", { class: "memory-layout" },
      h("section", { class: "card", "aria-labelledby": "known-heading" },
        h("div", { class: "section-head" }, h("h2", { id: "known-heading" }, "What a persona knows"), refresh),
        field("Persona", picker), list,
        h("h3", { id: "summaries-heading" }, "Conversation summaries"),
        h("p", { class: "hint" }, "Earlier parts of long conversations, summarised for the persona. Clearing a conversation removes its summary."),
        summaries),
      h("section", { class: "card", "aria-labelledby": "compare-heading" },
        h("h2", { id: "compare-heading" }, "Compare two personas"),
        h("div", { class: "row compare-pickers" }, field("Left", left), field("Right", right)), columns),
      h("section", { class: "card", "aria-labelledby": "data-heading" },
        h("h2", { id: "data-heading" }, "Your data"),
        h("p", {}, "Download everything personae stores about you as JSON."),
        h("p", {}, h("a", { class: "button", href: "/api/me/export", download: "personae-export.json" }, "Export my data")),
        h("h3", {}, "Forget me"),
        h("div", { class: "row align-end" }, field("Persona", forgetPersona), forgetOne),
        h("div", { class: "forget-all" }, h("p", { class: "hint" }, "Or make every persona forget you at once:"), forgetAll)))));

  await Promise.all([loadList(), loadCompare()]);
  return undefined;
}

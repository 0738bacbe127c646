// The create / edit persona dialog: identity, personality and scenario,
// greeting and examples, avatar (with preview), voice (preset with preview,
// custom sample upload), curiosity and memory sharing.

import { api, request, seg } from "../api.js";
import { busy, errorBox, field, h, uid } from "../dom.js";
import { session } from "../state.js";
import { loadVoices, playUrl } from "../voice.js";

const CURIOSITY = [
  ["off", "Off — never asks follow-up questions"],
  ["low", "Low — at most one question a day"],
  ["medium", "Medium — a few questions a day"],
  ["high", "High — asks often"],
];

const area = (name, value, rows = 3) => h("textarea", { name, rows: String(rows), maxlength: "20000" }, value || "");

function section(title, ...children) {
  return h("fieldset", { class: "section" }, h("legend", {}, title), children);
}

/**
 * Open the editor for `persona` (null: a new one). Resolves with the saved
 * persona, or null when cancelled.
 */
export async function openEditor(persona) {
  const voices = await loadVoices();
  const creating = !persona;
  const p = persona || { curiosity: "low" };
  const error = errorBox();
  const titleId = uid("editor-title");

  // -- identity
  const name = h("input", { name: "name", required: true, maxlength: "200", value: p.name || "" });
  const id = h("input", { name: "id", maxlength: "64", pattern: "[a-z0-9][a-z0-9_\\-]{0,63}", autocapitalize: "none", spellcheck: "false" });
  const description = area("description", p.description, 3);
  const tags = h("input", { name: "tags", value: (p.tags || []).join(", ") });

  // -- avatar: preview a chosen file with a data: URL (the page's CSP allows data: images)
  const avatarInput = h("input", { type: "file", name: "avatar", accept: "image/png,image/jpeg,image/gif,image/webp" });
  const preview = h("img", { class: "avatar xl preview", alt: "Avatar preview", hidden: !p.avatar_url, src: p.avatar_url || false });
  let removeAvatar = false;
  const removeAvatarButton = h("button", { type: "button", class: "ghost small", hidden: !p.avatar_url }, "Remove avatar");
  avatarInput.addEventListener("change", () => {
    const file = avatarInput.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      preview.src = reader.result;
      preview.hidden = false;
      removeAvatarButton.hidden = true;
    };
    reader.readAsDataURL(file);
    removeAvatar = false;
  });
  removeAvatarButton.addEventListener("click", () => {
    removeAvatar = true;
    preview.hidden = true;
    removeAvatarButton.hidden = true;
  });

  // -- voice (only when the server has voices)
  let voiceSection = null;
  const voice = h("select", { name: "voice" });
  const sampleInput = h("input", { type: "file", name: "voice-sample", accept: "audio/*" });
  const sampleStatus = h("p", { class: "hint", "aria-live": "polite" });
  let removeSample = false;
  if (voices) {
    voice.append(h("option", { value: "" }, `Default voice${voices.default ? ` (${voices.default})` : ""}`));
    for (const v of voices.voices) {
      voice.append(h("option", { value: v.id, selected: v.id === p.voice }, `${v.name} — ${v.language} (${v.engine})`));
    }
    if (p.voice && !voices.voices.some((v) => v.id === p.voice)) {
      voice.append(h("option", { value: p.voice, selected: true }, p.voice));
    }
    const previewButton = h("button", { type: "button", class: "ghost small" }, "▶ Preview voice");
    previewButton.addEventListener("click", () =>
      busy(previewButton, async () => {
        const chosen = voice.value || voices.default;
        try {
          await playUrl(`/api/voices/${seg(chosen)}/preview`);
        } catch (failure) {
          error.show(`Could not preview the voice: ${failure.message}`);
        }
      }));
    const removeSampleButton = h("button", { type: "button", class: "ghost small", hidden: true }, "Remove custom voice");
    removeSampleButton.addEventListener("click", () => {
      removeSample = true;
      removeSampleButton.hidden = true;
      sampleStatus.textContent = "The custom voice will be removed when you save.";
    });
    const playSample = h("button", { type: "button", class: "ghost small", hidden: true }, "▶ Play sample");
    playSample.addEventListener("click", () =>
      busy(playSample, () => playUrl(`/api/personas/${seg(p.id)}/voice-sample`).catch((failure) => error.show(failure.message))));
    if (!creating) {
      // GET answers the audio itself when the user has a sample, 404 otherwise.
      request("GET", `/api/personas/${seg(p.id)}/voice-sample`, { raw: true, headers: { Accept: "audio/*" } })
        .then(() => {
          sampleStatus.textContent = "You gave this persona a custom voice sample; it speaks in that voice where voice cloning is available.";
          removeSampleButton.hidden = false;
          playSample.hidden = false;
        })
        .catch(() => {
          sampleStatus.textContent = "No custom voice sample.";
        });
    }
    voiceSection = section("Voice",
      h("div", { class: "row align-end" }, field("Preset voice", voice), previewButton),
      field("Custom voice sample (optional)", sampleInput, "A short, clear recording (WAV, MP3, Ogg, FLAC or M4A) of the voice to imitate. Replaces your earlier sample."),
      sampleStatus, h("div", { class: "row" }, playSample, removeSampleButton));
  }

  // -- lorebook: a SillyTavern World Info file attached on save (replacing the persona's book)
  const lorebookInput = h("input", { type: "file", name: "lorebook", accept: ".json,application/json" });
  let removeLorebook = false;
  const lorebookStatus = h("p", { class: "hint" }, p.lorebook_entries
    ? `This persona has a lorebook of ${p.lorebook_entries} entries.` : "No lorebook.");
  const removeLorebookButton = h("button", { type: "button", class: "ghost small", hidden: !p.lorebook_entries }, "Remove lorebook");
  removeLorebookButton.addEventListener("click", () => {
    removeLorebook = true;
    lorebookInput.value = "";
    lorebookStatus.textContent = "The lorebook is removed when you save.";
    removeLorebookButton.hidden = true;
  });
  lorebookInput.addEventListener("change", () => {
    removeLorebook = false;
    if (lorebookInput.files[0]) lorebookStatus.textContent = `${lorebookInput.files[0].name} replaces the lorebook when you save.`;
  });

  // -- behaviour
  const curiosity = h("select", { name: "curiosity" },
    CURIOSITY.map(([value, label]) => h("option", { value, selected: value === (p.curiosity || "low") }, label)));
  const groupsId = uid("groups");
  const groups = [...new Set(session.personas.map((x) => x.sharing_group).filter(Boolean))];
  const sharingGroup = h("input", { name: "sharing_group", list: groupsId, maxlength: "64", value: p.sharing_group || "" });
  const shared = h("input", { type: "checkbox", name: "shared", checked: Boolean(p.shared) });

  const save = h("button", { type: "submit", class: "primary" }, creating ? "Create persona" : "Save changes");
  const cancel = h("button", { type: "button", class: "ghost" }, "Cancel");
  const form = h("form", { class: "editor", novalidate: false },
    h("header", { class: "dialog-head" }, h("h2", { id: titleId }, creating ? "New persona" : `Edit ${p.name}`),
      h("button", { type: "button", class: "ghost small close", "aria-label": "Close", onclick: () => dialog.close() }, "×")),
    h("div", { class: "dialog-scroll" },
      section("Identity",
        field("Name", name),
        creating && field("Id (optional)", id, "Lower-case letters, digits, “-” and “_”; made from the name when empty."),
        field("Description", description, "Who they are. {{char}} stands for the persona, {{user}} for you."),
        field("Tags", tags, "Comma-separated.")),
      section("Personality and scenario",
        field("Personality", area("personality", p.personality, 3)),
        field("Scenario", area("scenario", p.scenario, 3)),
        field("System prompt (advanced)", area("system_prompt", p.system_prompt, 2))),
      section("Greeting and examples",
        field("Greeting", area("greeting", p.greeting, 2), "Their first message in a new chat."),
        field("Example messages", area("example_messages", p.example_messages, 4), "Sample dialogue in <START> blocks.")),
      section("Avatar",
        h("div", { class: "row align-center" }, preview, h("div", { class: "grow" },
          field("Avatar image", avatarInput, "PNG, JPEG, GIF or WebP."), removeAvatarButton))),
      section("Lorebook",
        field("Attach a lorebook", lorebookInput, "A SillyTavern World Info file (JSON). Its entries reach the prompt when their keywords come up."),
        lorebookStatus, removeLorebookButton),
      voiceSection,
      section("Curiosity and memory",
        field("Curiosity", curiosity, "How often they ask you follow-up questions."),
        field("Memory sharing group", sharingGroup,
          "Personas in the same group read each other’s memories of you. Leave empty to keep memories private to this persona."),
        h("datalist", { id: groupsId }, groups.map((g) => h("option", { value: g }))),
        h("div", { class: "check" }, shared, h("label", { for: (shared.id = uid("shared")) }, "Visible to every user")))),
    error,
    h("div", { class: "actions" }, cancel, save));
  const dialog = h("dialog", { class: "editor-dialog", "aria-labelledby": titleId }, form);
  cancel.addEventListener("click", () => dialog.close());

  let saved = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.clear();
    busy(save, async () => {
      const data = Object.fromEntries(
        ["description", "personality", "scenario", "system_prompt", "greeting", "example_messages"]
          .map((key) => [key, form.elements[key].value]));
      data.name = name.value.trim();
      data.tags = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
      data.curiosity = curiosity.value;
      data.sharing_group = sharingGroup.value.trim() || null;
      data.shared = shared.checked;
      if (voices) data.voice = voice.value || null;
      try {
        if (!saved && creating) {
          if (id.value.trim()) data.id = id.value.trim();
          saved = await api.post("/api/personas", data);
        } else {
          saved = await api.patch(`/api/personas/${seg((saved || p).id)}`, data);
        }
        const path = `/api/personas/${seg(saved.id)}`;
        if (avatarInput.files[0]) saved = await api.upload("PUT", `${path}/avatar`, avatarInput.files[0]);
        else if (removeAvatar) await api.del(`${path}/avatar`);
        if (lorebookInput.files[0]) saved = await api.upload("PUT", `${path}/lorebook`, lorebookInput.files[0]);
        else if (removeLorebook) await api.del(`${path}/lorebook`);
        if (voices && sampleInput.files[0]) await api.upload("PUT", `${path}/voice-sample`, sampleInput.files[0]);
        else if (voices && removeSample) await api.del(`${path}/voice-sample`);
        dialog.returnValue = "saved";
        dialog.close();
      } catch (failure) {
        error.show(failure.message);
      }
    });
  });

  document.body.append(dialog);
  dialog.showModal();
  name.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      // A persona created before a later step failed still counts as saved.
      resolve(dialog.returnValue === "saved" || saved ? saved : null);
    });
  });
}

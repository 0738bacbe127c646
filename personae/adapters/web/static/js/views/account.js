// Settings › Account: who is logged in, and linking a Discord account with the
// one-time code from Discord's /link command.

import { api } from "../api.js";
import { busy, errorBox, field, h } from "../dom.js";
import { session } from "../state.js";
import { settingsHeader } from "./settings-nav.js";

export function accountView(main) {
  const me = session.me;
  const error = errorBox();
  const result = h("p", { class: "success", role: "status", hidden: true });
  const code = h("input", {
    name: "code", required: true, autocomplete: "one-time-code", autocapitalize: "characters",
    spellcheck: "false", maxlength: "32", placeholder: "ABCD-EFGH", class: "code-input",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Link account");
  const form = h("form", { class: "stack link-form" },
    field("One-time code", code, "In Discord, run /link: the bot answers with a code that is valid for a few minutes."),
    error, result, h("div", {}, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    result.hidden = true;
    const value = code.value.trim().toUpperCase();
    try {
      const linked = await busy(submit, () => api.post("/api/link", { code: value }));
      const platform = linked.platform === "discord" ? "Discord" : linked.platform;
      result.textContent = `Linked: your ${platform} account (${linked.external_id}) now shares your memories and personas.`;
      result.hidden = false;
      code.value = "";
    } catch (failure) {
      error.show(failure.status === 404 && !failure.problem.detail
        ? "Account linking is not available on this server."
        : failure.message);
    }
  });

  main.append(h("section", { class: "page narrow-page" }, settingsHeader("/settings/account"),
    h("section", { class: "card", "aria-labelledby": "account-heading" },
      h("h2", { id: "account-heading" }, "Your account"),
      h("dl", { class: "facts" },
        h("dt", {}, "User name"), h("dd", {}, me.username),
        h("dt", {}, "Display name"), h("dd", {}, me.name || "—"),
        h("dt", {}, "Role"), h("dd", {}, me.is_admin ? "Administrator" : "User"))),
    h("section", { class: "card", "aria-labelledby": "link-heading" },
      h("h2", { id: "link-heading" }, "Link Discord"),
      h("p", { class: "muted" }, "Talk to the same personas on Discord, with the same memories of you."),
      form)));
  return undefined;
}

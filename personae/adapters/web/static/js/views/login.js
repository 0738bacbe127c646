// Log in / sign up.

import { api } from "../api.js";
import { busy, errorBox, field, h, mount } from "../dom.js";
import { go } from "../router.js";
import { signedIn } from "../state.js";

export function loginView(main) {
  let mode = "login"; // or "signup"
  const card = h("section", { class: "auth-card card" });
  main.append(h("div", { class: "auth" }, card));

  const draw = () => {
    const signup = mode === "signup";
    const error = errorBox();
    const username = h("input", {
      name: "username", autocomplete: "username", required: true, maxlength: "64",
      autocapitalize: "none", spellcheck: "false",
    });
    const name = h("input", { name: "name", autocomplete: "nickname", maxlength: "100" });
    const password = h("input", {
      name: "password", type: "password", required: true,
      autocomplete: signup ? "new-password" : "current-password", minlength: signup ? "8" : "1",
    });
    const submit = h("button", { type: "submit", class: "primary wide" }, signup ? "Create account" : "Log in");
    const form = h(
      "form",
      { class: "stack", novalidate: false },
      field("User name", username, signup ? "Lower-case letters, digits, “.”, “_” and “-”." : null),
      signup && field("Display name (optional)", name, "What personas call you."),
      field("Password", password, signup ? "At least 8 characters." : null),
      error,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.clear();
      const body = { username: username.value.trim().toLowerCase(), password: password.value };
      if (signup && name.value.trim()) body.name = name.value.trim();
      try {
        const account = await busy(submit, () => api.post(signup ? "/api/auth/signup" : "/api/auth/login", body));
        signedIn(account);
        const { enterApp } = await import("../app.js");
        await enterApp();
        go("/chat");
      } catch (failure) {
        error.show(failure.message);
        password.select();
      }
    });
    const other = h(
      "button",
      { type: "button", class: "link", onclick: () => { mode = signup ? "login" : "signup"; draw(); } },
      signup ? "I already have an account — log in" : "New here? Create an account",
    );
    mount(
      card,
      h("div", { class: "auth-brand", "aria-hidden": "true" }, h("span", { class: "brand-mark large" }, "p")),
      h("h1", {}, signup ? "Create your account" : "Log in to personae"),
      h("p", { class: "muted" }, signup
        ? "Personas remember what you tell them — only for you."
        : "Chat with personas that remember you."),
      form,
      h("p", { class: "switch" }, other),
    );
    username.focus();
  };
  draw();
}

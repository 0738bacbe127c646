// Small DOM helpers. Everything that comes from the API is inserted as text
// (textContent / attributes), never as HTML.

/**
 * Create an element: h("button", {class: "primary", onclick: fn}, "Save").
 * Attributes starting with "on" become listeners; `false`/`null` skip the
 * attribute; children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (key in element && typeof value !== "string") {
      element[key] = value; // properties such as `checked`, `value`, `disabled`
    } else {
      element.setAttribute(key, value === true ? "" : value);
    }
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `element`. */
export function mount(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let unique = 0;
/** A page-unique id for label/aria wiring. */
export const uid = (prefix = "id") => `${prefix}-${++unique}`;

/** A labelled form field: label, control, optional hint (wired with aria-describedby). */
export function field(label, control, hint = null) {
  control.id ||= uid("field");
  const children = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    children.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, children);
}

/** Fill a card's {{char}} / {{user}} placeholders for display. */
export function fillNames(text, { char = "", user = "you" } = {}) {
  return String(text || "")
    .replace(/\{\{char\}\}/gi, char)
    .replace(/\{\{user\}\}/gi, user);
}

/** A persona's picture, or its initial on a coloured disc. */
export function avatar(persona, size = "md") {
  if (persona?.avatar_url) {
    return h("img", { class: `avatar ${size}`, src: persona.avatar_url, alt: "", loading: "lazy" });
  }
  const initial = (persona?.name || "?").trim().charAt(0).toUpperCase() || "?";
  const hue = [...(persona?.id || "")].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 360;
  const disc = h("span", { class: `avatar ${size} initial`, "aria-hidden": "true" }, initial);
  disc.style.setProperty("--hue", String(hue)); // CSSOM is allowed by the page's CSP
  return disc;
}

/**
 * A modal <dialog> asking to confirm something. `body` is text or nodes.
 * Resolves true when confirmed, false when cancelled (Esc included).
 */
export function confirmDialog({ title, body, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId }, title),
        h("div", { class: "dialog-body" }, body),
        h(
          "div",
          { class: "actions" },
          h("button", { value: "cancel", class: "ghost", autofocus: true }, "Cancel"),
          h("button", { value: "ok", class: danger ? "danger" : "primary" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A short notice in the corner; `action` = {label, onclick} adds a button. */
export function toast(message, { action = null, kind = "info", timeout = 6000 } = {}) {
  const region = document.querySelector(".toasts");
  const close = () => item.remove();
  const item = h(
    "div",
    { class: `toast ${kind}` },
    h("p", {}, message),
    action &&
      h("button", { type: "button", class: "small", onclick: () => { close(); action.onclick(); } }, action.label),
    h("button", { type: "button", class: "ghost small", "aria-label": "Dismiss", onclick: close }, "×"),
  );
  region.append(item);
  if (timeout) setTimeout(close, timeout);
  return item;
}

/** An alert paragraph for errors; `.show(message)` / `.clear()`. */
export function errorBox() {
  const box = h("p", { class: "error", role: "alert", hidden: true });
  box.show = (message) => {
    box.textContent = message;
    box.hidden = false;
  };
  box.clear = () => {
    box.textContent = "";
    box.hidden = true;
  };
  return box;
}

/** Disable a button while `work` runs; returns work's result. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// The sub-navigation shared by the settings pages.

import { h } from "../dom.js";

const PAGES = [
  ["/settings/personas", "Personas"],
  ["/settings/account", "Account & linking"],
];

export function settingsHeader(active) {
  return [
    h("h1", {}, "Settings"),
    h("nav", { class: "tabs", "aria-label": "Settings sections" },
      PAGES.map(([path, label]) =>
        h("a", { href: `#${path}`, "aria-current": path === active ? "page" : false }, label))),
  ];
}

// A tiny hash router: "#/settings/personas" -> the view registered for it.
// A view is `render(main, params) -> cleanup function | undefined`.

const routes = [];
let cleanup = null;
let guard = () => null;

/** Register a view for a pattern such as "/chat" or "/settings/personas". */
export function route(pattern, view) {
  routes.push({ pattern, view });
}

/** `check(path)` may return another path to go to instead (e.g. the login page). */
export function setGuard(check) {
  guard = check;
}

export function go(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = path;
}

export const currentPath = () => location.hash.replace(/^#/, "") || "/chat";

export async function render() {
  const path = currentPath();
  const redirect = guard(path);
  if (redirect && redirect !== path) {
    location.replace(`#${redirect}`);
    return;
  }
  const match = routes.find((r) => r.pattern === path) || routes.find((r) => r.pattern === "*");
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.getElementById("main");
  main.replaceChildren();
  document.dispatchEvent(new CustomEvent("personae:navigate", { detail: path }));
  cleanup = (await match.view(main, path)) || null;
  // Move focus to the new page's heading so keyboard and screen-reader users follow along.
  // (Unless the view already put focus somewhere inside the page, e.g. a form field.)
  const heading = main.querySelector("h1");
  if (heading && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

export function start() {
  window.addEventListener("hashchange", render);
  return render();
}

// Entry point: load the session, wire the header, register the views, start
// the router and the event stream (follow-up questions).

import { api } from "./api.js";
import { toast } from "./dom.js";
import { go, route, setGuard, start } from "./router.js";
import { openEvents } from "./sse.js";
import { loadMe, loadPersonas, personaById, session, setCurrentPersona, signedOut } from "./state.js";
import { accountView } from "./views/account.js";
import { chatView } from "./views/chat.js";
import { loginView } from "./views/login.js";
import { memoryView } from "./views/memory.js";
import { personasView } from "./views/personas.js";

const topbar = document.querySelector(".topbar");
let closeEvents = null;

route("/login", loginView);
route("/chat", chatView);
route("/memory", memoryView);
route("/settings/personas", personasView);
route("/settings/account", accountView);
route("*", (main) => {
  go(session.me ? "/chat" : "/login");
});

// Signed out: everything but the login page leads to it; signed in: the login page leads to chat.
setGuard((path) => {
  if (!session.me) return path === "/login" ? null : "/login";
  return path === "/login" ? "/chat" : null;
});

/** Called by the login view (and at start) once the account is known. */
export async function enterApp() {
  await loadPersonas();
  topbar.hidden = false;
  closeEvents?.();
  closeEvents = openEvents({ follow_up: onFollowUp });
}

function onFollowUp(data) {
  // The chat view shows it inline when it is showing that persona; otherwise a toast.
  const event = new CustomEvent("personae:follow-up", { detail: data, cancelable: true });
  if (!window.dispatchEvent(event)) return;
  const persona = personaById(data.persona_id);
  const who = persona ? persona.name : "A persona";
  toast(`${who} asks: ${data.text}`, {
    timeout: 15000,
    action: { label: "Open chat", onclick: () => openChatWith(data.persona_id) },
  });
}

async function openChatWith(personaId) {
  await setCurrentPersona(personaId);
  go("/chat");
}

async function logout() {
  try {
    await api.post("/api/auth/logout");
  } finally {
    leaveApp();
  }
}

function leaveApp() {
  closeEvents?.();
  closeEvents = null;
  signedOut();
  topbar.hidden = true;
  go("/login");
}

topbar.querySelector(".logout").addEventListener("click", logout);
window.addEventListener("personae:unauthorized", () => {
  if (session.me) {
    leaveApp();
    toast("Your session has ended. Please log in again.", { kind: "error" });
  }
});

// Mark the current section in the main navigation.
document.addEventListener("personae:navigate", (event) => {
  const section = event.detail.split("/")[1];
  for (const link of topbar.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
});

async function boot() {
  try {
    if (await loadMe()) await enterApp();
  } catch (error) {
    document.getElementById("main").textContent = error.message;
    return;
  }
  await start();
}

boot();

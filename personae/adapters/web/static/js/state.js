// The signed-in session shared by the views: the account and the personas it
// may use, reloaded from the API when something changes.

import { api, setCsrf } from "./api.js";

export const session = {
  me: null, // {id, username, name, is_admin, current_persona}
  personas: [], // as GET /api/personas answers, system personas first
};

/** Load the account; null when not logged in. */
export async function loadMe() {
  try {
    session.me = await api.get("/api/me");
  } catch (error) {
    if (error.status === 401) {
      session.me = null;
      return null;
    }
    throw error;
  }
  setCsrf(session.me.csrf_token);
  return session.me;
}

/** Remember the account from a login or sign-up answer. */
export function signedIn(account) {
  session.me = account;
  setCsrf(account.csrf_token);
}

export function signedOut() {
  session.me = null;
  session.personas = [];
  setCsrf(null);
}

export async function loadPersonas() {
  const { personas } = await api.get("/api/personas");
  session.personas = personas;
  return personas;
}

export const personaById = (id) => session.personas.find((p) => p.id === id) || null;

/** The persona the user talks to: their choice, else the first available. */
export function currentPersona() {
  return personaById(session.me?.current_persona) || session.personas[0] || null;
}

export async function setCurrentPersona(personaId) {
  session.me = { ...session.me, ...(await api.put("/api/me/current-persona", { persona_id: personaId })) };
  return currentPersona();
}

/** The name used for {{user}} in cards. */
export const userName = () => session.me?.name || session.me?.username || "you";

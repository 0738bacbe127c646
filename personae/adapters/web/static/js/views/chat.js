// Chat with the current persona: history on open, streamed replies, a persona
// switcher, readable errors, play buttons when voice is available, and
// follow-up questions as they arrive.

import { api, seg } from "../api.js";
import { avatar, confirmDialog, errorBox, h, mount } from "../dom.js";
import { postStream } from "../sse.js";
import { currentPersona, loadMe, loadPersonas, session, setCurrentPersona } from "../state.js";
import { loadVoices, playButton, stopAudio } from "../voice.js";

const CONVERSATION = "default";
const PAGE = 50;

export async function chatView(main) {
  await Promise.all([loadPersonas(), loadMe()]).catch(() => {}); // errors show when loading history
  let persona = currentPersona();
  if (!persona) {
    main.append(h("section", { class: "page narrow" }, h("h1", {}, "Chat"),
      h("p", {}, "There is no persona to talk to yet. "),
      h("a", { href: "#/settings/personas", class: "button primary" }, "Create a persona")));
    return undefined;
  }
  const voices = await loadVoices();
  // A reply being streamed is not aborted when the user leaves the page or
  // switches persona: it finishes and is stored (an aborted turn stores nothing).
  let streaming = false;
  let oldest = null;

  const error = errorBox();
  const log = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  const older = h("button", { type: "button", class: "ghost small older", hidden: true }, "Load earlier messages");
  const switcher = h("select", { id: "persona-switch", class: "persona-switch" });
  const face = h("span", { class: "chat-face" });
  const title = h("h1", { class: "visually-hidden" });
  const message = h("textarea", {
    id: "message", name: "message", rows: "1", required: true, maxlength: "16000",
    autocomplete: "off", enterkeyhint: "send",
  });
  const send = h("button", { type: "submit", class: "primary send" }, "Send");
  const form = h("form", { class: "composer" },
    h("label", { for: "message", class: "visually-hidden" }, "Message"), message, send);
  const clear = h("button", { type: "button", class: "ghost small" }, "Clear chat");

  main.append(h("section", { class: "chat" },
    title,
    h("header", { class: "chat-head" }, face,
      h("div", { class: "switch-wrap" }, h("label", { for: "persona-switch" }, "Talking to"), switcher),
      clear),
    h("div", { class: "scroller" }, older, log),
    error,
    form));

  const scrollDown = () => {
    const scroller = log.parentElement;
    scroller.scrollTop = scroller.scrollHeight;
  };

  /** One message bubble; `role` is user, assistant or follow-up. */
  const bubble = (role, text, { id = null, note = null } = {}) => {
    const who = role === "user" ? "You" : persona.name;
    const body = h("p", { class: "text" }, text);
    const tools = h("div", { class: "tools" });
    const node = h("article", { class: `msg ${role}`, dataset: { id: id ?? "" } },
      h("div", { class: "who" }, who, note && h("span", { class: "note" }, ` · ${note}`)), body, tools);
    node.body = body;
    node.setId = (messageId) => {
      node.dataset.id = messageId;
      if (voices && role === "assistant" && messageId) {
        const url = `/api/personas/${seg(persona.id)}/messages/${seg(messageId)}/audio`;
        tools.replaceChildren(playButton(h, url, { label: `Play this reply from ${persona.name}`, onError: error.show }));
      }
    };
    if (id) node.setId(id);
    return node;
  };

  const fillSwitcher = () => {
    mount(switcher, session.personas.map((p) =>
      h("option", { value: p.id, selected: p.id === persona.id }, p.name)));
    mount(face, avatar(persona, "md"));
    title.textContent = `Chat with ${persona.name}`;
    message.placeholder = `Message ${persona.name}…`;
    log.setAttribute("aria-label", `Conversation with ${persona.name}`);
  };

  const messagesUrl = () => `/api/personas/${seg(persona.id)}/conversations/${CONVERSATION}/messages`;

  const greetingUrl = () => `/api/personas/${seg(persona.id)}/conversations/${CONVERSATION}/greeting`;
  let greetingNumber = 0;

  // Before the first reply, the greeting can be swapped for one of the card's alternate greetings.
  const addGreetingSwap = (node) => {
    const total = 1 + (persona.alternate_greetings || []).length;
    if (total < 2) return;
    const swap = h("button", { type: "button", class: "ghost small greeting-swap" }, "Another greeting");
    swap.addEventListener("click", async () => {
      error.clear();
      try {
        const started = await api.post(greetingUrl(), { greeting: (greetingNumber + 1) % total, replace: true });
        if (!started) return;
        greetingNumber = started.greeting;
        node.body.textContent = started.message.content;
      } catch (failure) {
        error.show(failure.message);
      }
    });
    node.querySelector(".tools").append(swap);
  };

  const loadHistory = async () => {
    error.clear();
    log.replaceChildren();
    oldest = null;
    try {
      const page = await api.get(`${messagesUrl()}?limit=${PAGE}`);
      if (!page.messages.length) {
        // The greeting is stored as the conversation's first message, so the model sees it too.
        const started = await api.post(greetingUrl(), {});
        if (started) {
          greetingNumber = started.greeting;
          page.messages.push(started.message);
        }
      }
      page.messages.forEach((m, index) => {
        const first = index === 0 && !page.next_before && m.role === "assistant";
        const node = bubble(m.role === "user" ? "user" : "assistant", m.content, { id: m.id, note: first ? "greeting" : null });
        if (first && page.messages.length === 1) addGreetingSwap(node);
        log.append(node);
      });
      oldest = page.next_before;
      older.hidden = !oldest;
      await showPendingFollowUps();
    } catch (failure) {
      error.show(failure.message);
    }
    scrollDown();
  };

  older.addEventListener("click", async () => {
    try {
      const page = await api.get(`${messagesUrl()}?limit=${PAGE}&before=${oldest}`);
      log.prepend(...page.messages.map((m) => bubble(m.role === "user" ? "user" : "assistant", m.content, { id: m.id })));
      oldest = page.next_before;
      older.hidden = !oldest;
    } catch (failure) {
      error.show(failure.message);
    }
  });

  // Follow-ups that were due while no event stream was open are fetched and acknowledged.
  const showPendingFollowUps = async () => {
    const { follow_ups: pending } = await api.get("/api/followups");
    const now = Date.now();
    for (const item of pending) {
      if (item.persona_id !== persona.id || Date.parse(item.due_at) > now) continue;
      log.append(bubble("follow-up", item.question, { note: "asked while you were away" }));
      await api.post(`/api/followups/${item.id}/ack`).catch(() => {});
    }
  };

  const onFollowUp = (event) => {
    if (event.detail.persona_id !== persona.id) return; // the app shows a toast instead
    event.preventDefault();
    log.append(bubble("follow-up", event.detail.text, { note: "follow-up question" }));
    scrollDown();
  };
  window.addEventListener("personae:follow-up", onFollowUp);

  const sendMessage = async () => {
    const text = message.value.trim();
    if (!text || streaming) return;
    error.clear();
    message.value = "";
    autosize();
    const mine = bubble("user", text);
    const reply = bubble("assistant", "");
    reply.setAttribute("aria-busy", "true"); // announced once complete
    reply.classList.add("streaming");
    log.append(mine, reply);
    scrollDown();
    streaming = true;
    send.disabled = true;
    try {
      const done = await postStream(`/api/personas/${seg(persona.id)}/chat`,
        { message: text, conversation: CONVERSATION },
        {
          onChunk: (chunk) => {
            reply.body.textContent += chunk;
            scrollDown();
          },
        });
      reply.body.textContent = done.text;
      log.querySelector(".greeting-swap")?.remove();
      mine.dataset.id = done.user_message_id;
      reply.setId(done.reply_message_id);
    } catch (failure) {
      reply.remove();
      mine.classList.add("failed");
      mine.append(h("p", { class: "failed-note" }, "Not sent — nothing was saved."));
      error.show(failure.message);
      message.value = text; // keep the words so the user can try again
      autosize();
    } finally {
      reply.removeAttribute("aria-busy");
      reply.classList.remove("streaming");
      streaming = false;
      send.disabled = false;
      scrollDown();
    }
  };

  // The textarea grows with its content up to a few lines.
  const autosize = () => {
    message.style.height = "auto";
    message.style.height = `${Math.min(message.scrollHeight, 160)}px`;
  };
  message.addEventListener("input", autosize);
  message.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter starts a new line.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });

  switcher.addEventListener("change", async () => {
    try {
      persona = await setCurrentPersona(switcher.value);
    } catch (failure) {
      error.show(failure.message);
      return;
    }
    fillSwitcher();
    await loadHistory();
  });

  clear.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: `Clear your chat with ${persona.name}?`,
      body: h("p", {}, "The messages of this conversation are deleted. What the persona has learned about you stays (see Memory)."),
      confirmLabel: "Clear chat",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.del(`/api/personas/${seg(persona.id)}/conversations/${CONVERSATION}`);
      await loadHistory();
    } catch (failure) {
      error.show(failure.message);
    }
  });

  fillSwitcher();
  await loadHistory();
  message.focus();

  return () => {
    stopAudio();
    window.removeEventListener("personae:follow-up", onFollowUp);
  };
}

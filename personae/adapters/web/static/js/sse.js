// Server-Sent Events: streamed chat replies (POST, so fetch + ReadableStream
// rather than EventSource) and the long-lived /api/events stream.

import { ApiError, csrf, errorFrom } from "./api.js";

/** Split a buffer into complete SSE blocks; returns [events, rest]. */
export function parseEvents(buffer) {
  const events = [];
  const text = buffer.replace(/\r\n?/g, "\n");
  const blocks = text.split("\n\n");
  const rest = blocks.pop(); // the last piece is incomplete until its blank line arrives
  for (const block of blocks) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) events.push({ event: name, data: data.join("\n") });
  }
  return [events, rest];
}

/**
 * POST `body` to a chat endpoint and stream the reply: `onChunk(text)` for
 * every `chunk` event; resolves with the `done` event's data; rejects with an
 * ApiError for a problem answer, an `error` event or a cut connection.
 */
export async function postStream(path, body, { onChunk, signal } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  if (csrf()) headers["X-CSRF-Token"] = csrf();
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers,
      body: JSON.stringify({ ...body, stream: true }),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, null);
  }
  if (!response.ok) throw await errorFrom(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (error) {
      if (error.name === "AbortError") throw error;
      break;
    }
    if (step.done) break;
    buffer += step.value;
    const [events, rest] = parseEvents(buffer);
    buffer = rest;
    for (const { event, data } of events) {
      const payload = JSON.parse(data);
      if (event === "chunk") onChunk?.(payload.text);
      else if (event === "done") return payload;
      else if (event === "error") throw new ApiError(payload.status || 500, payload);
    }
  }
  throw new ApiError(0, {
    title: "Connection lost",
    detail: "The reply stopped before it was complete and nothing was saved. Try again.",
  });
}

/**
 * Listen to /api/events. `handlers` maps event names (`follow_up`, `ready`,
 * `shutdown`) to callbacks taking the parsed data. Returns a function that
 * closes the stream. EventSource reconnects by itself after network errors.
 */
export function openEvents(handlers) {
  const source = new EventSource("/api/events");
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      try {
        handler(JSON.parse(event.data));
      } catch (error) {
        console.warn("personae: bad event", name, error);
      }
    });
  }
  return () => source.close();
}

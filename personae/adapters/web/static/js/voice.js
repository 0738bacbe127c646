// Voice: the voice list (absent when the server has no voice support) and
// audio playback. Audio is fetched with an Accept header and played through
// the Web Audio API: the page's Content-Security-Policy does not allow blob:
// media sources.

import { api, errorFrom, ApiError } from "./api.js";

let voicesPromise = null;
let context = null;
let playing = null;

/** {voices, default} from GET /api/voices, or null when voice is not available (404). */
export function loadVoices() {
  voicesPromise ||= api.get("/api/voices").catch((error) => {
    if (error.status !== 404) console.warn("personae: voices unavailable:", error.message);
    return null;
  });
  return voicesPromise;
}

/** Stop whatever is playing. */
export function stopAudio() {
  if (playing) {
    playing.onended = null;
    try {
      playing.stop();
    } catch {
      /* already stopped */
    }
    playing = null;
  }
}

/** Fetch audio from `url` and play it; resolves when playback ends. */
export async function playUrl(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "audio/ogg, audio/wav" }, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) throw await errorFrom(response);
  const data = await response.arrayBuffer();
  context ||= new AudioContext();
  if (context.state === "suspended") await context.resume();
  const buffer = await context.decodeAudioData(data);
  stopAudio();
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  playing = source;
  return new Promise((resolve) => {
    source.onended = () => {
      if (playing === source) playing = null;
      resolve();
    };
    source.start();
  });
}

/** A "Play" button for `url` that shows its state and reports errors via `onError`. */
export function playButton(h, url, { label = "Play", onError } = {}) {
  const button = h("button", { type: "button", class: "ghost small play", "aria-label": label }, "▶ Play");
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "♪ Playing…";
    try {
      await playUrl(url);
    } catch (error) {
      onError?.(error.message || "The audio could not be played.");
    } finally {
      button.disabled = false;
      button.textContent = "▶ Play";
    }
  });
  return button;
}

// HTTP client for the personae API: JSON in and out, the CSRF header on every
// state-changing request, and problem documents (RFC 9457) turned into
// messages a person can act on.

let csrfToken = null;

/** Remember the CSRF token from /api/me, login or sign-up. */
export function setCsrf(token) {
  csrfToken = token || null;
}

export function csrf() {
  return csrfToken;
}

/** An API failure; `message` is written for the user, `problem` is the raw document. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter = null) {
    super(readableMessage(status, problem, retryAfter));
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

/** The sentence shown for a failed request. */
export function readableMessage(status, problem, retryAfter) {
  const title = problem?.title || "";
  const detail = problem?.detail || "";
  if (status === 0) {
    return detail || "The personae server could not be reached. Check your connection and try again.";
  }
  if (status === 429) {
    const wait = Number(retryAfter) > 0 ? ` Try again in ${Number(retryAfter)} seconds.` : " Wait a moment and try again.";
    return `You are sending messages too fast.${wait}`;
  }
  if (status === 503 && /language model|model not installed/i.test(title)) {
    return `The language model is not available right now (is Ollama running?). ${detail}`.trim();
  }
  if (status === 504) return "The language model took too long to answer. Try again in a moment.";
  if (status === 502) return `The language model failed while answering. ${detail}`.trim();
  if (status === 413) return detail || "That is too large to send.";
  if (status === 422 && Array.isArray(problem?.errors) && problem.errors.length) {
    const first = problem.errors[0];
    const field = (first.loc || []).filter((part) => part !== "body").join(".");
    return `${title || "Invalid input"}: ${field ? field + " — " : ""}${first.msg}`;
  }
  if (title && detail) return `${title}. ${detail}`;
  return title || detail || `The request failed (HTTP ${status}).`;
}

/** Build an ApiError from a failed fetch Response. */
export async function errorFrom(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    problem = { title: response.statusText };
  }
  const error = new ApiError(response.status, problem, response.headers.get("Retry-After"));
  if (response.status === 401 && !new URL(response.url).pathname.startsWith("/api/auth/")) {
    // The session ended (expired, logged out elsewhere): the app goes to the login page.
    window.dispatchEvent(new CustomEvent("personae:unauthorized"));
  }
  return error;
}

/**
 * One API call. Options: `json` (a body to send as JSON), `body` (FormData,
 * Blob ...), `headers`, `raw` (return the Response instead of parsed JSON).
 */
export async function request(method, path, { json, body, headers, raw = false } = {}) {
  const sent = new Headers(headers || {});
  if (!["GET", "HEAD"].includes(method) && csrfToken) sent.set("X-CSRF-Token", csrfToken);
  if (!sent.has("Accept")) sent.set("Accept", "application/json");
  let payload = body;
  if (json !== undefined) {
    sent.set("Content-Type", "application/json");
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) throw await errorFrom(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, json, options = {}) => request("POST", path, { ...options, json }),
  put: (path, json, options = {}) => request("PUT", path, { ...options, json }),
  patch: (path, json, options = {}) => request("PATCH", path, { ...options, json }),
  del: (path, options) => request("DELETE", path, options),
  /** Upload one file as multipart field `file`. */
  upload: (method, path, file) => {
    const form = new FormData();
    form.append("file", file);
    return request(method, path, { body: form });
  },
};

/** Encode one path segment (persona ids, conversation names). */
export const seg = (value) => encodeURIComponent(String(value));

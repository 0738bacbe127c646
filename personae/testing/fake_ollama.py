"""A loopback fake Ollama server speaking Ollama's real HTTP protocol.

Use it in tests and benchmarks instead of a real Ollama::

    async with FakeOllama() as fake:
        fake.reply_with("Hello there")
        backend = OllamaBackend(OllamaSettings(host=fake.url))
        ...
        assert fake.requests[-1].json["options"]["num_ctx"] == 8192

It answers ``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/tags``,
``/api/show``, ``/api/ps``, ``/api/pull``, ``/api/version`` and ``/``; replies are
scripted (:meth:`FakeOllama.reply_with`, :meth:`FakeOllama.enqueue`) and failures can
be injected per test (:meth:`FakeOllama.fail_next`, :attr:`FakeOllama.delay`,
:attr:`FakeOllama.drop_after_chunks`, :meth:`FakeOllama.garbage_next`,
:attr:`FakeOllama.error_mid_stream_after`). It listens on 127.0.0.1 only and
stops by itself after ``lifetime`` seconds. Only aiohttp is needed.

**The model behaves like Ollama's** (read from Ollama's source; details in
:mod:`~personae.testing.fake_ollama_model` and :mod:`~personae.testing.fake_tokenizer`):

- Tokens: :func:`count_tokens` and :func:`tokenize` count like a BPE tokenizer
  (about four characters a token in English, more for other scripts); a chat is
  rendered through Llama 3's template (:func:`render_chat`, :func:`chat_tokens`).
- The window: ``num_ctx`` is ``options.num_ctx``, else the model's own
  (``configure_model(name, num_ctx=...)``), else :attr:`FakeOllama.default_num_ctx`
  (4096, Ollama's default), at most the model's ``context_length``. A prompt over it
  loses its oldest non-system messages; if the system messages and the last message
  alone overflow, the runner keeps the first ``num_keep`` tokens (4, plus BOS) and
  the end, freeing half the window. ``"truncate": false`` gets a 400 instead.
- The KV prefix cache: each loaded model keeps the tokens of its last request (and
  reply) per slot (:attr:`FakeOllama.num_parallel`); a request evaluates only what
  follows the longest common prefix. Changing ``num_ctx`` reloads the model, cache
  cold; a request for another model unloads the least recently used one past
  :attr:`FakeOllama.max_loaded_models` (3); ``keep_alive`` 0 unloads after the reply.
- The final line reports what Ollama reports: ``prompt_eval_count`` (every prompt
  token, cached or not, as Ollama counts them), ``prompt_eval_duration`` (the
  evaluated tokens only), ``eval_count``, ``eval_duration``, ``load_duration``
  (larger on a (re)load), ``total_duration`` and ``done_reason`` (``"length"`` when
  ``options.num_predict`` cut the reply, else ``"stop"``). Ollama's API has no
  field for the cached tokens, so neither has the fake's answer: tests and benches
  read them from the record, :attr:`RecordedRequest.cached_tokens`.
- Time: :attr:`FakeOllama.load_seconds`, :attr:`FakeOllama.seconds_per_prompt_token`
  and :attr:`FakeOllama.seconds_per_generated_token` (all 0 by default) make the fake
  take that long, and report it.
- Records: every chat/generate request the model answered has an
  :class:`Evaluation` (``fake.requests[i].evaluation``): ``num_ctx``,
  ``seen_messages``, ``tokens``, ``prompt_tokens``, ``cached_tokens``,
  ``evaluated_tokens``, ``truncated``, ``reloaded``, ``generated_tokens``,
  ``done_reason``; :meth:`FakeOllama.overflowing_requests` lists the ones that did
  not fit. A responder sees :attr:`FakeChatRequest.seen_messages` too.
- ``/api/show`` reports ``model_info["<architecture>.context_length"]`` and
  ``capabilities`` per model (:meth:`FakeOllama.configure_model`); ``/api/ps`` the
  loaded models with their ``context_length`` (the ``num_ctx`` they run with).

Not modelled: images, tools, thinking output, the context shift while generating
past the window, queueing of concurrent requests (they are served at once, sharing
the cache slots in arrival order).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from aiohttp import web

from personae.testing.fake_ollama_model import (
    DEFAULT_NUM_CTX,
    TOO_LONG,
    Evaluation,
    LoadedModel,
    ModelSpec,
    PromptTooLong,
    cut_reply,
    unloads,
)
from personae.testing.fake_ollama_records import (
    DEFAULT_MODELS,
    EMBED_DIM,
    FakeChatRequest,
    RecordedRequest,
    Reply,
    Responder,
    echo_responder,
    fake_embedding,
    normalize_model_name,
    split_words,
)
from personae.testing.fake_ollama_runner import ModelRunner
from personae.testing.fake_tokenizer import chat_tokens, count_tokens, render_chat, tokenize
from personae.testing.loopback import LoopbackServer

__all__ = [
    "DEFAULT_NUM_CTX",
    "Evaluation",
    "FakeChatRequest",
    "FakeOllama",
    "LoadedModel",
    "ModelSpec",
    "RecordedRequest",
    "Reply",
    "Responder",
    "chat_tokens",
    "count_tokens",
    "echo_responder",
    "fake_embedding",
    "normalize_model_name",
    "render_chat",
    "split_words",
    "tokenize",
]


@dataclass(frozen=True, slots=True)
class _Failure:
    """An injected failure, waiting for the next request (to ``path``, if set)."""

    status: int
    error: str
    path: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class FakeOllama(ModelRunner, LoopbackServer):
    """A scriptable Ollama on ``127.0.0.1`` and a free port; see the module docstring.

    Attributes tests may set at any time:

    - ``models``: installed model names (``/api/tags``; unknown models get a 404).
    - ``delay``: seconds to wait before the first byte of every ``/api`` answer.
    - ``chunk_delay``: seconds between streamed lines.
    - ``drop_after_chunks``: stream that many chunks, then abort the connection
      (non-streaming requests are aborted before any answer).
    - ``error_mid_stream_after``: stream that many chunks, then an ``{"error": ...}``
      line (``mid_stream_error``) like Ollama does when the runner fails.
    - ``pullable``: names ``/api/pull`` can fetch; None (default) means any name.
    - ``embed_dim``: length of the vectors ``/api/embed`` returns.
    - ``default_num_ctx``: the window when neither the request nor the model sets
      one (4096); ``max_loaded_models`` (3); ``num_parallel``: KV cache slots per
      loaded model (1).
    - ``load_seconds``, ``seconds_per_prompt_token``, ``seconds_per_generated_token``:
      how long a load, each evaluated prompt token and each generated token take
      (0: instant, and nominal durations are reported).
    - ``specs``: per model :class:`ModelSpec` (set through :meth:`configure_model`).
    """

    name = "FakeOllama"

    def __init__(
        self, models: Sequence[str] | None = None, *, port: int = 0, lifetime: float = 900.0
    ) -> None:
        """``models`` replaces the default installed models; ``port`` 0 picks a free
        one; after ``lifetime`` seconds it stops by itself."""
        LoopbackServer.__init__(self, lifetime=lifetime, port=port)
        self.init_models(DEFAULT_MODELS if models is None else models)
        self.requests: list[RecordedRequest] = []
        self.delay: float = 0.0
        self.chunk_delay: float = 0.0
        self.drop_after_chunks: int | None = None
        self.error_mid_stream_after: int | None = None
        self.mid_stream_error = "an error was encountered while running the model: unexpected EOF"
        self.pullable: list[str] | None = None
        self.embed_dim = EMBED_DIM
        self.version = "0.6.3"
        self._responder: Responder = echo_responder
        self._queue: deque[Reply | Responder] = deque()
        self._failures: deque[_Failure] = deque()
        self._garbage = 0

    # -- lifecycle -------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        for path, handler in [("/", self._root), ("/api/version", self._version)]:
            app.router.add_get(path, handler)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)
        for path in ("/api/chat", "/api/generate"):
            app.router.add_post(path, self._completion)
        app.router.add_post("/api/show", self._show)
        app.router.add_post("/api/embed", self._embed)
        app.router.add_post("/api/pull", self._pull)
        return app

    # -- scripting -------------------------------------------------------------------

    def reply_with(self, reply: Reply | Responder) -> None:
        """Answer every later chat with ``reply`` (a string, a list of chunks, or a
        callable taking a :class:`FakeChatRequest`)."""
        self._responder = reply if callable(reply) else (lambda _request: reply)

    def enqueue(self, *replies: Reply | Responder) -> None:
        """Queue one-shot replies, used (in order) before the ``reply_with`` responder."""
        self._queue.extend(replies)

    def fail_next(
        self, status: int = 500, error: str = "internal error", *, path: str | None = None
    ) -> None:
        """Answer the next ``/api`` request (or the next one to ``path``) with HTTP
        ``status`` and ``{"error": error}``. Calls queue up."""
        self._failures.append(_Failure(status, error, path))

    def garbage_next(self) -> None:
        """Answer the next chat/generate request with malformed JSON (NDJSON if streamed)."""
        self._garbage += 1

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to ``path`` (e.g. ``"/api/chat"``)."""
        return [r for r in self.requests if r.path == path]

    def evaluated_requests(self) -> list[RecordedRequest]:
        """The chat/generate requests the model evaluated, in order."""
        return [r for r in self.requests if r.evaluation is not None]

    def overflowing_requests(self) -> list[RecordedRequest]:
        """The evaluated requests that did not fit ``num_ctx``: the model saw less
        than was sent (Ollama dropped messages or cut tokens)."""
        return [r for r in self.evaluated_requests() if r.truncated]

    # -- helpers ---------------------------------------------------------------------

    async def _begin(
        self, request: web.Request, *, needs_model: bool = True
    ) -> tuple[dict[str, Any], web.Response | None]:
        """Record the request, wait ``delay``, apply injected failures and check the
        model. Returns the JSON body and, when the request must fail, the answer."""
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        request["record"] = RecordedRequest(request.method, request.path, body, peer)
        self.requests.append(request["record"])
        if self.delay:
            await asyncio.sleep(self.delay)
        for failure in self._failures:
            if failure.path in (None, request.path):
                self._failures.remove(failure)
                return {}, _error(failure.status, failure.error)
        if request.method != "POST":
            return {}, None
        if not isinstance(body, dict):
            return {}, _error(400, "invalid request body")
        model = str(body.get("model") or "")
        if needs_model and not model:
            return body, _error(400, "model is required")
        if needs_model and not self.has_model(model):
            return body, _error(404, f'model "{model}" not found, try pulling it first')
        return body, None

    async def _reply_chunks(self, chat: FakeChatRequest) -> list[str]:
        """The next queued reply, else the responder's, as a list of chunks."""
        source: Reply | Responder = self._queue.popleft() if self._queue else self._responder
        reply = source(chat) if callable(source) else source
        if inspect.isawaitable(reply):
            reply = await reply
        return split_words(reply) if isinstance(reply, str) else [str(c) for c in reply]

    async def _ndjson(self, request: web.Request) -> web.StreamResponse:
        """Start a streamed ``application/x-ndjson`` answer."""
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        return response

    async def _send(self, response: web.StreamResponse, line: dict[str, Any]) -> None:
        """Write one NDJSON line, after ``chunk_delay``."""
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay)
        await response.write(json.dumps(line).encode() + b"\n")

    async def _abort(self, request: web.Request) -> NoReturn:
        """Cut the TCP connection abruptly, without the final line."""
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # end the handler without writing anything more

    async def _answer(
        self,
        request: web.Request,
        chat: FakeChatRequest,
        wrap: Callable[[str], dict[str, Any]],
        *,
        truncate: bool = True,
    ) -> web.StreamResponse:
        """Send a chat/generate answer, streamed or whole, honouring the failure modes."""
        base = {"model": chat.model, "created_at": _now()}
        if self._garbage:
            self._garbage -= 1
            head = json.dumps({**base, **wrap(""), "done": False})
            text = f"{head}\n{head[: len(head) // 2]}\n" if chat.stream else "<html>not json"
            return web.Response(text=text, content_type="application/json")
        record: RecordedRequest = request["record"]
        try:
            evaluation, slot = await self._evaluate(record, chat, truncate)
        except PromptTooLong as error:
            return _error(400, str(error))
        chunks = await self._reply_chunks(replace(chat, seen_messages=evaluation.seen_messages))
        chunks, generated, done_reason = cut_reply(chunks, chat.options.get("num_predict"))
        slot.tokens += generated if done_reason == "stop" else generated[:-1]
        evaluation = replace(evaluation, generated_tokens=len(generated), done_reason=done_reason)
        record.evaluation = evaluation
        stats = self._stats(evaluation)
        if unloads(chat.keep_alive):
            self.unload(chat.model)
        drop, error_after = self.drop_after_chunks, self.error_mid_stream_after
        if not chat.stream:
            if drop is not None:
                await self._abort(request)
            if error_after is not None:
                return _error(500, self.mid_stream_error)
            await self._generate(len(generated))
            return web.json_response({**base, **wrap("".join(chunks)), **stats})
        response = await self._ndjson(request)
        for index, chunk in enumerate([*chunks, None]):
            if drop is not None and (index >= drop or chunk is None):
                await self._abort(request)
            if error_after is not None and (index >= error_after or chunk is None):
                await self._send(response, {"error": self.mid_stream_error})
                break
            if chunk is None:
                await self._send(response, {**base, **wrap(""), **stats})
            else:
                await self._generate(count_tokens(chunk))
                await self._send(response, {**base, **wrap(chunk), "done": False})
        await response.write_eof()
        return response

    # -- endpoints -------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        _, failure = await self._begin(request)
        return failure or web.json_response({"version": self.version})

    async def _tags(self, request: web.Request) -> web.Response:
        _, failure = await self._begin(request)
        return failure or web.json_response({"models": [self._model_entry(m) for m in self.models]})

    async def _show(self, request: web.Request) -> web.Response:
        body, failure = await self._begin(request)
        if failure:
            return failure
        spec, entry = self.spec(body["model"]), self._model_entry(body["model"])
        params = f"{'num_ctx':<30} {spec.num_ctx}" if spec.num_ctx else ""
        info: dict[str, Any] = {"license": "fake", "modelfile": f"FROM {entry['model']}\n"}
        info |= {"parameters": params, "template": "{{ .Prompt }}", "details": entry["details"]}
        model_info: dict[str, Any] = {"general.architecture": spec.architecture}
        model_info |= {f"{spec.architecture}.context_length": spec.context_length}
        info |= {"model_info": model_info, "capabilities": list(spec.capabilities)}
        return web.json_response(info | {"modified_at": entry["modified_at"]})

    async def _ps(self, request: web.Request) -> web.Response:
        """The loaded models, most recently used first, with their ``context_length``."""
        _, failure = await self._begin(request)
        if failure:
            return failure
        models = []
        for loaded in reversed(self.host.loaded.values()):
            entry = self._model_entry(loaded.name)
            entry = {k: entry[k] for k in ("name", "model", "size", "digest", "details")}
            expires = {"expires_at": "2099-01-01T00:00:00Z", "size_vram": 0}
            models.append(entry | expires | {"context_length": loaded.num_ctx})
        return web.json_response({"models": models})

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        """``/api/chat`` and ``/api/generate`` (whose prompt becomes one user message)."""
        body, failure = await self._begin(request)
        if failure:
            return failure
        chatting = request.path == "/api/chat"
        wrap: Callable[[str], dict[str, Any]] = (
            (lambda text: {"message": {"role": "assistant", "content": text}})
            if chatting
            else (lambda text: {"response": text})
        )
        if not (body.get("messages") if chatting else body.get("prompt")):
            return self._load_only(body, wrap)
        if chatting:
            messages = list(body.get("messages") or [])
        else:
            messages = [{"role": "system", "content": body["system"]}] if body.get("system") else []
            messages.append({"role": "user", "content": str(body.get("prompt") or "")})
        chat = FakeChatRequest(
            model=str(body["model"]),
            messages=messages,
            format=body.get("format"),
            options=dict(body.get("options") or {}),
            stream=body.get("stream", True) is not False,
            keep_alive=body.get("keep_alive"),
        )
        truncate = body.get("truncate", True) is not False
        return await self._answer(request, chat, wrap, truncate=truncate)

    def _load_only(
        self, body: dict[str, Any], wrap: Callable[[str], dict[str, Any]]
    ) -> web.Response:
        """A request without messages (or prompt) loads the model, or with
        ``keep_alive`` 0 unloads it, as Ollama does."""
        if unloads(body.get("keep_alive")):
            self.unload(str(body["model"]))
            reason = "unload"
        else:
            self._load(str(body["model"]), dict(body.get("options") or {}))
            reason = "load"
        line = {"model": body["model"], "created_at": _now(), **wrap("")}
        return web.json_response(line | {"done": True, "done_reason": reason})

    async def _embed(self, request: web.Request) -> web.Response:
        body, failure = await self._begin(request)
        if failure:
            return failure
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        loaded, reloaded = self._load(str(body["model"]), dict(body.get("options") or {}))
        tokens = [tokenize(t) for t in texts]
        if body.get("truncate") is False and any(len(t) > loaded.num_ctx for t in tokens):
            return _error(400, TOO_LONG)
        texts = ["".join(t[: loaded.num_ctx]) for t in tokens]  # Ollama cuts each input
        vectors = [fake_embedding(t, self.embed_dim) for t in texts]
        count = sum(min(len(t), loaded.num_ctx) for t in tokens)
        load = round(1e9 * self.load_seconds) + 1_000_000 if reloaded else 100_000
        answer = {"model": body["model"], "embeddings": vectors, "total_duration": load + 1_000_000}
        return web.json_response(answer | {"load_duration": load, "prompt_eval_count": count})

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        """Fake download progress; afterwards the model is installed."""
        body, failure = await self._begin(request, needs_model=False)
        if failure:
            return failure
        name = normalize_model_name(str(body.get("model") or body.get("name") or ""))
        known = self.pullable is None or name in map(normalize_model_name, self.pullable)
        missing = "pull model manifest: file does not exist"
        if body.get("stream") is False and not known:
            return _error(500, missing)
        if known and name not in self.models:
            self.models.append(name)
        if body.get("stream") is False:
            return web.json_response({"status": "success"})
        digest, total = "sha256:" + hashlib.sha256(name.encode()).hexdigest(), 4_000_000
        response = await self._ndjson(request)
        await self._send(response, {"status": "pulling manifest"})
        if not known:
            await self._send(response, {"error": missing})
        else:
            for done in (0, total // 4, total // 2, total):
                progress = {"digest": digest, "total": total, "completed": done}
                await self._send(response, {"status": f"pulling {digest[7:19]}", **progress})
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                await self._send(response, {"status": status})
        await response.write_eof()
        return response

"""A loopback fake Ollama server speaking Ollama's real HTTP protocol.

Use it in tests and benchmarks instead of a real Ollama::

    async with FakeOllama() as fake:
        fake.reply_with("Hello there")
        backend = OllamaBackend(OllamaSettings(host=fake.url))
        ...
        assert fake.requests[-1].json["options"]["num_ctx"] == 8192

It answers ``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/tags``,
``/api/show``, ``/api/pull``, ``/api/version`` and ``/``; replies are scripted
(:meth:`FakeOllama.reply_with`, :meth:`FakeOllama.enqueue`) and failures can be
injected per test (:meth:`FakeOllama.fail_next`, :attr:`FakeOllama.delay`,
:attr:`FakeOllama.drop_after_chunks`, :meth:`FakeOllama.garbage_next`,
:attr:`FakeOllama.error_mid_stream_after`). It listens on 127.0.0.1 only and
stops by itself after ``lifetime`` seconds. Only aiohttp is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from aiohttp import web

from personae.testing.fake_ollama_model import (
    DEFAULT_MAX_LOADED_MODELS,
    DEFAULT_NUM_CTX,
    DEFAULT_NUM_KEEP,
    NOMINAL_SECONDS_PER_GENERATED_TOKEN,
    NOMINAL_SECONDS_PER_PROMPT_TOKEN,
    TOO_LONG,
    CacheSlot,
    Evaluation,
    LoadedModel,
    ModelHost,
    ModelSpec,
    PromptTooLong,
    cut_reply,
    effective_num_ctx,
    fit_prompt,
    unloads,
)
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
    "chat_tokens",
    "count_tokens",
    "echo_responder",
    "fake_embedding",
    "normalize_model_name",
    "render_chat",
    "split_words",
    "tokenize",
]

Reply = str | Sequence[str]
"""A reply: a whole string (streamed word by word) or the exact chunks to stream."""
Responder = Callable[["FakeChatRequest"], Reply | Awaitable[Reply]]
"""Computes a reply from the parsed request; may be a coroutine function."""

DEFAULT_MODELS = ["llama3.2:latest", "nomic-embed-text:latest"]
EMBED_DIM = 64


@dataclass(frozen=True, slots=True)
class FakeChatRequest:
    """What a responder sees of a ``/api/chat`` (or ``/api/generate``) request."""

    model: str
    messages: list[dict[str, Any]]
    format: dict[str, Any] | str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    keep_alive: str | float | None = None
    seen_messages: list[dict[str, Any]] | None = None
    """The messages the model saw once Ollama fitted them into ``num_ctx``."""

    @property
    def last_user_message(self) -> str:
        """The content of the last ``user`` message, or ``""``."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake received: method, path, JSON body (None if not JSON)
    and the client's address (host, port), which tells connections apart; for a
    chat or generate request the model answered, its :class:`Evaluation`."""

    method: str
    path: str
    json: Any
    peer: tuple[str, int] | None = None
    evaluation: Evaluation | None = None

    def _evaluated(self) -> Evaluation:
        if self.evaluation is None:
            raise ValueError(f"{self.method} {self.path}: the model did not evaluate this request")
        return self.evaluation

    @property
    def seen_messages(self) -> list[dict[str, Any]]:
        """The messages the model saw (Ollama drops the oldest non-system ones)."""
        return self._evaluated().seen_messages

    @property
    def truncated(self) -> bool:
        """Whether the model saw less than was sent."""
        return self._evaluated().truncated

    @property
    def prompt_tokens(self) -> int:
        """Tokens of the prompt the model saw (``prompt_eval_count``)."""
        return self._evaluated().prompt_tokens

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the KV prefix cache."""
        return self._evaluated().cached_tokens

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens evaluated (``prompt_tokens - cached_tokens``)."""
        return self._evaluated().evaluated_tokens


@dataclass(frozen=True, slots=True)
class _Failure:
    """An injected failure, waiting for the next request (to ``path``, if set)."""

    status: int
    error: str
    path: str | None


def echo_responder(request: FakeChatRequest) -> Reply:
    """The default responder: ``"You said: <last user message>"``."""
    return f"You said: {request.last_user_message}"


def split_words(text: str) -> list[str]:
    """Split text into word chunks that join back to exactly ``text``."""
    return [chunk for chunk in re.split(r"(?<=\s)(?=\S)", text) if chunk]


def fake_embedding(text: str, dim: int = EMBED_DIM) -> list[float]:
    """A deterministic unit vector for ``text``: a signed, hashed bag of words.

    Texts sharing words get similar vectors, so recall-by-similarity is testable.
    """
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [x / norm for x in vector]


def normalize_model_name(name: str) -> str:
    """``"llama3.2"`` -> ``"llama3.2:latest"``; names with a tag are unchanged."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class FakeOllama(LoopbackServer):
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
    """

    name = "FakeOllama"

    def __init__(
        self, models: Sequence[str] | None = None, *, port: int = 0, lifetime: float = 900.0
    ) -> None:
        """``models`` replaces the default installed models; ``port`` 0 picks a free
        one; after ``lifetime`` seconds it stops by itself."""
        super().__init__(lifetime=lifetime, port=port)
        self.models: list[str] = list(DEFAULT_MODELS if models is None else models)
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
        self.specs: dict[str, ModelSpec] = {}
        self.default_num_ctx = DEFAULT_NUM_CTX
        self.max_loaded_models = DEFAULT_MAX_LOADED_MODELS
        self.num_parallel = 1
        self.load_seconds = 0.0
        self.seconds_per_prompt_token = 0.0
        self.seconds_per_generated_token = 0.0
        self.host = ModelHost()

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

    # -- the models ------------------------------------------------------------------

    def spec(self, name: str) -> ModelSpec:
        """How model ``name`` is presented (see :meth:`configure_model`)."""
        full = normalize_model_name(name)
        return self.specs.get(full) or ModelSpec.default_for(full)

    def configure_model(self, name: str, **changes: Any) -> ModelSpec:
        """Set :class:`ModelSpec` fields of model ``name`` (``context_length``,
        ``capabilities``, ``num_ctx``, ``architecture``...) and install it."""
        full = normalize_model_name(name)
        self.specs[full] = replace(self.spec(full), **changes)
        if not self.has_model(full):
            self.models.append(full)
        return self.specs[full]

    @property
    def loaded_models(self) -> dict[str, LoadedModel]:
        """The models in memory by name, least recently used first, with their
        ``num_ctx`` and KV cache ``slots``."""
        return dict(self.host.loaded)

    def unload(self, name: str | None = None) -> None:
        """Unload model ``name`` (or all): its next request loads it, cache cold."""
        self.host.unload(None if name is None else normalize_model_name(name))

    def _load(self, name: str, options: dict[str, Any]) -> tuple[LoadedModel, bool]:
        full = normalize_model_name(name)
        num_ctx = effective_num_ctx(self.spec(full), options, self.default_num_ctx)
        return self.host.acquire(
            full, num_ctx, num_parallel=self.num_parallel, max_loaded=self.max_loaded_models
        )

    # -- helpers ---------------------------------------------------------------------

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is installed (``x`` and ``x:latest`` are the same model)."""
        wanted = normalize_model_name(name)
        return any(normalize_model_name(m) == wanted for m in self.models)

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

    async def _evaluate(
        self, record: RecordedRequest, chat: FakeChatRequest, truncate: bool
    ) -> tuple[Evaluation, CacheSlot]:
        """Load the model if needed, fit the prompt into its window, and evaluate
        what its KV cache does not hold; records the :class:`Evaluation`."""
        loaded, reloaded = self._load(chat.model, chat.options)
        if reloaded and self.load_seconds:
            await asyncio.sleep(self.load_seconds)
        num_keep = int(chat.options.get("num_keep", DEFAULT_NUM_KEEP))
        fit = fit_prompt(chat.messages, loaded.num_ctx, num_keep=num_keep, truncate=truncate)
        slot, cached = loaded.load_prompt(fit.tokens)
        record.evaluation = Evaluation(
            model=chat.model,
            num_ctx=loaded.num_ctx,
            messages=list(chat.messages),
            seen_messages=fit.seen_messages,
            requested_tokens=fit.requested_tokens,
            tokens=tuple(fit.tokens),
            cut_tokens=fit.cut_tokens,
            cached_tokens=cached,
            reloaded=reloaded,
        )
        if self.seconds_per_prompt_token:
            await asyncio.sleep(record.evaluation.evaluated_tokens * self.seconds_per_prompt_token)
        return record.evaluation, slot

    async def _generate(self, tokens: int) -> None:
        """Take the time ``tokens`` generated tokens take (``seconds_per_generated_token``)."""
        if self.seconds_per_generated_token and tokens:
            await asyncio.sleep(tokens * self.seconds_per_generated_token)

    def _stats(self, evaluation: Evaluation) -> dict[str, Any]:
        """The final line's fields; like Ollama's, zero figures are left out."""
        load = round(1e9 * self.load_seconds) + 1_000_000 if evaluation.reloaded else 100_000
        per_prompt = self.seconds_per_prompt_token or NOMINAL_SECONDS_PER_PROMPT_TOKEN
        per_token = self.seconds_per_generated_token or NOMINAL_SECONDS_PER_GENERATED_TOKEN
        prompt = round(1e9 * evaluation.evaluated_tokens * per_prompt)
        generation = round(1e9 * evaluation.generated_tokens * per_token)
        metrics = {"total_duration": load + prompt + generation + 100_000, "load_duration": load}
        metrics |= {"prompt_eval_count": evaluation.prompt_tokens, "prompt_eval_duration": prompt}
        metrics |= {"eval_count": evaluation.generated_tokens, "eval_duration": generation}
        done = {"done": True, "done_reason": evaluation.done_reason}
        return done | {key: value for key, value in metrics.items() if value}

    # -- endpoints -------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    def _model_entry(self, name: str) -> dict[str, Any]:
        """One model as ``/api/tags`` lists it."""
        full, spec = normalize_model_name(name), self.spec(name)
        family = spec.architecture
        details = {"parent_model": "", "format": "gguf", "family": family, "families": [family]}
        details |= {"parameter_size": spec.parameter_size}
        details |= {"quantization_level": spec.quantization_level}
        digest = hashlib.sha256(full.encode()).hexdigest()
        entry = {"name": full, "model": full, "modified_at": "2025-01-01T00:00:00Z"}
        return entry | {"size": spec.size, "digest": digest, "details": details}

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
        if request.path == "/api/chat":
            messages = list(body.get("messages") or [])
        else:
            messages = [{"role": "system", "content": body["system"]}] if body.get("system") else []
            messages.append({"role": "user", "content": str(body.get("prompt") or "")})
        chat = FakeChatRequest(
            model=normalize_model_name(str(body["model"])),
            messages=messages,
            format=body.get("format"),
            options=dict(body.get("options") or {}),
            stream=body.get("stream", True) is not False,
            keep_alive=body.get("keep_alive"),
        )
        truncate = body.get("truncate", True) is not False
        if request.path == "/api/chat":
            return await self._answer(
                request,
                chat,
                lambda text: {"message": {"role": "assistant", "content": text}},
                truncate=truncate,
            )
        return await self._answer(request, chat, lambda text: {"response": text}, truncate=truncate)

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

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from aiohttp import web

from personae.testing.loopback import LoopbackServer

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

    @property
    def last_user_message(self) -> str:
        """The content of the last ``user`` message, or ``""``."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received: method, path, JSON body (None if not JSON)
    and the client's address (host, port), which tells connections apart."""

    method: str
    path: str
    json: Any
    peer: tuple[str, int] | None = None


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

    # -- lifecycle -------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        for path, handler in [("/", self._root), ("/api/version", self._version)]:
            app.router.add_get(path, handler)
        app.router.add_get("/api/tags", self._tags)
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
        self.requests.append(RecordedRequest(request.method, request.path, body, peer))
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
        self, request: web.Request, chat: FakeChatRequest, wrap: Callable[[str], dict[str, Any]]
    ) -> web.StreamResponse:
        """Send a chat/generate answer, streamed or whole, honouring the failure modes."""
        base = {"model": chat.model, "created_at": _now()}
        if self._garbage:
            self._garbage -= 1
            head = json.dumps({**base, **wrap(""), "done": False})
            text = f"{head}\n{head[: len(head) // 2]}\n" if chat.stream else "<html>not json"
            return web.Response(text=text, content_type="application/json")
        chunks = await self._reply_chunks(chat)
        words = sum(len(str(m.get("content") or "").split()) for m in chat.messages)
        stats = {"done": True, "done_reason": "stop", "total_duration": 2_000_000 * len(chunks)}
        stats |= {"load_duration": 100_000, "prompt_eval_count": words}
        stats |= {"prompt_eval_duration": 500_000, "eval_count": len(chunks)}
        stats |= {"eval_duration": 1_000_000 * len(chunks)}
        drop, error_after = self.drop_after_chunks, self.error_mid_stream_after
        if not chat.stream:
            if drop is not None:
                await self._abort(request)
            if error_after is not None:
                return _error(500, self.mid_stream_error)
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
        return failure or web.json_response({"models": [_model_entry(m) for m in self.models]})

    async def _show(self, request: web.Request) -> web.Response:
        body, failure = await self._begin(request)
        if failure:
            return failure
        entry = _model_entry(body["model"])
        info: dict[str, Any] = {
            "license": "fake",
            "modelfile": f"FROM {entry['model']}\n",
            "parameters": "",
        }
        info |= {"template": "{{ .Prompt }}", "details": entry["details"]}
        info |= {"model_info": {"general.architecture": entry["details"]["family"]}}
        info |= {"capabilities": ["embedding" if "embed" in entry["model"] else "completion"]}
        return web.json_response(info | {"modified_at": entry["modified_at"]})

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
            model=str(body["model"]),
            messages=messages,
            format=body.get("format"),
            options=dict(body.get("options") or {}),
            stream=body.get("stream", True) is not False,
            keep_alive=body.get("keep_alive"),
        )
        if request.path == "/api/chat":
            return await self._answer(
                request, chat, lambda text: {"message": {"role": "assistant", "content": text}}
            )
        return await self._answer(request, chat, lambda text: {"response": text})

    async def _embed(self, request: web.Request) -> web.Response:
        body, failure = await self._begin(request)
        if failure:
            return failure
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        vectors = [fake_embedding(t, self.embed_dim) for t in texts]
        count = sum(len(t.split()) for t in texts)
        answer = {"model": body["model"], "embeddings": vectors, "total_duration": 1_000_000}
        return web.json_response(answer | {"load_duration": 0, "prompt_eval_count": count})

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


def _model_entry(name: str) -> dict[str, Any]:
    """One model as ``/api/tags`` lists it (names containing "embed" look like
    embedding models)."""
    full = normalize_model_name(name)
    embed = "embed" in full
    family = "nomic-bert" if embed else "llama"
    details = {"parent_model": "", "format": "gguf", "family": family, "families": [family]}
    details |= {"parameter_size": "137M" if embed else "3.2B"}
    details |= {"quantization_level": "F16" if embed else "Q4_K_M"}
    digest = hashlib.sha256(full.encode()).hexdigest()
    entry = {"name": full, "model": full, "modified_at": "2025-01-01T00:00:00Z"}
    return entry | {
        "size": 274302450 if embed else 2019393189,
        "digest": digest,
        "details": details,
    }

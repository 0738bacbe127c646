"""The built-in LLM backend: Ollama through the official ``ollama.AsyncClient``.

Failures never leave this module as transport exceptions: each one becomes a
:class:`~personae.core.errors.LLMError` whose message tells the user what to do.
Connection failures (and only those) are retried with exponential backoff; a
stream is retried only before its first chunk arrived.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import re
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import httpx
import pydantic
from ollama import AsyncClient, ChatResponse, ResponseError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from personae.core.errors import (
    LLMError,
    LLMResponseError,
    LLMTimeout,
    LLMUnavailable,
    ModelNotFound,
)
from personae.core.llm.base import ChatRequest, ChatUsage, ContextWindow, ModelInfo
from personae.core.llm.transport import is_connect_error, transport, transport_failure
from personae.core.settings import OllamaSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Phase = Literal["request", "stream", "pull"]
"""Where a failure happened: before an answer, in the middle of a reply stream, or
while pulling a model."""

MAX_BACKOFF_SECONDS = 30.0
_MODEL_MISSING = re.compile(r"model\b.*\bnot found", re.IGNORECASE)


def chat_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON body ``AsyncClient.chat(**kwargs)`` sends, that is
    ``ChatRequest(...).model_dump(exclude_none=True)``, built without validating
    every message into a pydantic model first: a turn sends its whole recent
    conversation, and that cost about 4 µs a message on the way to the first
    token. ``tests/test_llm_ollama.py`` holds the two to the same body."""
    body: dict[str, Any] = {"model": kwargs["model"], "stream": kwargs["stream"]}
    for key in ("options", "keep_alive", "format"):
        if kwargs.get(key) is not None:
            body[key] = kwargs[key]
    # like the client's _copy_messages, which leaves out empty fields
    body["messages"] = [{k: v for k, v in m.items() if v} for m in kwargs["messages"]]
    body["tools"] = []
    return body


@functools.cache
def _request_method(client_type: type) -> bool:
    """Whether ``client_type`` has the ``_request(cls, method, path, *, json,
    stream)`` that ``AsyncClient.chat`` sends its request through (as in the
    ollama 0.6 releases this project requires)."""
    method = getattr(client_type, "_request", None)
    try:
        parameters = inspect.signature(method).parameters if method is not None else {}
    except (TypeError, ValueError):
        return False
    return "cls" in parameters and "stream" in parameters


def _streaming_request(client: AsyncClient) -> Callable[..., Awaitable[Any]] | None:
    """The client's own request method for a streamed chat with a body built by
    :func:`chat_body`; None on a client without one (then ``chat`` is used)."""
    if not _request_method(type(client)):
        return None
    return cast(Callable[..., Awaitable[Any]], client._request)


class _ChatPart(ChatResponse):
    """A chat response line, keeping the count of prompt tokens served from the
    KV cache where the server reports it (the ``ollama`` client drops unknown
    fields)."""

    prompt_eval_cached_count: int | None = None


def _usage(part: ChatResponse, model: str, num_ctx: int | None) -> ChatUsage:
    cached = getattr(part, "prompt_eval_cached_count", None)
    return ChatUsage(
        model=model,
        prompt_tokens=part.prompt_eval_count,
        completion_tokens=part.eval_count,
        cached_tokens=int(cached) if cached is not None else None,
        num_ctx=num_ctx,
    )


def context_length(model_info: Mapping[str, Any] | None) -> int | None:
    """The model's trained context length from ``/api/show``'s ``model_info``
    (``<architecture>.context_length``), or None when it is not there."""
    if not model_info:
        return None
    architecture = model_info.get("general.architecture")
    keys = [f"{architecture}.context_length"] if architecture else []
    keys += [k for k in model_info if k.endswith(".context_length")]
    for key in keys:
        value = model_info.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def normalize_model_name(name: str) -> str:
    """``"llama3.2"`` -> ``"llama3.2:latest"``; a name with a tag is unchanged."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _require_model(name: str) -> str:
    """Return ``name``, or raise ModelNotFound when no model is configured at all."""
    if not name.strip():
        raise ModelNotFound(
            "No model is configured — set ollama.model (PERSONAE_OLLAMA__MODEL), "
            "e.g. `llama3.2`, and pull it with `ollama pull llama3.2`.",
            model=name,
        )
    return name


class OllamaBackend:
    """An :class:`~personae.core.llm.base.LLMBackend` talking to one Ollama server.

    Keeps one ``AsyncClient`` per running event loop, created on first use.
    """

    name = "ollama"

    def __init__(self, settings: OllamaSettings) -> None:
        self.settings = settings
        self.default_model: str = settings.model
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._lengths: dict[str, int | None] = {}
        """Each model's context length as ``/api/show`` said it (None: it did not)."""

    # -- clients ---------------------------------------------------------------------

    def client(self) -> AsyncClient:
        """The ``ollama.AsyncClient`` for the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                s = self.settings
                timeout = httpx.Timeout(
                    connect=s.connect_timeout,
                    read=s.read_timeout,
                    write=s.read_timeout,
                    pool=s.read_timeout,
                )
                try:
                    client = AsyncClient(
                        host=s.host, timeout=timeout, transport=transport(s.max_connections)
                    )
                except (ValueError, httpx.InvalidURL) as exc:
                    raise self._bad_host(exc) from exc
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close every client: this loop's now, other running loops' on their loop."""
        with self._lock:
            clients = list(self._clients.items())
            self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is current:
                await client.close()
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(client.close(), loop)
                await asyncio.wrap_future(future)
            # A client of a stopped loop cannot be closed any more; it is dropped.

    async def __aenter__(self) -> OllamaBackend:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- LLMBackend ------------------------------------------------------------------

    async def model_length(self, model: str) -> int | None:
        """The model's context length from ``/api/show`` (asked once per model and
        kept; None when the server does not say it, or does not know the model)."""
        key = normalize_model_name(model)
        if key in self._lengths:
            return self._lengths[key]
        try:
            shown = await self.client().show(model)
        except Exception as exc:
            error = self._map_error(exc, model=model, phase="request")
            if isinstance(error, LLMUnavailable | LLMTimeout):
                # Ollama is down or slow: the turn fails with that (one line for the
                # user) rather than going on with a guessed window.
                raise error from None
            # A model /api/show does not know: if the chat cannot use it either, the
            # chat says so; if it can, the fallback window is the documented answer.
            log.warning(
                "Ollama did not describe model %r (%s); its window is taken as "
                "ollama.fallback_num_ctx = %d until it does",
                model,
                error,
                self.settings.fallback_num_ctx,
            )
            return None
        length = context_length(shown.modelinfo)
        if length is None:
            log.warning(
                "Ollama's /api/show gives no context_length for model %r; its window is "
                "taken as ollama.fallback_num_ctx = %d (set ollama.num_ctx to choose)",
                model,
                self.settings.fallback_num_ctx,
            )
        self._lengths[key] = length
        return length

    async def context_window(
        self, model: str | None, options: dict[str, Any] | None = None
    ) -> ContextWindow:
        """The window ``model`` runs with: a persona's ``options.num_ctx``, else
        ``ollama.num_ctx``, else ``ollama.options.num_ctx``, else the model's own
        length capped at ``ollama.default_num_ctx``; when the model's length is
        unknown, ``ollama.fallback_num_ctx`` (logged). ``reply_tokens`` is
        ``num_predict`` from the options, else ``ollama.num_predict``."""
        s = self.settings
        name = _require_model(model or self.default_model)
        own = dict(options or {})
        reply = own.get("num_predict", s.options.get("num_predict"))
        reply_tokens = int(reply) if isinstance(reply, int) and reply > 0 else s.num_predict
        chosen = own.get("num_ctx")
        if isinstance(chosen, int) and chosen > 0:
            return ContextWindow(name, chosen, reply_tokens, "persona")
        chosen = s.num_ctx or s.options.get("num_ctx")
        if isinstance(chosen, int) and chosen > 0:
            return ContextWindow(name, chosen, reply_tokens, "setting")
        length = await self.model_length(name)
        if length is None:
            return ContextWindow(name, s.fallback_num_ctx, reply_tokens, "fallback")
        return ContextWindow(name, min(length, s.default_num_ctx), reply_tokens, "model")

    async def _chat_kwargs(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The client's arguments; ``num_ctx`` and ``num_predict`` are always sent
        (Ollama reloads a model whose ``num_ctx`` changes, and silently cuts a
        prompt longer than it)."""
        if isinstance(request.format, str) and request.format not in ("", "json"):
            raise ValueError(f"format must be a JSON schema or 'json', not {request.format!r}")
        model = _require_model(request.model or self.default_model)
        window = await self.context_window(model, request.options)
        options = {**self.settings.options, **request.options}
        options["num_ctx"] = window.num_ctx
        options.setdefault("num_predict", window.reply_tokens)
        return {
            "model": model,
            "messages": [message.as_dict() for message in request.messages],
            "stream": stream,
            "options": options,
            "keep_alive": self.settings.keep_alive,
            "format": request.format,
        }

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        """Yield the reply's text chunks (empty chunks skipped) as Ollama sends them."""
        client = self.client()
        kwargs = await self._chat_kwargs(request, stream=True)
        model: str = kwargs["model"]

        request_stream = _streaming_request(client)

        async def open_stream() -> tuple[AsyncGenerator[ChatResponse, None], ChatResponse | None]:
            if request_stream is not None:
                body = chat_body(kwargs)
                sent = await request_stream(_ChatPart, "POST", "/api/chat", json=body, stream=True)
            else:
                sent = await client.chat(**kwargs)
            parts = cast(AsyncGenerator[ChatResponse, None], sent)
            return parts, await anext(parts, None)  # connects here

        parts, part = await self._call(open_stream, model=model)
        last: ChatResponse | None = None
        async with aclosing(parts):
            while part is not None:
                last = part
                if part.message.content:
                    yield part.message.content
                try:
                    part = await anext(parts, None)
                except Exception as exc:
                    raise self._map_error(exc, model=model, phase="stream") from exc
        if last is None or not last.done:
            raise LLMResponseError(
                "Ollama stopped in the middle of the reply: "
                "the stream ended without its final message."
            )
        if request.on_usage is not None:
            request.on_usage(_usage(last, model, kwargs["options"]["num_ctx"]))

    async def chat(self, request: ChatRequest) -> str:
        """Return the whole reply text; ``request.format`` asks for JSON output."""
        client = self.client()
        kwargs = await self._chat_kwargs(request, stream=False)

        async def call() -> ChatResponse:
            return cast(ChatResponse, await client.chat(**kwargs))

        response = await self._call(call, model=kwargs["model"])
        if request.on_usage is not None:
            request.on_usage(_usage(response, kwargs["model"], kwargs["options"]["num_ctx"]))
        return response.message.content or ""

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text from ``/api/embed`` (model: ``model``, else
        ``ollama.embed_model``, else ``ollama.model``)."""
        if not texts:
            return []
        client = self.client()
        name = _require_model(model or self.settings.embed_model or self.settings.model)
        keep_alive = self.settings.keep_alive

        async def call() -> list[list[float]]:
            response = await client.embed(model=name, input=list(texts), keep_alive=keep_alive)
            return [[float(x) for x in vector] for vector in response.embeddings]

        vectors = await self._call(call, model=name)
        if len(vectors) != len(texts):
            raise LLMResponseError(
                f"Ollama returned {len(vectors)} embeddings for {len(texts)} texts "
                f"(model {name!r})."
            )
        return vectors

    async def list_models(self) -> list[ModelInfo]:
        """The models installed on the server (``/api/tags``)."""
        client = self.client()
        response = await self._call(client.list, model=None)
        return [
            ModelInfo(
                name=m.model or "",
                size=int(m.size) if m.size is not None else None,
                details=m.details.model_dump(exclude_none=True) if m.details else {},
            )
            for m in response.models
        ]

    async def has_model(self, name: str) -> bool:
        """Whether ``name`` is installed; ``x`` and ``x:latest`` are the same model."""
        wanted = normalize_model_name(name)
        return any(normalize_model_name(m.name) == wanted for m in await self.list_models())

    async def pull(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Pull ``name`` onto the server, yielding progress dicts with ``status``,
        ``digest``, ``total`` and ``completed`` (the last two None when unknown)."""
        client = self.client()

        async def open_stream() -> tuple[AsyncGenerator[Any, None], Any]:
            parts = cast(AsyncGenerator[Any, None], await client.pull(name, stream=True))
            return parts, await anext(parts, None)

        parts, part = await self._call(open_stream, model=name, phase="pull")
        async with aclosing(parts):
            while part is not None:
                yield {
                    "status": part.status,
                    "digest": part.digest,
                    "total": part.total,
                    "completed": part.completed,
                }
                try:
                    part = await anext(parts, None)
                except Exception as exc:
                    raise self._map_error(exc, model=name, phase="pull") from exc

    # -- retries and errors ----------------------------------------------------------

    async def _call(
        self, fn: Callable[[], Awaitable[T]], *, model: str | None, phase: Phase = "request"
    ) -> T:
        """Run ``fn``, retrying connection failures; map every failure to an LLMError.

        The first attempt is a plain call. Tenacity's objects for one call (its
        retry state, a future, a lock, closures: about 30) form reference cycles
        that only the garbage collector frees, and they are needed only once a
        connection has failed. That failure then goes through tenacity as its
        first attempt, so the retry policy (backoff, logging, how many attempts)
        is tenacity's."""
        try:
            try:
                return await fn()
            except Exception as exc:
                if not is_connect_error(exc):
                    raise
                failed: Exception | None = exc
            retrying = AsyncRetrying(
                retry=retry_if_exception(is_connect_error),
                stop=stop_after_attempt(self.settings.retries + 1),
                wait=wait_exponential(
                    multiplier=self.settings.retry_backoff, max=MAX_BACKOFF_SECONDS
                ),
                before_sleep=self._log_retry,
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    if failed is not None:  # the first attempt's failure, replayed
                        error, failed = failed, None
                        raise error
                    return await fn()
        except LLMError:
            raise
        except Exception as exc:
            raise self._map_error(exc, model=model, phase=phase) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _log_retry(self, state: RetryCallState) -> None:
        """Log each retry of a failed connection at DEBUG: the error that ends
        the retries is what the user sees."""
        wait = state.next_action.sleep if state.next_action else 0.0
        log.debug(
            "Ollama at %s is not reachable (attempt %d of %d); retrying in %.2fs",
            self.settings.host,
            state.attempt_number,
            self.settings.retries + 1,
            wait,
        )

    def _bad_host(self, exc: Exception) -> LLMUnavailable:
        """The error for an ``ollama.host`` that is not a usable URL."""
        return LLMUnavailable(
            f"ollama.host {self.settings.host!r} is not a usable URL ({exc}) — set "
            "ollama.host / PERSONAE_OLLAMA__HOST, e.g. http://127.0.0.1:11434."
        )

    def _map_error(self, exc: Exception, *, model: str | None, phase: Phase) -> LLMError:
        """Turn anything the client raised into an LLMError a user can act on."""
        host = self.settings.host
        stopped = "Ollama stopped in the middle of the " + (
            "download" if phase == "pull" else "reply"
        )
        failure = transport_failure(exc)
        if failure == "connect":
            return LLMUnavailable(
                f"Ollama is not reachable at {host} — start it with `ollama serve` "
                "or set ollama.host / PERSONAE_OLLAMA__HOST."
            )
        if isinstance(exc, ResponseError):
            error = str(exc.error).strip() or "(no error message)"
            if phase == "pull":
                return LLMResponseError(
                    f"Ollama could not pull {model!r}: {error}. "
                    "Check the name at https://ollama.com/library."
                )
            if _MODEL_MISSING.search(error) or (
                exc.status_code == 404 and "model" in error.lower()
            ):
                name = model or self.default_model
                return ModelNotFound(
                    f"Model {name!r} is not installed in Ollama at {host} — "
                    f"run `ollama pull {name}` (Ollama said: {error}).",
                    model=name,
                )
            if exc.status_code == -1:  # an {"error": ...} line inside a stream
                return LLMResponseError(f"{stopped}: {error}")
            if exc.status_code == 404:
                return LLMResponseError(
                    f"{host} answered 404 ({error}) — is ollama.host pointing at Ollama?"
                )
            return LLMResponseError(f"Ollama answered HTTP {exc.status_code}: {error}")
        if failure == "timeout":
            timeout = self.settings.read_timeout
            what = "sent nothing more for" if phase != "request" else "did not answer within"
            return LLMTimeout(
                f"Ollama at {host} {what} {timeout:g}s (model {model!r}). A model may "
                "still be loading or the machine is busy; raise ollama.read_timeout "
                "(PERSONAE_OLLAMA__READ_TIMEOUT)."
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return self._bad_host(exc)
        if isinstance(exc, pydantic.ValidationError) and exc.title.endswith("Request"):
            return LLMResponseError(f"The request for Ollama is invalid: {exc}")
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError | UnicodeDecodeError):
            detail = f"malformed data from the server ({exc.__class__.__name__}: {exc})"
            if phase == "request":
                return LLMResponseError(f"Ollama sent a malformed answer: {detail}")
            return LLMResponseError(f"{stopped}: {detail}")
        if failure == "dropped":
            if phase == "request":
                return LLMResponseError(f"Ollama at {host} dropped the connection: {exc}")
            return LLMResponseError(f"{stopped}: the connection was dropped ({exc}).")
        return LLMResponseError(
            f"Unexpected failure talking to Ollama at {host}: {exc.__class__.__name__}: {exc}"
        )

"""The LLM backend interface. Backends are registered by plugins through the
``register_llm_backends`` hook; Ollama is the built-in one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from personae.core.types import ChatMessage


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model the LLM server has installed."""

    name: str
    size: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything a backend needs for one chat call."""

    messages: Sequence[ChatMessage]
    model: str | None = None
    """None means the backend's configured default model."""
    options: dict[str, Any] = field(default_factory=dict)
    """Per-call model options (``num_ctx``, ``temperature`` ...), merged over the
    backend's defaults."""
    format: dict[str, Any] | str | None = None
    """A JSON schema (dict) or ``"json"`` for structured output."""
    on_usage: Callable[[ChatUsage], None] | None = field(default=None, compare=False)
    """Called once with the token counts of the finished call, when the backend
    knows them (a backend that does not report counts never calls it)."""


@dataclass(frozen=True, slots=True)
class ChatUsage:
    """The token counts a backend reported for one finished chat call.

    ``prompt_tokens`` counts the whole prompt; ``cached_tokens`` how many of them
    the server read from its prompt cache instead of evaluating them (None when
    the server does not say); ``completion_tokens`` the reply."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = None
    num_ctx: int | None = None

    @property
    def evaluated_tokens(self) -> int | None:
        """Prompt tokens the model evaluated (not served from its cache)."""
        if self.prompt_tokens is None:
            return None
        return self.prompt_tokens - (self.cached_tokens or 0)


WindowSource = Literal["persona", "setting", "model", "fallback"]


@dataclass(frozen=True, slots=True)
class ContextWindow:
    """The context window one model is run with: ``num_ctx`` tokens in all, of
    which ``reply_tokens`` are kept for the reply. ``source`` says where
    ``num_ctx`` came from: a persona's options, the settings, the model's own
    length (``/api/show``), or the documented fallback when nothing said it."""

    model: str
    num_ctx: int
    reply_tokens: int
    source: WindowSource = "model"

    @property
    def prompt_tokens(self) -> int:
        """The most tokens a prompt may take."""
        return max(0, self.num_ctx - self.reply_tokens)


@runtime_checkable
class LLMBackend(Protocol):
    """What the runtime and plugins use to talk to a language model.

    Every method raises a subclass of :class:`personae.core.errors.LLMError` on
    failure, never a transport exception.
    """

    name: str
    default_model: str

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        """Yield the reply's text chunks as they arrive."""
        ...

    async def chat(self, request: ChatRequest) -> str:
        """Return the whole reply text (used for structured output)."""
        ...

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """Return one embedding vector per text."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """Return the models installed on the server."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class WindowedBackend(Protocol):
    """A backend that knows each model's context window (Ollama does). The
    runtime budgets every prompt to it; a backend without this method is given
    the settings' ``ollama.fallback_num_ctx`` window."""

    async def context_window(
        self, model: str | None, options: dict[str, Any] | None = None
    ) -> ContextWindow:
        """The window ``model`` (None: the default one) runs with under
        ``options`` (a persona's own options): the same on every call."""
        ...

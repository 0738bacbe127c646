"""The LLM backend interface. Backends are registered by plugins through the
``register_llm_backends`` hook; Ollama is the built-in one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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

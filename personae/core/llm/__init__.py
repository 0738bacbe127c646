"""Language model backends: the :class:`LLMBackend` interface and the Ollama backend."""

from __future__ import annotations

from personae.core.llm.base import (
    ChatRequest,
    ChatUsage,
    ContextWindow,
    LLMBackend,
    ModelInfo,
    WindowedBackend,
)
from personae.core.llm.ollama import OllamaBackend

__all__ = [
    "ChatRequest",
    "ChatUsage",
    "ContextWindow",
    "LLMBackend",
    "ModelInfo",
    "OllamaBackend",
    "WindowedBackend",
]

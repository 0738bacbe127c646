"""Registers the Ollama LLM backend (the default; another plugin may register its own)."""

from __future__ import annotations

from collections.abc import Callable

from personae.core.hookspecs import hookimpl
from personae.core.llm.base import LLMBackend
from personae.core.llm.ollama import OllamaBackend
from personae.core.settings import Settings


@hookimpl(trylast=True)
def register_llm_backends(register: Callable[[LLMBackend], None], settings: Settings) -> None:
    register(OllamaBackend(settings.ollama))

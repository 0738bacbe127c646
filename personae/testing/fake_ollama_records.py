"""What the fake Ollama records and hands to responders, and the small helpers its
answers are made with (see :mod:`personae.testing.fake_ollama`)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from personae.testing.fake_ollama_model import Evaluation

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

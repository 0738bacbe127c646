"""Estimating a model's token counts from characters, calibrated by the counts
the server reports (see docs/context.md)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from personae.core.llm.base import ChatUsage
from personae.core.types import ChatMessage

PER_MESSAGE = 8
"""Tokens a chat template adds around each message (role markers)."""
START_CHARS_PER_TOKEN = 3.5
"""The estimate before a model reported counts: cautious (English is about 4)."""
OBSERVATIONS = 32
"""How many reported counts a model's estimate is taken from."""


class TokenCounter:
    """An estimate of one model's token counts: characters ÷ a ratio, plus a
    few tokens per message. The ratio starts cautious and follows the counts the
    server reports (:meth:`observe`)."""

    def __init__(self, chars_per_token: float = START_CHARS_PER_TOKEN) -> None:
        self.chars_per_token = chars_per_token
        self.calibrated = False
        self._seen: deque[float] = deque(maxlen=OBSERVATIONS)

    def count(self, text: str) -> int:
        """Tokens of ``text`` (without message overhead)."""
        return math.ceil(len(text) / self.chars_per_token) if text else 0

    def message(self, text: str) -> int:
        """Tokens of one message holding ``text``."""
        return self.count(text) + PER_MESSAGE

    def messages(self, messages: Sequence[ChatMessage]) -> int:
        return sum(self.message(m.content) for m in messages)

    def margin(self, num_ctx: int) -> int:
        """Tokens kept free against the estimate's error."""
        return 16 + int(num_ctx * (0.03 if self.calibrated else 0.08))

    def observe(self, messages: Sequence[ChatMessage], usage: ChatUsage) -> None:
        """Learn from a count the server reported for ``messages``.

        Whether ``prompt_eval_count`` counts the whole prompt or only what the
        model evaluated past its prompt cache depends on the server, and a count
        without the cache can only be smaller than the prompt. So the ratio used
        is the lowest (most tokens per character) of the last
        :data:`OBSERVATIONS` seen: exact when the counts are whole prompts, and
        taken from the coldest request when they are not."""
        if not usage.prompt_tokens:
            return
        chars = sum(len(m.content) for m in messages)
        text_tokens = usage.prompt_tokens - PER_MESSAGE * len(messages)
        if chars <= 0 or text_tokens <= 0:
            return
        self._seen.append(min(8.0, max(1.0, chars / text_tokens)))
        self.chars_per_token = min(self._seen)
        self.calibrated = True

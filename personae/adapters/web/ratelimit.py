"""Per-key token-bucket rate limits (per user for chat, per address for logins)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allows ``per_minute`` hits per key per minute, in bursts of up to
    ``per_minute``. ``per_minute=0`` allows everything."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def hit(self, key: Hashable) -> int | None:
        """Take one token for ``key``. Returns None when allowed, else the whole
        seconds to wait before the next hit is allowed (for ``Retry-After``)."""
        if not self.enabled:
            return None
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._prune(now, rate)
        return None

    def _prune(self, now: float, rate: float) -> None:
        full = [
            key
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * rate >= self.per_minute
        ]
        for key in full:
            del self._buckets[key]

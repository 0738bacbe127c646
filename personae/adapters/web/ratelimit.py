"""Per-key token-bucket rate limits (per user for chat, per address for logins and
sign-ups, one global bucket for sign-ups) and the per-account login backoff.

In memory, per process: each process of a deployment keeps its own buckets."""

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


class LoginBackoff:
    """Failed logins per account name, whatever address they come from.

    After ``free_failures`` failures in a row, each further attempt for that name
    must wait ``2 ** (failures - free_failures)`` seconds (at most ``max_seconds``)
    after the last failure; a successful login clears the count. Names that do
    not exist are counted the same way, so the answer tells nothing about which
    accounts exist. ``free_failures=0`` turns the backoff off. Kept in memory, per
    process."""

    def __init__(
        self,
        free_failures: int,
        max_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.max_seconds = max_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, tuple[int, float]] = {}

    def wait(self, name: str) -> int | None:
        """None when ``name`` may try to log in now, else the whole seconds to
        wait (for ``Retry-After``)."""
        if self.free_failures <= 0 or name not in self._failures:
            return None
        count, last = self._failures[name]
        if count < self.free_failures:
            return None
        delay = min(self.max_seconds, 2.0 ** (count - self.free_failures))
        remaining = last + delay - self.clock()
        return max(1, math.ceil(remaining)) if remaining > 0 else None

    def failed(self, name: str) -> None:
        if self.free_failures <= 0:
            return
        count, _ = self._failures.get(name, (0, 0.0))
        self._failures[name] = (count + 1, self.clock())
        if len(self._failures) > self.max_keys:
            self._prune()

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)

    def _prune(self) -> None:
        now = self.clock()
        stale = [n for n, (_, last) in self._failures.items() if now - last > self.max_seconds]
        for name in stale or list(self._failures)[: len(self._failures) // 2]:
            del self._failures[name]

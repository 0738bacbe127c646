"""Abuse limits for the Discord front end: who is never answered, how fast one
person may ask, and how long a channel's queue may grow.

A busy channel queues its turns (one at a time, in arrival order); without a
bound, one person pasting fifty messages holds everyone else's answer for fifty
replies. Refusals are said once per window, never once per message, so the
limits cannot be turned into a way to make the bot spam."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

from personae.adapters.discord.settings import DiscordSettings


class Verdict(Enum):
    ANSWER = "answer"
    IGNORE = "ignore"  # blocked, ignored channel, or a refusal already said
    TOO_FAST = "too fast"
    BUSY = "busy"


TOO_FAST_NOTICE = "⏳ You're sending messages faster than I can answer; wait a moment."
BUSY_NOTICE = "⏳ I'm busy with the messages before yours here; try again in a moment."


class TurnLimits:
    """Decides whether a message addressed to a persona is answered."""

    def __init__(
        self, settings: DiscordSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.blocked = set(settings.blocked_user_ids)
        self.ignored = set(settings.ignored_channel_ids)
        self._last_turn: dict[int, float] = {}
        self._last_notice: dict[tuple[int, str], float] = {}
        self.waiting: dict[int, int] = {}
        """Turns waiting for or holding each channel."""

    def ignores(self, user_id: int, channel_ids: tuple[int, ...]) -> bool:
        """Blocked people and ignored channels (a thread counts with its parent)."""
        return user_id in self.blocked or any(c in self.ignored for c in channel_ids)

    def admit(self, user_id: int, channel_id: int) -> Verdict:
        now = self.clock()
        cooldown = self.settings.user_cooldown_seconds
        last = self._last_turn.get(user_id)
        if cooldown and last is not None and now - last < cooldown:
            return self._refuse(user_id, "fast", Verdict.TOO_FAST, now)
        if self.waiting.get(channel_id, 0) >= self.settings.max_queued_per_channel:
            return self._refuse(user_id, f"busy:{channel_id}", Verdict.BUSY, now)
        self._last_turn[user_id] = now
        if len(self._last_turn) > 50_000:
            self._last_turn = {u: t for u, t in self._last_turn.items() if now - t < cooldown}
        return Verdict.ANSWER

    def _refuse(self, user_id: int, kind: str, verdict: Verdict, now: float) -> Verdict:
        window = max(self.settings.user_cooldown_seconds, 10.0)
        said = self._last_notice.get((user_id, kind))
        if said is not None and now - said < window:
            return Verdict.IGNORE
        self._last_notice[(user_id, kind)] = now
        if len(self._last_notice) > 50_000:
            self._last_notice = {k: t for k, t in self._last_notice.items() if now - t < window}
        return verdict

"""Delivering separate follow-ups once the user has been idle.

:func:`tick` sends every pending follow-up whose time (by the runtime's clock)
has come through :meth:`~personae.core.proactive.ProactiveHub.deliver`. A
follow-up is claimed first (so two processes never both send it), marked ``sent``
only when an adapter delivered it, and given back otherwise to try again on a
later tick, until ``expire_seconds`` after it was due. A background loop calls
:func:`tick`; tests call it after moving a ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from personae.core.errors import PersonaNotFound
from personae.core.plugins import PerRuntime
from personae.core.proactive import ProactiveMessage
from personae.core.types import Scope
from personae.plugins.curiosity.settings import CuriositySettings, load_curiosity_settings

if TYPE_CHECKING:
    from personae.core.runtime import Runtime

log = logging.getLogger("personae.plugins.curiosity")


@dataclass(slots=True)
class CuriosityState:
    """The curiosity plugin's state for one runtime."""

    settings: CuriositySettings
    tick_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    planning: dict[tuple[Scope, str], asyncio.Lock] = field(default_factory=dict)
    asked_away: dict[tuple[Scope, str], str] = field(default_factory=dict)
    """Questions delivered separately, mentioned in the conversation's next prompt."""
    not_before: dict[Scope, datetime] = field(default_factory=dict)
    """Per scope, a time before which the cooldown or the window's maximum rules a
    question out (a lower bound: questions asked elsewhere only move it later)."""
    loop: asyncio.Task[None] | None = None


_states: PerRuntime[CuriosityState] = PerRuntime(
    lambda runtime: CuriosityState(load_curiosity_settings(runtime.settings))
)


def state(runtime: Runtime) -> CuriosityState:
    """The plugin's state for ``runtime`` (created, with validated settings, on first use)."""
    return _states.get(runtime)


def drop_state(runtime: Runtime) -> CuriosityState | None:
    return _states.drop(runtime)


def delivery_mode(runtime: Runtime, platform: str) -> str:
    """``"woven"`` or ``"separate"`` for a turn on ``platform``."""
    mode = state(runtime).settings.mode
    if mode == "auto":
        return "separate" if runtime.proactive.can_deliver(platform) else "woven"
    return mode


async def tick(runtime: Runtime) -> int:
    """Deliver the follow-ups that are due; returns how many were delivered."""
    st = state(runtime)
    delivered = 0
    async with st.tick_lock:
        now = runtime.clock.now()
        for scope in [s for s, until in st.not_before.items() if until <= now]:
            del st.not_before[scope]  # expired holds: keep the map small
        for follow_up in await runtime.followups.due(now):
            scope = follow_up.scope
            if (now - follow_up.due_at).total_seconds() > st.settings.expire_seconds:
                await runtime.followups.mark(scope, follow_up.id, "cancelled")
                continue
            try:
                entry = await runtime.personas.by_key(scope.persona_id, viewer=scope.user_id)
            except PersonaNotFound:  # deleted, or no longer shared with the user
                await runtime.followups.mark(scope, follow_up.id, "cancelled")
                continue
            if not await runtime.followups.claim(scope, follow_up.id):
                continue  # another process took it
            message = ProactiveMessage(
                id=follow_up.id,
                scope=scope,
                conversation=follow_up.conversation,
                platform=follow_up.platform,
                text=follow_up.question,
                visible_id=entry.id,
            )
            try:
                sent = await runtime.proactive.deliver(message)
            except BaseException:
                await runtime.followups.release(scope, follow_up.id)
                raise
            if sent and await runtime.followups.mark(scope, follow_up.id, "sent", now=now):
                st.asked_away[(scope, follow_up.conversation)] = follow_up.question
                delivered += 1
            elif not sent:
                await runtime.followups.release(scope, follow_up.id)
    return delivered

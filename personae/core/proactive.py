"""Proactive messages: things a persona says without being asked (curiosity
follow-ups). Adapters subscribe a delivery handler per platform; plugins call
:meth:`ProactiveHub.deliver`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from personae.core.types import Scope

log = logging.getLogger("personae.proactive")


@dataclass(frozen=True, slots=True)
class ProactiveMessage:
    """A message for one user from one persona, in a conversation of a platform."""

    id: int
    scope: Scope
    conversation: str
    platform: str
    text: str
    kind: str = "follow_up"
    visible_id: str = ""
    """The persona's visible id (``scope.persona_id`` is its internal key)."""

    @property
    def persona_id(self) -> str:
        """The id adapters show and look the persona's card up by."""
        return self.visible_id or self.scope.persona_id


Handler = Callable[[ProactiveMessage], Awaitable[bool]]


class ProactiveHub:
    """Routes proactive messages to the adapters that can deliver them.

    A handler returns True when it delivered the message (e.g. the user has an
    open stream, or the Discord channel accepted it) and False when it could not."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, platform: str, handler: Handler) -> Callable[[], None]:
        """Add a delivery handler for ``platform``; returns a function that removes it."""
        self._handlers.setdefault(platform, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(platform, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def can_deliver(self, platform: str) -> bool:
        return bool(self._handlers.get(platform))

    async def deliver(self, message: ProactiveMessage) -> bool:
        """Offer the message to the platform's handlers; True if any delivered it."""
        delivered = False
        for handler in list(self._handlers.get(message.platform, [])):
            try:
                delivered = bool(await handler(message)) or delivered
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("proactive delivery on %s failed", message.platform)
        return delivered

"""Profile memory: what each persona learns and remembers about each user.

Built only on public hooks, as a third-party plugin could be:

- ``reply_complete`` batches delivered exchanges and, when a batch is ready, asks
  the LLM (structured output) what it revealed about the speaking user, then
  consolidates that into the scope's memory (:mod:`.learning`, :mod:`.extraction`,
  :mod:`.consolidation`, whose duplicate/update/contradiction rules are in
  :mod:`.likeness`);
- ``prompt_sections`` recalls the most relevant items of the turn's readable scopes
  into a ``memory`` section, which the prompt wraps as data (:mod:`.recall`);
- ``register_commands`` offers ``/profile`` (:mod:`.commands`);
- ``personae_startup``/``personae_shutdown`` run the idle check and learn from
  what is left at shutdown;
- ``export_user_data``/``forget_user`` cover items and their revisions.

Settings: ``[plugin_settings.profile]`` (:class:`.settings.ProfileSettings`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from personae.core import background
from personae.core.commands import Command
from personae.core.hookspecs import hookimpl
from personae.core.types import PromptSection, Scope, Turn
from personae.plugins.profile import learning
from personae.plugins.profile.commands import PROFILE_COMMAND
from personae.plugins.profile.learning import learn, tick
from personae.plugins.profile.recall import recall_section
from personae.plugins.profile.settings import ProfileSettings
from personae.storage.records import StoredMessage

if TYPE_CHECKING:
    from personae.core.runtime import Reply, Runtime

__all__ = [
    "ProfileSettings",
    "export_user_data",
    "forget_user",
    "learn",
    "personae_shutdown",
    "personae_startup",
    "prompt_sections",
    "register_commands",
    "reply_complete",
    "tick",
]

log = logging.getLogger("personae.plugins.profile")


@hookimpl
async def personae_startup(runtime: Runtime) -> None:
    """Validate the settings and start the idle check."""
    learning.drop_state(runtime)
    st = learning.state(runtime)
    every = st.settings.tick_seconds
    if st.settings.learn and every > 0:
        st.loop = background.repeat(every, lambda: _idle(runtime), name="profile:idle")


async def _idle(runtime: Runtime) -> None:
    """The periodic work: learn from idle conversations, write waiting use counts."""
    await learning.tick(runtime)
    await runtime.memory.flush_uses()


@hookimpl
async def personae_shutdown(runtime: Runtime) -> None:
    """Stop the idle check and learn from the batches still waiting."""
    st = learning.state(runtime)
    await background.cancel(st.loop)
    st.loop = None
    await runtime.memory.flush_uses()
    if st.settings.learn and st.batches:
        grace = runtime.settings.runtime.shutdown_grace_seconds
        try:
            await asyncio.wait_for(learning.flush(runtime), timeout=grace or None)
        except TimeoutError:
            log.warning("profile: learning at shutdown took over %.0f s; the rest is lost", grace)
    learning.drop_state(runtime)


@hookimpl
async def prompt_sections(
    turn: Turn, scopes: list[Scope], history: list[StoredMessage], runtime: Runtime
) -> PromptSection | None:
    """The remembered items most relevant to this turn, as a memory section."""
    settings = learning.state(runtime).settings
    return await recall_section(turn, scopes, history, runtime, settings)


@hookimpl
async def reply_complete(turn: Turn, reply: Reply, runtime: Runtime) -> None:
    """Batch the exchange; learn from the batch when it is ready."""
    if not learning.state(runtime).settings.learn:
        return
    batch = learning.add_exchange(runtime, turn, reply)
    if batch is not None:
        await learn(runtime, batch)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(PROFILE_COMMAND)


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]]:
    """Every item (active and retired) with its revisions."""
    await runtime.memory.flush_uses()
    return await runtime.memory.export(user_id, persona_id)


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    """Delete every item and revision; nothing learned before is written after."""
    await learning.forget(runtime, user_id, persona_id)
    await runtime.memory.flush_uses()  # waiting counts of items that stay
    return await runtime.memory.forget(user_id, persona_id)

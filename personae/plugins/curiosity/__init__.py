"""Curiosity: personas that ask their users follow-up questions.

Built only on public hooks, as a third-party plugin could be. A persona's level
(``extensions.personae.curiosity``: off/low/medium/high) sets how often it may ask
(:class:`.settings.LevelPolicy`). A question is either

- woven into a reply: ``prompt_sections`` adds an instruction asking for one
  short question (about something the user left open, or an area of their life the
  persona knows nothing about), or
- sent on its own: ``reply_complete`` plans a question (the LLM writes it, a
  template stands in when it fails) due after ``idle_seconds`` of silence, and
  :func:`tick` delivers it through :attr:`Runtime.proactive` (an adapter's
  proactive-message capability). The user speaking first cancels it.

Settings: ``[plugin_settings.curiosity]`` (:class:`.settings.CuriositySettings`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from personae.core import background
from personae.core.errors import PersonaeError
from personae.core.hookspecs import hookimpl
from personae.core.types import PromptSection, Turn
from personae.plugins.curiosity import planner, scheduler
from personae.plugins.curiosity.scheduler import tick
from personae.plugins.curiosity.settings import CuriositySettings

if TYPE_CHECKING:
    from personae.core.cards import PersonaCard
    from personae.core.runtime import Reply, Runtime
    from personae.storage.records import StoredMessage

__all__ = [
    "CuriositySettings",
    "export_user_data",
    "forget_user",
    "personae_shutdown",
    "personae_startup",
    "prompt_sections",
    "reply_complete",
    "tick",
]


async def _card(runtime: Runtime, turn: Turn) -> PersonaCard | None:
    try:
        return (await runtime.personas.by_key(turn.scope.persona_id, viewer=turn.user_id)).card
    except PersonaeError:
        return None


@hookimpl
async def personae_startup(runtime: Runtime) -> None:
    """Validate the settings and start delivering due follow-ups."""
    scheduler.drop_state(runtime)
    st = scheduler.state(runtime)
    every = st.settings.tick_seconds
    if every > 0:
        st.loop = background.repeat(every, lambda: scheduler.tick(runtime), name="curiosity:tick")


@hookimpl
async def personae_shutdown(runtime: Runtime) -> None:
    """Stop the delivery loop; pending follow-ups stay stored for the next start."""
    st = scheduler.state(runtime)
    await background.cancel(st.loop)
    st.loop = None
    scheduler.drop_state(runtime)


@hookimpl
async def prompt_sections(
    turn: Turn, persona: PersonaCard, history: list[StoredMessage], runtime: Runtime
) -> list[PromptSection]:
    """The user spoke: cancel what was waiting for them, mention a question they
    were sent while away, and weave a question in when one is due."""
    st = scheduler.state(runtime)
    scope, key = turn.scope, (turn.scope, turn.conversation)
    weaving = scheduler.delivery_mode(runtime, turn.platform) == "woven"
    if not weaving:  # woven questions are never pending: nothing to cancel
        await runtime.followups.cancel_pending(scope, turn.conversation)
    sections: list[PromptSection] = []
    asked = st.asked_away.pop(key, None)
    if asked:
        note = f"While {turn.user_name} was away, you asked them: {asked}"
        sections.append(PromptSection("curiosity-asked", note, kind="memory", order=60))
    card = persona
    if card.settings.curiosity == "off":
        return sections
    if not weaving:
        return sections
    settings = st.settings
    now = runtime.clock.now()
    asked_by_user = sum(1 for message in history if message.role == "user")
    if asked_by_user < settings.min_exchanges or not await planner.may_ask(
        runtime, scope, card.settings.curiosity, settings, now, not_before=st.not_before
    ):
        return sections
    woven = await planner.plan_woven(runtime, card, scope)
    if woven is None:
        return sections
    topic, instruction = woven
    await runtime.followups.create(
        scope,
        conversation=turn.conversation,
        platform=turn.platform,
        topic=topic,
        question=f"(woven into the reply) a question about {topic}",
        due_at=now,
        status="sent",
        now=now,
    )
    sections.append(PromptSection("curiosity", instruction, kind="instructions", order=90))
    return sections


@hookimpl
async def reply_complete(turn: Turn, reply: Reply, runtime: Runtime) -> None:
    """Plan a separate follow-up, due once the user has been idle."""
    card = await _card(runtime, turn)
    if card is None or card.settings.curiosity == "off":
        return
    if scheduler.delivery_mode(runtime, turn.platform) != "separate":
        return
    st = scheduler.state(runtime)
    settings = st.settings
    scope, key = turn.scope, (turn.scope, turn.conversation)
    lock = st.planning.setdefault(key, asyncio.Lock())
    async with lock:
        # A newer exchange supersedes whatever an older one planned.
        await runtime.followups.cancel_pending(scope, turn.conversation)
        latest = await runtime.history.recent(scope, turn.conversation, 1)
        if latest and latest[-1].id > reply.reply_message_id:
            return  # the user has spoken again since
        now = runtime.clock.now()
        if not await planner.enough_exchanges(
            runtime, scope, turn.conversation, settings.min_exchanges
        ) or not await planner.may_ask(
            runtime, scope, card.settings.curiosity, settings, now, not_before=st.not_before
        ):
            return
        plan = await planner.plan_question(
            runtime, card, scope, turn.conversation, user=turn.user_name, settings=settings
        )
        if plan is None:
            return
        await runtime.followups.create(
            scope,
            conversation=turn.conversation,
            platform=turn.platform,
            topic=plan.topic,
            question=plan.question,
            due_at=runtime.clock.now() + timedelta(seconds=settings.idle_seconds),
            now=runtime.clock.now(),
        )


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]]:
    """Every follow-up planned or asked."""
    return await runtime.followups.export(user_id, persona_id)


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    """Delete every follow-up (and forget questions waiting to be mentioned)."""
    st = scheduler.state(runtime)
    for key in [k for k in st.asked_away if k[0].user_id == user_id]:
        if persona_id is None or key[0].persona_id == persona_id:
            del st.asked_away[key]
    for scope in [s for s in st.not_before if s.user_id == user_id]:
        if persona_id is None or scope.persona_id == persona_id:
            del st.not_before[scope]
    return await runtime.followups.forget(user_id, persona_id)

"""Learning from conversations: batching exchanges, extracting, consolidating.

After each delivered reply (the ``reply_complete`` hook, already off the reply
path) the exchange joins its conversation's batch. A batch is learned from when it
holds enough user messages or characters, or — checked by :func:`tick` — when the
conversation has been idle long enough. Learning is one LLM call (no database
transaction open), then one short :meth:`~personae.storage.memory.MemoryStore.session`
in which :func:`~personae.plugins.profile.consolidation.consolidate` applies it.

State lives per runtime (a runtime is the unit that starts and stops), never in a
module global that two runtimes could share.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from personae.core.errors import PersonaeError
from personae.core.plugins import PerRuntime
from personae.core.types import Scope, Turn
from personae.plugins.profile.consolidation import Report, consolidate
from personae.plugins.profile.extraction import Exchange, extract
from personae.plugins.profile.recall import embed_texts
from personae.plugins.profile.settings import ProfileSettings, load_profile_settings

if TYPE_CHECKING:
    from personae.core.runtime import Reply, Runtime

log = logging.getLogger("personae.plugins.profile")


@dataclass(slots=True)
class Batch:
    """Exchanges of one conversation waiting to be learned from."""

    scope: Scope
    conversation: str
    user_name: str
    last_at: datetime
    exchanges: list[Exchange] = field(default_factory=list)
    chars: int = 0


@dataclass(slots=True)
class ProfileState:
    """The profile plugin's state for one runtime."""

    settings: ProfileSettings
    batches: dict[tuple[Scope, str], Batch] = field(default_factory=dict)
    epochs: dict[int, int] = field(default_factory=dict)
    """Bumped per user by forget_user: learning begun before it writes nothing."""
    writing: dict[int, int] = field(default_factory=dict)
    """Consolidations in progress per user (forget_user waits for them)."""
    written: asyncio.Condition = field(default_factory=asyncio.Condition)
    tick_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loop: asyncio.Task[None] | None = None


_states: PerRuntime[ProfileState] = PerRuntime(
    lambda runtime: ProfileState(load_profile_settings(runtime.settings))
)


def state(runtime: Runtime) -> ProfileState:
    """The plugin's state for ``runtime`` (created, with validated settings, on first use)."""
    return _states.get(runtime)


def drop_state(runtime: Runtime) -> ProfileState | None:
    return _states.drop(runtime)


def add_exchange(runtime: Runtime, turn: Turn, reply: Reply) -> Batch | None:
    """Add a delivered exchange to its batch; return the batch when it is ready
    to learn from (and remove it), else None."""
    st = state(runtime)
    settings = st.settings
    key = (turn.scope, turn.conversation)
    now = runtime.clock.now()
    batch = st.batches.get(key)
    if batch is None:
        batch = st.batches[key] = Batch(turn.scope, turn.conversation, turn.user_name, now)
    batch.exchanges.append(
        Exchange(reply.user_message_id, turn.text, reply.reply_message_id, reply.text)
    )
    batch.chars += len(turn.text)
    batch.last_at = now
    batch.user_name = turn.user_name
    ready = (
        len(batch.exchanges) >= settings.extract_after_messages
        or batch.chars >= settings.extract_after_chars
    )
    return st.batches.pop(key) if ready else None


async def learn(runtime: Runtime, batch: Batch) -> Report | None:
    """Extract what ``batch`` reveals about its user and consolidate it into the
    scope's memory. Failures are logged; None when nothing was written."""
    st = state(runtime)
    settings = st.settings
    scope = batch.scope
    epoch = st.epochs.get(scope.user_id, 0)
    try:
        card = (await runtime.personas.by_key(scope.persona_id, viewer=scope.user_id)).card
    except PersonaeError as exc:
        log.warning("profile: cannot learn for %s: %s", scope.persona_id, exc)
        return None
    known = await runtime.memory.list(scope, limit=settings.known_items_in_prompt)
    candidates = await extract(
        runtime.llm,
        settings=settings,
        persona=card.name,
        user=batch.user_name,
        exchanges=batch.exchanges,
        known=known,
    )
    if not candidates:
        return None
    texts = [c.text for c in candidates if c.action != "retire"]
    vectors = await embed_texts(runtime, settings, texts)
    embeddings = dict(zip(texts, vectors, strict=True)) if vectors else {}
    st.writing[scope.user_id] = st.writing.get(scope.user_id, 0) + 1
    try:
        if st.epochs.get(scope.user_id, 0) != epoch:
            log.info("profile: user %s was forgotten meanwhile; not learning", scope.user_id)
            return None
        async with runtime.memory.session(scope, now=runtime.clock.now()) as session:
            report = await consolidate(
                session,
                candidates,
                message_id=batch.exchanges[-1].user_message_id,
                max_items=settings.max_items,
                embeddings=embeddings,
            )
    finally:
        async with st.written:
            st.writing[scope.user_id] -= 1
            st.written.notify_all()
    log.info(
        "profile: %s/%s learned: +%d ~%d -%d (duplicates %d, evicted %d)",
        scope.persona_id,
        scope.user_id,
        len(report.added),
        len(report.updated),
        len(report.retired),
        report.duplicates,
        len(report.evicted),
    )
    return report


async def tick(runtime: Runtime) -> int:
    """Learn from every batch whose conversation has been idle for
    ``idle_seconds`` (by the runtime's clock); returns how many batches.
    The background loop calls this; tests call it after moving a ManualClock."""
    st = state(runtime)
    async with st.tick_lock:
        now = runtime.clock.now()
        idle = st.settings.idle_seconds
        due = [k for k, b in st.batches.items() if (now - b.last_at).total_seconds() >= idle]
        tasks = []
        for key in due:
            batch = st.batches.pop(key)
            tasks.append(
                runtime.background.spawn(
                    lambda batch=batch: learn(runtime, batch),  # type: ignore[misc]
                    name=f"profile:learn:{batch.scope.persona_id}",
                )
            )
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)


async def flush(runtime: Runtime) -> int:
    """Learn from every waiting batch now (at shutdown); returns how many."""
    st = state(runtime)
    batches = list(st.batches.values())
    st.batches.clear()
    for batch in batches:
        try:
            await learn(runtime, batch)
        except Exception:
            log.exception("profile: learning at shutdown failed")
    return len(batches)


async def forget(runtime: Runtime, user_id: int, persona_id: str | None) -> None:
    """Drop waiting batches of a user and wait out consolidations in progress, so
    nothing learned before the forget is written after it."""
    st = state(runtime)
    st.epochs[user_id] = st.epochs.get(user_id, 0) + 1
    for key in [k for k in st.batches if k[0].user_id == user_id]:
        if persona_id is None or key[0].persona_id == persona_id:
            del st.batches[key]
    async with st.written:
        await st.written.wait_for(lambda: st.writing.get(user_id, 0) == 0)

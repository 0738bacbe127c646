"""Recall: the remembered items a turn's prompt carries.

The items most relevant to the current message (and, at half weight, to the
recent conversation) within the token budget of ``[memory]``: keyword relevance,
recency and confidence, plus embedding similarity when ``embeddings`` is on.
Only the turn's readable scopes are searched: its own, and those its persona's
sharing group opens. Items that reach the prompt have their use counted (in the
background), which keeps them from eviction.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from personae.core.errors import LLMError
from personae.core.types import PromptSection, Scope, Turn
from personae.plugins.profile.settings import ProfileSettings
from personae.storage.records import MemoryRecord, StoredMessage

if TYPE_CHECKING:
    from personae.core.runtime import Runtime

log = logging.getLogger("personae.plugins.profile")
USES_FLUSH_AT = 500
"""Waiting use counts written at once when this many items collect (they are also
written by the idle loop, at shutdown, and before an export)."""


async def embed_texts(
    runtime: Runtime, settings: ProfileSettings, texts: list[str]
) -> list[list[float]] | None:
    """Embedding vectors for ``texts`` (Ollama ``/api/embed``), or None when
    embeddings are off or the call failed (logged)."""
    if not settings.embeddings or not texts:
        return None
    try:
        return await asyncio.wait_for(
            runtime.llm.embed(texts, model=settings.embed_model), timeout=settings.embed_timeout
        )
    except (LLMError, TimeoutError) as exc:
        log.warning("profile: embedding failed (%s); using keywords only", exc)
        return None


def render_item(item: MemoryRecord, persona_key: str, names: dict[str, str] | None = None) -> str:
    """One prompt line; an item shared from another persona says who noted it
    (``names`` maps persona keys, which items carry, to the ids users know)."""
    if item.persona_id == persona_key:
        return f"({item.kind}) {item.text}"
    noted_by = (names or {}).get(item.persona_id, item.persona_id)
    return f"({item.kind}, noted by {noted_by}) {item.text}"


async def recall_section(
    turn: Turn,
    scopes: list[Scope],
    history: list[StoredMessage],
    runtime: Runtime,
    settings: ProfileSettings,
) -> PromptSection | None:
    """The ``profile`` memory section for ``turn``, or None when nothing fits."""
    memory = runtime.settings.memory
    if memory.recall_max_items <= 0 or memory.recall_budget_tokens <= 0:
        return None
    context = ""
    if settings.recall_context_messages:
        recent = history[-settings.recall_context_messages :]
        context = "\n".join(message.content for message in recent)
    vectors = await embed_texts(runtime, settings, [turn.text])
    now = runtime.clock.now()
    items = await runtime.memory.recall(
        scopes,
        turn.text,
        context=context,
        query_embedding=vectors[0] if vectors else None,
        max_items=memory.recall_max_items,
        budget_tokens=memory.recall_budget_tokens,
        candidates=memory.recall_candidates,
        now=now,
    )
    if not items:
        return None
    used = [item.id for item in items]
    if runtime.memory.note_use(scopes, used, now=now) >= USES_FLUSH_AT:
        runtime.background.spawn(runtime.memory.flush_uses, name="profile:uses")
    key = turn.scope.persona_id
    names: dict[str, str] = {}
    if any(item.persona_id != key for item in items):
        names = {entry.key: entry.id for entry in await runtime.personas.list(turn.user_id)}
    lines = [render_item(item, key, names) for item in items]
    return PromptSection(name="profile", text="\n".join(lines), kind="memory", order=50)

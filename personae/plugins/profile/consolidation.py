"""Merging what an extraction found into what a persona already knows.

Runs inside a :class:`~personae.storage.memory.MemorySession`, so it sees the
scope's items as they are now (not as they were when the LLM was asked) and no
other consolidation of the scope can interleave. The LLM's own ``update`` and
``retire`` proposals are applied to the items they name; each ``add`` is compared
with every known item by :func:`~personae.plugins.profile.likeness.relation`:

- a **duplicate** or **vaguer** note is merged into the item it restates: the item
  keeps its text and takes the note's messages, and a ``merge`` revision records
  the note;
- a **refining** note (everything the item says, and more) becomes the item's new
  text, with an ``update`` revision keeping the old one;
- a **contradicting** note (the item's words with a negation added or dropped)
  retires the item (a ``retire`` revision) and is added;
- a **distinct** note is added.

Every revision names the message that caused it, and every merge is logged at
INFO with both texts. The least useful items are evicted beyond the scope's
limit. Proposals about items deleted meanwhile write nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from personae.plugins.profile.extraction import Candidate
from personae.plugins.profile.likeness import Relation, is_duplicate, relation, same_words
from personae.storage.memory import MemorySession
from personae.storage.records import MemoryRecord

__all__ = ["Report", "closest", "consolidate", "is_duplicate", "normalize", "relation"]

log = logging.getLogger("personae.plugins.profile")

_NOISE = re.compile(r"[^a-z0-9 ]+")
_SUBJECT = re.compile(r"^(the user|user|they|he|she)\s+")
_PRECEDENCE: dict[Relation, int] = {"duplicate": 0, "vaguer": 1, "contradicts": 2, "refines": 3}


def normalize(text: str) -> str:
    """Lower case, no punctuation, no leading "the user": a memory item's identity
    in exports and imports (:func:`~personae.portability.records.natural_key`).
    Not a duplicate test: "C#" and "C++" normalise alike (see :mod:`.likeness`)."""
    plain = " ".join(_NOISE.sub(" ", text.lower()).split())
    return _SUBJECT.sub("", plain)


def closest(items: Sequence[MemoryRecord], text: str) -> tuple[MemoryRecord, Relation] | None:
    """The known item ``text`` relates to most closely, and how; None when the
    note is distinct from every item. A duplicate wins over a vaguer restatement,
    that over a contradiction, that over a refinement; among equals the longest
    item (the most precise) wins."""
    best: tuple[int, int, MemoryRecord, Relation] | None = None
    for item in items:
        found = relation(item.text, text)
        if found == "distinct":
            continue
        rank = (_PRECEDENCE[found], -len(item.text))
        if best is None or rank < best[:2]:
            best = (*rank, item, found)
    return None if best is None else (best[2], best[3])


@dataclass(slots=True)
class Report:
    """What one consolidation did."""

    added: list[MemoryRecord] = field(default_factory=list)
    updated: list[MemoryRecord] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    duplicates: int = 0
    stale: int = 0
    """Proposals about items that no longer exist (deleted meanwhile): ignored."""
    evicted: list[MemoryRecord] = field(default_factory=list)


async def consolidate(
    session: MemorySession,
    candidates: Sequence[Candidate],
    *,
    message_id: int | None,
    max_items: int,
    embeddings: Mapping[str, list[float]] | None = None,
) -> Report:
    """Apply ``candidates`` to the scope of ``session``; ``message_id`` is recorded
    on the revisions as the message that caused them."""
    vectors = embeddings or {}
    report = Report()
    for candidate in candidates:
        if candidate.action == "retire":
            assert candidate.item_id is not None
            if await session.retire(candidate.item_id, message_id=message_id):
                report.retired.append(candidate.item_id)
            else:
                report.stale += 1
        elif candidate.action == "update":
            await _update(session, candidate, vectors, message_id, report)
        else:
            await _add(session, candidate, vectors, message_id, report)
    report.evicted = await session.evict(max_items)
    return report


async def _update(
    session: MemorySession,
    candidate: Candidate,
    vectors: Mapping[str, list[float]],
    message_id: int | None,
    report: Report,
) -> None:
    """The LLM's update of a known item; one that changes only case, order or
    punctuation is a merge (the item keeps its text)."""
    assert candidate.item_id is not None
    current = session.get(candidate.item_id)
    if current is None:
        report.stale += 1  # deleted meanwhile: do not bring it back
        return
    if same_words(current.text, candidate.text):
        await _merge(session, current, candidate, message_id, keep=False)
        report.duplicates += 1
        return
    updated = await session.update(
        candidate.item_id,
        text=candidate.text,
        kind=candidate.kind,
        confidence=candidate.confidence,
        add_sources=candidate.message_ids,
        embedding=vectors.get(candidate.text),
        message_id=message_id,
    )
    if updated is None:
        report.stale += 1
    else:
        report.updated.append(updated)


async def _add(
    session: MemorySession,
    candidate: Candidate,
    vectors: Mapping[str, list[float]],
    message_id: int | None,
    report: Report,
) -> None:
    """A new note: merged, made an update, contradicting or added (see the module)."""
    match = closest(session.items, candidate.text)
    known, how = match if match is not None else (None, "distinct")
    if known is not None and how in ("duplicate", "vaguer"):
        await _merge(session, known, candidate, message_id, keep=True)
        report.duplicates += 1
        return
    if known is not None and how == "refines":
        refined = await session.update(
            known.id,
            text=candidate.text,
            confidence=max(known.confidence, candidate.confidence),
            add_sources=candidate.message_ids,
            embedding=vectors.get(candidate.text),
            message_id=message_id,
        )
        if refined is not None:
            log.info("profile: item %s refined: %r -> %r", known.id, known.text, refined.text)
            report.updated.append(refined)
            return
    if known is not None and how == "contradicts":
        if await session.retire(known.id, message_id=message_id):
            log.info(
                "profile: item %s retired, contradicted: %r by %r",
                known.id,
                known.text,
                candidate.text,
            )
            report.retired.append(known.id)
    report.added.append(
        await session.add(
            candidate.text,
            kind=candidate.kind,
            confidence=candidate.confidence,
            source_message_ids=candidate.message_ids,
            embedding=vectors.get(candidate.text),
        )
    )


async def _merge(
    session: MemorySession,
    known: MemoryRecord,
    candidate: Candidate,
    message_id: int | None,
    *,
    keep: bool,
) -> MemoryRecord | None:
    """Fold ``candidate`` into ``known`` (a ``merge`` revision). With ``keep`` (an
    ``add`` that restates the item) the item keeps its kind and the higher
    confidence; else (an ``update`` naming it) it takes the candidate's."""
    merged = await session.merge(
        known.id,
        candidate.text,
        kind=None if keep else candidate.kind,
        confidence=max(known.confidence, candidate.confidence) if keep else candidate.confidence,
        sources=candidate.message_ids,
        message_id=message_id,
    )
    if merged is not None:
        log.info(
            "profile: %s/%s merged %r into item %s %r",
            session.scope.persona_id,
            session.scope.user_id,
            candidate.text,
            known.id,
            known.text,
        )
    return merged

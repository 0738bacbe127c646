"""Merging what an extraction found into what a persona already knows.

Runs inside a :class:`~personae.storage.memory.MemorySession`, so it sees the
scope's items as they are now (not as they were when the LLM was asked) and no
other consolidation of the scope can interleave: new items are added, changed ones
updated, contradicted ones retired (both keep a revision naming the message),
duplicates ignored, and the least useful items evicted beyond the scope's limit.
Proposals about items deleted meanwhile write nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from personae.plugins.profile.extraction import Candidate
from personae.storage.memory import MemorySession, keywords
from personae.storage.records import MemoryRecord

DUPLICATE_SIMILARITY = 0.8
_NOISE = re.compile(r"[^a-z0-9 ]+")
_SUBJECT = re.compile(r"^(the user|user|they|he|she)\s+")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no leading "the user": for comparing notes."""
    plain = " ".join(_NOISE.sub(" ", text.lower()).split())
    return _SUBJECT.sub("", plain)


def is_duplicate(known: str, new: str) -> bool:
    """True when ``new`` says what ``known`` already says (same words, give or take)."""
    a, b = normalize(known), normalize(new)
    if a == b:
        return True
    words_a, words_b = keywords(a), keywords(b)
    if not words_a or not words_b:
        return False
    overlap = len(words_a & words_b) / len(words_a | words_b)
    return overlap >= DUPLICATE_SIMILARITY


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
            continue
        if candidate.action == "update":
            assert candidate.item_id is not None
            current = session.get(candidate.item_id)
            if current is None:
                report.stale += 1  # deleted meanwhile: do not bring it back
                continue
            same = normalize(current.text) == normalize(candidate.text)
            updated = await session.update(
                candidate.item_id,
                text=None if same else candidate.text,
                kind=candidate.kind,
                confidence=candidate.confidence,
                add_sources=candidate.message_ids,
                embedding=None if same else vectors.get(candidate.text),
                message_id=message_id,
            )
            if updated is None:
                report.stale += 1
            elif same:
                report.duplicates += 1
            else:
                report.updated.append(updated)
            continue
        duplicate = next(
            (item for item in session.items if is_duplicate(item.text, candidate.text)), None
        )
        if duplicate is not None:
            report.duplicates += 1
            await session.update(
                duplicate.id,
                confidence=max(duplicate.confidence, candidate.confidence),
                add_sources=candidate.message_ids,
            )
            continue
        report.added.append(
            await session.add(
                candidate.text,
                kind=candidate.kind,
                confidence=candidate.confidence,
                source_message_ids=candidate.message_ids,
                embedding=vectors.get(candidate.text),
            )
        )
    report.evicted = await session.evict(max_items)
    return report

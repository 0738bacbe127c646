"""``personae memory merge --from A --into B``: what persona A knows about its users,
consolidated into persona B with the rules learning uses.

Each of A's items is offered to B's scope of the same user as an ``add``
candidate (with its source messages) to
:func:`~personae.plugins.profile.consolidation.consolidate`, inside one
:meth:`~personae.storage.memory.MemoryStore.session` per user, so the rules of
:mod:`~personae.plugins.profile.likeness` decide: a duplicate or vaguer note is
merged into B's item (which keeps the higher confidence and gets a ``merge``
revision), a more precise one updates it, a negated one retires it, a distinct
one is added; then B's scope is evicted down to the profile plugin's
``max_items``. A's memory is left as it is. A dry run performs the same session
and rolls it back, so it reports exactly what the real run would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.plugins.profile.consolidation import Report, consolidate
from personae.plugins.profile.extraction import Candidate
from personae.plugins.profile.safety import screen_memory
from personae.plugins.profile.settings import load_profile_settings
from personae.portability.errors import PortabilityError
from personae.portability.progress import NoProgress, Progress
from personae.storage import MemoryStore
from personae.storage.models import MemoryItem


class _DryRun(Exception):
    def __init__(self, report: Report) -> None:
        super().__init__("dry run")
        self.report = report


@dataclass(slots=True)
class ScopeMerge:
    user_id: int
    offered: int
    added: list[str] = field(default_factory=list)
    duplicates: int = 0
    evicted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    """B's items given a more precise text from A (their new texts)."""
    retired: int = 0
    """B's items a note of A contradicted."""
    refused: int = 0
    """Items not merged because they read as instructions (the memory screen)."""


@dataclass(slots=True)
class MergeResult:
    source: str
    target: str
    dry_run: bool
    scopes: list[ScopeMerge] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(len(s.added) for s in self.scopes)


async def merge_memory(
    settings: Settings,
    source: str,
    target: str,
    *,
    user_id: int | None = None,
    dry_run: bool = True,
    progress: Progress | None = None,
) -> MergeResult:
    """Merge ``source``'s memory into ``target`` (the database must be connected)."""
    if source == target:
        raise PortabilityError("--from and --into name the same persona; nothing to merge.")
    shown = progress or NoProgress()
    max_items = load_profile_settings(settings).max_items
    query = MemoryItem.filter(persona_id=source)
    if user_id is not None:
        query = query.filter(user_id=user_id)
    users = sorted({int(row["user_id"]) for row in await query.values("user_id")})
    result = MergeResult(source, target, dry_run)
    store = MemoryStore()
    shown.start("users", len(users))
    for uid in users:
        known = list(reversed(await store.list(Scope(source, uid))))  # oldest first
        candidates: list[Candidate] = []
        refused = 0
        for item in known:  # stored before screening existed, or edited in the database
            cleaned, reason = screen_memory(item.text)
            if reason is None:
                candidates.append(
                    Candidate(
                        "add",
                        item.kind,
                        cleaned,
                        item.confidence,
                        message_ids=tuple(item.source_message_ids),
                    )
                )
            else:
                refused += 1
        try:
            async with store.session(Scope(target, uid)) as session:
                report = await consolidate(
                    session, candidates, message_id=None, max_items=max_items
                )
                if dry_run:
                    raise _DryRun(report)  # leaves the session: its transaction rolls back
        except _DryRun as stopped:
            report = stopped.report
        result.scopes.append(
            ScopeMerge(
                uid,
                len(known),
                [item.text for item in report.added],
                report.duplicates,
                [item.text for item in report.evicted],
                [item.text for item in report.updated],
                len(report.retired),
                refused,
            )
        )
        shown.advance("users")
    return result

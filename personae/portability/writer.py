"""Writing an :class:`~personae.portability.records.ImportBatch` into the database.

``dry_run=True`` reads the database and reports what would change, writing nothing.
Otherwise everything is written in one transaction; the run's manifest (every row
id created) is saved before the commit and completed after it; then the rows are
read back and compared with what was meant to be written. A mismatch rolls the
run back and raises. Records already present (for memory, a note of the same kind
that the scope's item restates by consolidation's rules,
:func:`~personae.plugins.profile.likeness.is_duplicate`; for messages, the same
role, text and time) are counted as existing and not written again, so a second
run writes nothing. A note that only refines a known item is imported next to it:
an import never changes rows it did not create.

Like the stores in :mod:`personae.storage`, this module writes the ORM models
directly: an import spans many scopes and must be one transaction, which the
per-scope stores do not offer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from personae.core.cards import card_to_dict
from personae.core.settings import Settings
from personae.plugins.profile.likeness import Restatements
from personae.portability import manifest as runs
from personae.portability.errors import PortabilityError
from personae.portability.progress import NoProgress, Progress
from personae.portability.records import ImportBatch, MessageIn, Problem, UserRef
from personae.storage import models as m
from personae.storage.database import describe

CHUNK = 500


@dataclass(slots=True)
class Count:
    new: int = 0
    existing: int = 0
    duplicate: int = 0
    """The same record more than once in the source (written once)."""


@dataclass(slots=True)
class ImportResult:
    kind: str
    source: str
    dry_run: bool
    counts: dict[str, Count]
    problems: list[Problem]
    files_read: int = 0
    run_id: str | None = None
    manifest: Path | None = None
    verified: bool = False

    @property
    def written(self) -> int:
        return 0 if self.dry_run else sum(c.new for c in self.counts.values())


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def chunks(values: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


@dataclass(slots=True)
class _Expected:
    """What the run meant to write, to compare with what the database holds."""

    users: list[int] = field(default_factory=list)
    identities: list[int] = field(default_factory=list)
    personas: list[str] = field(default_factory=list)
    conversations: list[int] = field(default_factory=list)
    messages: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    items: dict[int, tuple[str, int, str, str]] = field(default_factory=dict)


class _Writer:
    def __init__(
        self,
        conn: BaseDBAsyncClient | None,
        manifest: runs.Manifest | None,
        progress: Progress,
        now: datetime,
    ) -> None:
        self.conn = conn
        self.write = conn is not None
        self.manifest = manifest
        self.progress = progress
        self.now = now
        self.counts = {
            name: Count()
            for name in ("users", "personas", "memory_items", "conversations", "messages")
        }
        self.problems: list[Problem] = []
        self.expected = _Expected()
        self._users: dict[str, tuple[int | None, bool]] = {}

    def _created(self, table: str, row_id: Any) -> None:
        assert self.manifest is not None
        self.manifest.add(table, row_id)

    async def _find_user(self, ref: UserRef) -> int | None:
        for platform, external_id in ref.identities:
            found = await (
                m.Identity.filter(platform=platform, external_id=external_id)
                .using_db(self.conn)
                .values("user_id")
            )
            if found:
                return int(found[0]["user_id"])
        if ref.username:
            users = await m.User.filter(username=ref.username).using_db(self.conn).values("id")
            if users:
                return int(users[0]["id"])
        if ref.user_id is not None and not ref.identities and not ref.username:
            if await m.User.filter(id=ref.user_id).using_db(self.conn).exists():
                return ref.user_id
        return None

    async def user(self, ref: UserRef) -> tuple[int | None, bool]:
        """The user's id (None in a dry run for a user yet to be created) and
        whether the user existed before this run."""
        if ref.key in self._users:
            return self._users[ref.key]
        user_id = await self._find_user(ref)
        existed = user_id is not None
        if existed:
            self.counts["users"].existing += 1
        else:
            self.counts["users"].new += 1
            if self.write:
                user = await m.User.create(
                    name=(ref.name or ref.key)[:100], username=ref.username, using_db=self.conn
                )
                user_id = user.id
                self._created("users", user.id)
                self.expected.users.append(user.id)
                for platform, external_id in ref.identities:
                    identity = await m.Identity.create(
                        user_id=user.id,
                        platform=platform,
                        external_id=external_id,
                        using_db=self.conn,
                    )
                    self._created("identities", identity.id)
                    self.expected.identities.append(identity.id)
        self._users[ref.key] = (user_id, existed)
        return user_id, existed

    async def personas(self, batch: ImportBatch) -> None:
        self.progress.start("personas", len(batch.personas))
        seen: set[str] = set()
        for persona in batch.personas:
            self.progress.advance("personas")
            card = persona.card
            if card.id in seen:
                self.counts["personas"].duplicate += 1
                continue
            seen.add(card.id)
            document = card_to_dict(card)
            stored = (
                await m.Persona.filter(id=card.id)
                .using_db(self.conn)
                .values_list("card", flat=True)
            )
            if stored:
                self.counts["personas"].existing += 1
                if stored[0] != document:
                    self.problems.append(
                        Problem(persona.source, f"persona {card.id!r} already exists; kept it")
                    )
                continue
            owner_id = (await self.user(persona.owner))[0] if persona.owner else None
            self.counts["personas"].new += 1
            if self.write:
                await m.Persona.create(
                    key=card.id,  # as for rows stored before keys: no persona has this id
                    id=card.id,
                    card=document,
                    owner_id=owner_id,
                    shared=persona.shared,
                    using_db=self.conn,
                )
                self._created("personas", card.id)
                self.expected.personas.append(card.id)

    async def items(self, batch: ImportBatch) -> None:
        self.progress.start("memory items", len(batch.items))
        in_db: dict[tuple[str, str, str], Restatements] = {}
        seen: dict[tuple[str, str, str], Restatements] = {}
        for item in batch.items:
            self.progress.advance("memory items")
            user_id, existed = await self.user(item.user)
            scope = (item.persona_id, item.user.key, item.kind)
            if scope not in in_db:
                known: list[Any] = []
                if existed:
                    known = await (
                        m.MemoryItem.filter(
                            persona_id=item.persona_id, user_id=user_id, kind=item.kind
                        )
                        .using_db(self.conn)
                        .values_list("text", flat=True)
                    )
                in_db[scope], seen[scope] = Restatements(known), Restatements()
            if seen[scope].restated(item.text) is not None:
                self.counts["memory_items"].duplicate += 1
                continue
            seen[scope].add(item.text)
            if in_db[scope].restated(item.text) is not None:
                self.counts["memory_items"].existing += 1
                continue
            self.counts["memory_items"].new += 1
            if not self.write:
                continue
            assert user_id is not None
            stamp = item.created_at or self.now
            row = await m.MemoryItem.create(
                persona_id=item.persona_id,
                user_id=user_id,
                kind=item.kind,
                text=item.text,
                confidence=item.confidence,
                source_message_ids=[],
                created_at=stamp,
                using_db=self.conn,
            )
            await (
                m.MemoryItem.filter(id=row.id)
                .using_db(self.conn)
                .update(
                    updated_at=item.updated_at or stamp,
                    uses=item.uses,
                    last_used_at=item.last_used_at,
                )
            )
            self._created("memory_items", row.id)
            self.expected.items[row.id] = (item.persona_id, user_id, item.kind, item.text)

    async def conversations(self, batch: ImportBatch) -> None:
        self.progress.start("messages", sum(len(c.messages) for c in batch.conversations))
        for conversation in batch.conversations:
            user_id, existed = await self.user(conversation.user)
            row = None
            if existed:
                row = (
                    await m.Conversation.filter(
                        persona_id=conversation.persona_id, user_id=user_id, key=conversation.key
                    )
                    .using_db(self.conn)
                    .first()
                )
            # How often each message is stored: a source may say "lol" twice, and
            # both are written once each, not the second taken for the first.
            timed: Counter[tuple[str, ...]] = Counter()
            untimed: Counter[tuple[str, ...]] = Counter()
            if row is not None:
                stored = (
                    await m.Message.filter(conversation_id=row.id)
                    .using_db(self.conn)
                    .values_list("role", "content", "created_at")
                )
                for role, content, created in stored:
                    timed[(role, content, _iso(created))] += 1
                    untimed[(role, content)] += 1
            fresh: list[MessageIn] = []
            for message in conversation.messages:
                self.progress.advance("messages")
                key: tuple[str, ...] = (message.role, message.content)
                counter = untimed
                if message.created_at is not None:
                    counter, key = timed, (*key, _iso(message.created_at))
                if counter[key] > 0:
                    counter[key] -= 1
                    self.counts["messages"].existing += 1
                    continue
                fresh.append(message)
            self.counts["messages"].new += len(fresh)
            if row is not None:
                self.counts["conversations"].existing += 1
            elif fresh:
                self.counts["conversations"].new += 1
            if not self.write or not fresh:
                continue
            assert user_id is not None
            if row is None:
                row = await m.Conversation.create(
                    persona_id=conversation.persona_id,
                    user_id=user_id,
                    key=conversation.key,
                    using_db=self.conn,
                )
                self._created("conversations", row.id)
                self.expected.conversations.append(row.id)
            last = self.now
            for message in fresh:
                last = message.created_at or self.now
                created = await m.Message.create(
                    conversation_id=row.id,
                    persona_id=conversation.persona_id,
                    user_id=user_id,
                    role=message.role,
                    content=message.content,
                    created_at=last,
                    using_db=self.conn,
                )
                self._created("messages", created.id)
                self.expected.messages[created.id] = (row.id, message.role, message.content)
            await m.Conversation.filter(id=row.id).using_db(self.conn).update(updated_at=last)

    async def run(self, batch: ImportBatch) -> None:
        await self.personas(batch)
        await self.items(batch)
        await self.conversations(batch)


async def _count(model: Any, ids: Sequence[Any]) -> int:
    total = 0
    for part in chunks(ids):
        total += await model.filter(pk__in=part).count()
    return total


async def verify(expected: _Expected) -> list[str]:
    """Read back what the run wrote; the differences from what it meant to write."""
    wrong: list[str] = []
    for name, model, ids in (
        ("users", m.User, expected.users),
        ("identities", m.Identity, expected.identities),
        ("personas", m.Persona, expected.personas),
        ("conversations", m.Conversation, expected.conversations),
    ):
        found = await _count(model, ids)
        if found != len(ids):
            wrong.append(f"{name}: expected {len(ids)}, found {found}")
    items: dict[int, tuple[str, int, str, str]] = {}
    for part in chunks(list(expected.items)):
        rows = await m.MemoryItem.filter(id__in=part).values_list(
            "id", "persona_id", "user_id", "kind", "text"
        )
        items.update({row[0]: tuple(row[1:]) for row in rows})
    if items != expected.items:
        wrong.append(f"memory items: {len(expected.items)} written, {len(items)} read back intact")
    messages: dict[int, tuple[int, str, str]] = {}
    for part in chunks(list(expected.messages)):
        rows = await m.Message.filter(id__in=part).values_list(
            "id", "conversation_id", "role", "content"
        )
        messages.update({row[0]: tuple(row[1:]) for row in rows})
    if messages != expected.messages:
        wrong.append(
            f"messages: {len(expected.messages)} written, {len(messages)} read back intact"
        )
    return wrong


async def run_import(
    settings: Settings,
    batch: ImportBatch,
    *,
    dry_run: bool,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Plan (``dry_run``) or write ``batch``; the database must be connected."""
    stamp = now or datetime.now(UTC)
    shown = progress or NoProgress()
    result = ImportResult(batch.kind, batch.source, dry_run, {}, list(batch.problems))
    result.files_read = batch.files_read
    if dry_run:
        writer = _Writer(None, None, shown, stamp)
        await writer.run(batch)
        result.counts, result.problems = writer.counts, [*result.problems, *writer.problems]
        return result
    manifest = runs.Manifest(
        run_id=runs.new_run_id(batch.kind, stamp),
        kind=batch.kind,
        source=batch.source,
        database=describe(settings.db_url),
        started_at=stamp.isoformat(),
    )
    saved = False
    try:
        async with in_transaction("default") as conn:
            writer = _Writer(conn, manifest, shown, stamp)
            await writer.run(batch)
            result.counts, result.problems = writer.counts, [*result.problems, *writer.problems]
            manifest.counts = {name: asdict(count) for name, count in writer.counts.items()}
            manifest.problems = [asdict(problem) for problem in result.problems]
            if manifest.created_total:
                runs.save(settings, manifest)  # before the commit: a crash cannot lose it
                saved = True
    except BaseException:
        if saved:
            manifest.status = "failed"
            runs.save(settings, manifest)
        raise
    if not saved:
        result.verified = True  # nothing written, nothing to check
        return result
    manifest.status = "complete"
    manifest.finished_at = datetime.now(UTC).isoformat()
    result.run_id, result.manifest = manifest.run_id, runs.save(settings, manifest)
    wrong = await verify(writer.expected)
    if wrong:
        await runs.rollback(settings, manifest.run_id)
        raise PortabilityError(
            f"Import run {manifest.run_id} did not read back as written ({'; '.join(wrong)}); "
            "it was rolled back."
        )
    result.verified = True
    return result

"""Import runs: the manifest of every row a run created, and rolling a run back.

A run's manifest is ``<data_dir>/imports/<run id>.json``. It is written inside the
run's transaction, before the commit (status ``"writing"``), and marked
``"complete"`` after it, so a crash between the two leaves a manifest that still
rolls back exactly what was committed. :func:`rollback` deletes exactly the rows
the manifest lists, in one transaction. A user (with their identities) or a
conversation the run created is kept when it has gained data since — deleting it
would take that data with it — and the report names what was kept.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from personae.core.settings import Settings
from personae.portability.errors import PortabilityError
from personae.storage import models as m
from personae.storage.database import describe

FORMAT = 1
TABLES = ("users", "identities", "personas", "conversations", "messages", "memory_items")
_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def imports_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "imports"


def new_run_id(kind: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


@dataclass(slots=True)
class Manifest:
    """One import run: where from, into which database, and the ids it created."""

    run_id: str
    kind: str
    source: str
    database: str
    started_at: str
    status: str = "writing"  # writing | complete | failed | rolled_back
    created: dict[str, list[Any]] = field(default_factory=lambda: {t: [] for t in TABLES})
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    finished_at: str | None = None
    rolled_back_at: str | None = None
    rollback_kept: dict[str, list[Any]] = field(default_factory=dict)
    format: int = FORMAT

    def add(self, table: str, row_id: Any) -> None:
        self.created[table].append(row_id)

    @property
    def created_total(self) -> int:
        return sum(len(ids) for ids in self.created.values())


def manifest_path(settings: Settings, run_id: str) -> Path:
    if not run_id or not set(run_id) <= _RUN_ID_CHARS:
        raise PortabilityError(f"{run_id!r} is not an import run id (see `personae import runs`).")
    return imports_dir(settings) / f"{run_id}.json"


def save(settings: Settings, manifest: Manifest) -> Path:
    """Write the manifest atomically (a crash never leaves half a file)."""
    path = manifest_path(settings, manifest.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(asdict(manifest), handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load(settings: Settings, run_id: str) -> Manifest:
    path = manifest_path(settings, run_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PortabilityError(
            f"There is no import run {run_id!r} under {path.parent} "
            "(`personae import runs` lists them)."
        ) from None
    except (OSError, ValueError) as exc:
        raise PortabilityError(f"The manifest {path} is unreadable: {exc}") from None
    if data.get("format") != FORMAT:
        raise PortabilityError(f"The manifest {path} has an unknown format {data.get('format')!r}.")
    created = {t: list(data.get("created", {}).get(t, [])) for t in TABLES}
    return Manifest(**{**data, "created": created})


def runs(settings: Settings) -> list[Manifest]:
    """Every recorded run, oldest first."""
    folder = imports_dir(settings)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(load(settings, path.stem))
        except PortabilityError:
            continue
    return sorted(found, key=lambda r: r.started_at)


_USER_TABLES: tuple[type[Any], ...] = (
    m.Conversation,
    m.Message,
    m.MemoryItem,
    m.MemoryRevision,
    m.FollowUp,
    m.PluginState,
    m.ApiToken,
    m.WebSession,
    m.VoiceUsage,
)


async def _user_has_other_data(conn: BaseDBAsyncClient, user_id: int, identities: set[int]) -> bool:
    for model in _USER_TABLES:
        if await model.filter(user_id=user_id).using_db(conn).exists():
            return True
    if await m.VoiceSample.filter(owner_id=user_id).using_db(conn).exists():
        return True
    if await m.Persona.filter(owner_id=user_id).using_db(conn).exists():
        return True
    own = await m.Identity.filter(user_id=user_id).using_db(conn).values_list("id", flat=True)
    if set(own) - identities:
        return True
    user = await m.User.filter(id=user_id).using_db(conn).first()
    return user is not None and user.password_hash is not None


async def rollback(settings: Settings, run_id: str) -> Manifest:
    """Delete exactly the rows run ``run_id`` created, in one transaction."""
    manifest = load(settings, run_id)
    if manifest.status == "rolled_back":
        raise PortabilityError(f"Import run {run_id} was already rolled back.")
    if manifest.status == "failed":
        raise PortabilityError(f"Import run {run_id} failed and wrote nothing to roll back.")
    here = describe(settings.db_url)
    if manifest.database != here:
        raise PortabilityError(
            f"Import run {run_id} wrote to {manifest.database}, but the settings point at "
            f"{here}; run the rollback with the settings of that database."
        )
    created = manifest.created
    kept: dict[str, list[Any]] = {"users": [], "conversations": []}
    async with in_transaction("default") as conn:
        items = created["memory_items"]
        if items:
            await m.MemoryRevision.filter(item_id__in=items).using_db(conn).delete()
            await m.MemoryItem.filter(id__in=items).using_db(conn).delete()
        if created["messages"]:
            await m.Message.filter(id__in=created["messages"]).using_db(conn).delete()
        for conversation_id in created["conversations"]:
            if await m.Message.filter(conversation_id=conversation_id).using_db(conn).exists():
                kept["conversations"].append(conversation_id)
            else:
                await m.Conversation.filter(id=conversation_id).using_db(conn).delete()
        if created["personas"]:
            await m.Persona.filter(key__in=created["personas"]).using_db(conn).delete()
        identities = set(created["identities"])
        for user_id in created["users"]:
            if await _user_has_other_data(conn, user_id, identities):
                kept["users"].append(user_id)
            else:
                await m.Identity.filter(user_id=user_id).using_db(conn).delete()
                await m.User.filter(id=user_id).using_db(conn).delete()
    manifest.status = "rolled_back"
    manifest.rolled_back_at = datetime.now(UTC).isoformat()
    manifest.rollback_kept = kept
    save(settings, manifest)
    return manifest

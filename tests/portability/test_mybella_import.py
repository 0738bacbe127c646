"""Importing a MyBella database: personas, conversations and memory items, with
the same dry run, idempotency and rollback — on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import rollback, run_import
from personae.portability.errors import PortabilityError
from personae.portability.importers.mybella import read_mybella
from personae.storage import HistoryStore, PersonaStore, UserStore
from personae.storage.models import Conversation, MemoryItem, Message, Persona, User
from tests.portability.formats import make_mybella


@pytest.fixture
def bella(tmp_path: Path) -> Path:
    return make_mybella(tmp_path / "mybella.db")


async def test_mybella_rows_become_personas_conversations_and_memory(
    db: Settings, bella: Path
) -> None:
    result = await run_import(db, read_mybella(bella), dry_run=False)
    assert result.verified
    ann = await UserStore().resolve("mybella", "1")
    assert {p.id for p in await Persona.all()} == {"isabella", "alex", "captain-nova"}
    (nova,) = await PersonaStore().with_id("captain-nova")
    owner, shared = nova.owner_id, nova.shared
    assert owner == ann and not shared  # Ann's custom persona stays hers
    isabella = (await PersonaStore().with_id("isabella"))[0].card
    assert isabella["data"]["extensions"]["mybella"]["voice_id"] == "EXAVITQu4vr4xnSDxMaL"
    talk = await HistoryStore().recent(Scope("isabella", ann), "mybella:10", 10)
    assert [(m.role, m.content) for m in talk] == [
        ("user", "Hi Isabella, I had a long shift at the hospital."),
        ("assistant", "That sounds exhausting. Rest well!"),
    ]
    assert talk[1].created_at is not None and talk[1].created_at.microsecond == 250000
    legacy = await HistoryStore().recent(Scope("alex", ann), "mybella", 10)
    assert [m.role for m in legacy] == ["user", "assistant"]  # "bot" is an assistant
    memory = {(i.persona_id, i.text) for i in await MemoryItem.filter(user_id=ann)}
    assert memory == {
        ("isabella", "Occupation: nurse"),
        ("isabella", "Music: jazz"),  # a preference from before isolation: every persona
        ("alex", "Music: jazz"),  # the user talked to
    }
    reasons = [p.reason for p in result.problems]
    assert any("unknown role 'system'" in r for r in reasons)
    assert any("no value" in r for r in reasons)


async def test_mybella_dry_run_writes_nothing(db: Settings, bella: Path) -> None:
    result = await run_import(db, read_mybella(bella), dry_run=True)
    assert result.counts["messages"].new == 5 and result.counts["conversations"].new == 3
    assert await Message.all().count() == 0 and await Persona.all().count() == 0


async def test_mybella_import_twice_changes_nothing(db: Settings, bella: Path) -> None:
    await run_import(db, read_mybella(bella), dry_run=False)
    counts = [await model.all().count() for model in (Message, Conversation, MemoryItem, User)]
    again = await run_import(db, read_mybella(bella), dry_run=False)
    assert again.written == 0 and again.counts["messages"].existing == 5
    assert [await model.all().count() for model in (Message, Conversation, MemoryItem, User)] == (
        counts
    )


async def test_mybella_rollback_removes_the_run(db: Settings, bella: Path) -> None:
    result = await run_import(db, read_mybella(bella), dry_run=False)
    await rollback(db, result.run_id or "")
    for model in (Message, Conversation, MemoryItem, User, Persona):
        assert await model.all().count() == 0


async def test_a_database_that_is_not_mybella_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute(
        "CREATE TABLE things (id INTEGER PRIMARY KEY)"
    ).connection.commit()
    with pytest.raises(PortabilityError, match="none of MyBella's tables"):
        read_mybella(other)
    (tmp_path / "junk.db").write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(PortabilityError, match="not a readable SQLite database"):
        read_mybella(tmp_path / "junk.db")

"""Memory as JSON Lines: round trips between databases, idempotent and
all-or-nothing imports — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import jsonl, run_import
from personae.portability.connection import connected
from personae.portability.errors import PortabilityError
from personae.storage import MemoryStore, UserStore
from personae.storage.models import MemoryItem, User
from tests.portability.conftest import make


async def _source_lines(tmp_path: Path) -> list[str]:
    source = make(tmp_path, f"sqlite://{tmp_path / 'source.db'}", "source")
    async with connected(source):
        ann = await UserStore().resolve("discord", "42", "Ann")
        ben = await UserStore().resolve("web", "ben-uuid", "Ben")
        store = MemoryStore()
        await store.add(Scope("sage", ann), "Works as a nurse", kind="fact", confidence=0.9)
        await store.add(Scope("sage", ann), "Likes jazz", kind="interest")
        await store.add(Scope("scav", ann), "Collects artifacts")
        await store.add(Scope("sage", ben), "Has two cats")
        return await jsonl.export_lines()


def _items(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines[1:]]


async def test_export_then_import_reproduces_memory_in_another_database(
    tmp_path: Path, db_url: str
) -> None:
    lines = await _source_lines(tmp_path)
    header = json.loads(lines[0])
    assert header["format"] == "personae.memory" and header["schema_version"] == 1
    target = make(tmp_path, db_url, "target")
    async with connected(target):
        result = await run_import(target, jsonl.parse_lines("\n".join(lines), "x"), dry_run=False)
        assert result.counts["memory_items"].new == 4 and result.verified
        ann = await UserStore().resolve("discord", "42")
        assert {i.text for i in await MemoryStore().list(Scope("sage", ann))} == {
            "Works as a nurse",
            "Likes jazz",
        }
        again = await jsonl.export_lines()
    strip = ("id",)
    for before, after in zip(_items(lines), _items(again), strict=True):
        for row in (before, after):
            row["user"] = {k: v for k, v in row["user"].items() if k not in strip}  # type: ignore[union-attr]
        assert before == after


async def test_importing_an_export_twice_changes_nothing(
    tmp_path: Path, psettings: Settings
) -> None:
    db = psettings
    text = "\n".join(await _source_lines(tmp_path))
    async with connected(db):
        await run_import(db, jsonl.parse_lines(text, "x"), dry_run=False)
        again = await run_import(db, jsonl.parse_lines(text, "x"), dry_run=False)
        assert again.written == 0 and again.counts["memory_items"].existing == 4
        assert await MemoryItem.all().count() == 4 and await User.all().count() == 2


async def test_one_invalid_line_means_nothing_is_imported(
    tmp_path: Path, psettings: Settings
) -> None:
    db = psettings
    lines = await _source_lines(tmp_path)
    broken = json.loads(lines[2])
    broken["confidence"] = 7
    tampered = json.loads(lines[3])
    tampered["text"] = "Hates cats"  # no longer matches its key
    text = "\n".join([lines[0], lines[1], json.dumps(broken), json.dumps(tampered), "{oops"])
    with pytest.raises(PortabilityError, match="3 invalid line") as caught:
        jsonl.parse_lines(text, "memory.jsonl")
    assert "line 3: confidence" in str(caught.value) and "line 4" in str(caught.value)
    async with connected(db):
        assert await MemoryItem.all().count() == 0


def test_a_newer_schema_version_is_refused() -> None:
    header = {"type": "header", "format": "personae.memory", "schema_version": 99}
    with pytest.raises(PortabilityError, match="schema version 99"):
        jsonl.parse_lines(json.dumps(header), "future.jsonl")


async def test_export_can_be_limited_to_one_user_and_persona(tmp_path: Path) -> None:
    lines = await _source_lines(tmp_path)
    async with connected(make(tmp_path, f"sqlite://{tmp_path / 'source.db'}", "source")):
        ann = await UserStore().resolve("discord", "42")
        only = _items(await jsonl.export_lines(ann, "sage"))
    assert len(_items(lines)) == 4
    assert {row["text"] for row in only} == {"Works as a nurse", "Likes jazz"}


def _line(text: str) -> str:
    user = {"identities": [["discord", "42"]], "name": "Ann"}
    item = {"type": "memory_item", "persona_id": "sage", "user": user, "kind": "fact"}
    return json.dumps(item | {"text": text, "confidence": 0.8})


async def test_an_import_keeps_notes_that_differ_in_a_symbol_and_skips_restatements(
    tmp_path: Path, db_url: str
) -> None:
    header = json.dumps({"type": "header", "format": "personae.memory", "schema_version": 1})
    notes = ["Programs in C++", "Programs in C#", "programs in c++!", "Takes vitamin B"]
    target = make(tmp_path, db_url, "target")
    async with connected(target):
        ann = await UserStore().resolve("discord", "42", "Ann")
        await MemoryStore().add(Scope("sage", ann), "Takes vitamin D")
        await MemoryStore().add(Scope("sage", ann), "Works as a night nurse")
        lines = "\n".join([header, *map(_line, [*notes, "Works as a nurse"])])
        result = await run_import(target, jsonl.parse_lines(lines, "x"), dry_run=False)
        counts = result.counts["memory_items"]
        assert (counts.new, counts.duplicate, counts.existing) == (3, 1, 1)
        assert {i.text for i in await MemoryStore().list(Scope("sage", ann))} == {
            "Programs in C++",
            "Programs in C#",
            "Takes vitamin B",
            "Takes vitamin D",
            "Works as a night nurse",
        }

"""Importing an acore_bot folder: profiles become memory under the right
(persona, Discord user) scope, cards become personas; dry run, verification,
idempotency, corrupt files and exact rollback — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import manifest, rollback, run_import
from personae.portability.errors import PortabilityError
from personae.portability.importers.acore import read_acore
from personae.storage import HistoryStore, MemoryStore, PersonaStore, UserStore
from personae.storage.models import Identity, MemoryItem, Persona, User
from tests.portability.formats import NEREVAR, STALKER, make_acore


@pytest.fixture
def acore(tmp_path: Path) -> Path:
    return make_acore(tmp_path / "acore_bot")


async def texts(persona: str, user_id: int) -> set[str]:
    return {item.text for item in await MemoryStore().list(Scope(persona, user_id))}


async def test_dry_run_reports_what_would_change_and_writes_nothing(
    db: Settings, acore: Path
) -> None:
    result = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=True)
    assert result.counts["personas"].new == 2
    assert result.counts["users"].new == 2
    assert result.counts["memory_items"].new > 0
    assert await MemoryItem.all().count() == 0
    assert await User.all().count() == 0 and await Persona.all().count() == 0
    assert not manifest.imports_dir(db).exists()


async def test_profiles_land_in_the_scope_of_their_persona_and_discord_user(
    db: Settings, acore: Path
) -> None:
    result = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    assert result.verified and result.run_id
    nerevar = await UserStore().resolve("discord", str(NEREVAR))
    strelok = await UserStore().resolve("discord", str(STALKER))
    assert await User.all().count() == 2  # resolve found the imported users
    assert await texts("dagoth_ur", nerevar) == {
        "User is the Nerevarine",
        "Plays Morrowind every weekend",
        "Interested in CHIM",
        "Interested in Morrowind lore",
        "Comes across as sarcastic",
        "Favorite game: Morrowind",
        "Relationship with the persona: friend, affection 62/100",
    }
    assert await texts("sage", nerevar) == {"Interested in Morrowind lore"}  # old layout
    assert await texts("scav", strelok) == {"Has been to the Zone's center"}
    item = next(
        i for i in await MemoryStore().list(Scope("dagoth_ur", nerevar)) if "Nerevarine" in i.text
    )
    assert item.kind == "fact" and item.created_at is not None
    assert item.created_at.isoformat().startswith("2025-11-03T12:00:00")
    (stored,) = await PersonaStore().with_id("dagoth_ur")
    card, owner = stored.card, stored.owner_id
    assert card["data"]["name"] == "Dagoth Ur" and owner is None
    assert card["data"]["avatar_url"] == "https://example.invalid/avatar.png"


async def test_imported_memory_of_one_persona_is_invisible_to_another(
    db: Settings, acore: Path
) -> None:
    await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    nerevar = await UserStore().resolve("discord", str(NEREVAR))
    scav = await texts("scav", nerevar)
    dagoth = await texts("dagoth_ur", nerevar)
    assert scav == {"User is a fellow stalker", "Interested in Artifacts", "Interested in The Zone"}
    assert not scav & dagoth
    recalled = await MemoryStore().recall([Scope("scav", nerevar)], "Nerevarine Morrowind CHIM")
    assert all(item.persona_id == "scav" for item in recalled)
    assert not any("Nerevarine" in item.text for item in recalled)


async def test_corrupt_and_unusable_files_are_reported_not_lost(db: Settings, acore: Path) -> None:
    result = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    reasons = {Path(p.source).name: p.reason for p in result.problems}
    assert "not valid JSON" in reasons["user_333.json"]
    assert "holds user 555" in reasons["user_444.json"]
    assert "broken.json" in reasons
    assert any("instruction" in p.reason for p in result.problems)
    assert "_index_cache.pkl" not in reasons  # not a profile: ignored, never unpickled
    recorded = manifest.load(db, result.run_id or "")
    assert len(recorded.problems) == len(result.problems)


async def test_importing_twice_changes_nothing(db: Settings, acore: Path) -> None:
    first = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    items, users = await MemoryItem.all().count(), await Identity.all().count()
    second = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    assert second.run_id is None and second.written == 0
    assert second.counts["memory_items"].existing == first.counts["memory_items"].new
    assert await MemoryItem.all().count() == items and await Identity.all().count() == users
    assert len(manifest.runs(db)) == 1


async def test_persona_map_renames_acore_personas(db: Settings, acore: Path) -> None:
    batch = read_acore(acore, persona_map={"dagoth_ur": "dagoth-ur"}, default_persona="sage")
    await run_import(db, batch, dry_run=False)
    nerevar = await UserStore().resolve("discord", str(NEREVAR))
    assert "User is the Nerevarine" in await texts("dagoth-ur", nerevar)
    assert await texts("dagoth_ur", nerevar) == set()
    assert await Persona.filter(id="dagoth-ur").exists()


async def test_rollback_removes_exactly_what_the_run_created(db: Settings, acore: Path) -> None:
    before = await UserStore().resolve("discord", str(STALKER), "strelok")
    await MemoryStore().add(Scope("scav", before), "Carries a Geiger counter")
    result = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    nerevar = await UserStore().resolve("discord", str(NEREVAR))
    assert await MemoryItem.all().count() > 1
    done = await rollback(db, result.run_id or "")
    assert done.status == "rolled_back"
    assert await texts("scav", before) == {"Carries a Geiger counter"}
    assert await User.filter(id=nerevar).count() == 0
    assert await User.filter(id=before).count() == 1  # existed before the run
    assert await Persona.all().count() == 0
    with pytest.raises(PortabilityError, match="already rolled back"):
        await rollback(db, result.run_id or "")


async def test_rollback_keeps_a_user_who_gained_data_after_the_import(
    db: Settings, acore: Path
) -> None:
    result = await run_import(db, read_acore(acore, default_persona="sage"), dry_run=False)
    strelok = await UserStore().resolve("discord", str(STALKER))
    await HistoryStore().append_exchange(Scope("scav", strelok), "discord:1", "hi", "hello")
    done = await rollback(db, result.run_id or "")
    assert done.rollback_kept["users"] == [strelok]
    assert await texts("scav", strelok) == set()  # the imported items are gone
    assert await UserStore().resolve("discord", str(STALKER)) == strelok  # identity kept


async def test_a_folder_without_acore_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PortabilityError, match="acore_bot folder"):
        read_acore(tmp_path / "empty")

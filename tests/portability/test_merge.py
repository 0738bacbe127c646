"""``memory merge``: persona A's memory consolidated into persona B with
learning's rules, after a dry run that writes nothing."""

from __future__ import annotations

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import merge_memory
from personae.storage import MemoryStore, UserStore


async def _setup() -> tuple[int, int]:
    ann = await UserStore().resolve("discord", "1", "Ann")
    ben = await UserStore().resolve("discord", "2", "Ben")
    store = MemoryStore()
    await store.add(Scope("scav", ann), "Works as a nurse")
    await store.add(Scope("scav", ann), "Likes jazz", kind="interest")
    await store.add(Scope("sage", ann), "The user works as a nurse.", confidence=0.5)
    await store.add(Scope("scav", ben), "Has two cats")
    return ann, ben


async def texts(persona: str, user: int) -> set[str]:
    return {i.text for i in await MemoryStore().list(Scope(persona, user))}


async def test_merge_dry_run_reports_and_writes_nothing(db: Settings) -> None:
    ann, ben = await _setup()
    result = await merge_memory(db, "scav", "sage")
    assert result.dry_run and result.added == 2
    by_user = {s.user_id: s for s in result.scopes}
    assert by_user[ann].added == ["Likes jazz"] and by_user[ann].duplicates == 1
    assert await texts("sage", ann) == {"The user works as a nurse."}
    assert await texts("sage", ben) == set()


async def test_merge_adds_what_is_new_and_keeps_the_source(db: Settings) -> None:
    ann, ben = await _setup()
    result = await merge_memory(db, "scav", "sage", user_id=ann, dry_run=False)
    assert result.added == 1
    assert await texts("sage", ann) == {"The user works as a nurse.", "Likes jazz"}
    nurse = next(i for i in await MemoryStore().list(Scope("sage", ann)) if "nurse" in i.text)
    assert nurse.confidence == 0.8  # the duplicate raised the known item's confidence
    assert await texts("scav", ann) == {"Works as a nurse", "Likes jazz"}
    assert await texts("sage", ben) == set()  # --user limited the merge
    again = await merge_memory(db, "scav", "sage", user_id=ann, dry_run=False)
    assert again.added == 0


async def test_merge_keeps_notes_that_differ_in_a_symbol_or_a_number(db: Settings) -> None:
    ann = await UserStore().resolve("discord", "1", "Ann")
    store = MemoryStore()
    for text in ("Programs in C#", "Programs in C", "Has a cat aged 9"):
        await store.add(Scope("scav", ann), text)
    for text in ("Programs in C++", "Has a cat aged 3"):
        await store.add(Scope("sage", ann), text)
    result = await merge_memory(db, "scav", "sage", dry_run=False)
    assert result.added == 3
    assert await texts("sage", ann) == {
        "Programs in C++",
        "Programs in C#",
        "Programs in C",
        "Has a cat aged 3",
        "Has a cat aged 9",
    }


async def test_merge_makes_a_more_precise_note_an_update_of_the_item(db: Settings) -> None:
    ann = await UserStore().resolve("discord", "1", "Ann")
    store = MemoryStore()
    known = await store.add(Scope("sage", ann), "Works as a nurse at the city hospital")
    await store.add(Scope("scav", ann), "Works as a night nurse at the city hospital")
    [scope] = (await merge_memory(db, "scav", "sage", dry_run=False)).scopes
    assert scope.updated == ["Works as a night nurse at the city hospital"] and not scope.added
    [item] = await store.list(Scope("sage", ann))
    assert (item.id, item.text) == (known.id, "Works as a night nurse at the city hospital")
    [revision] = await store.revisions(Scope("sage", ann))
    assert (revision.action, revision.old_text) == ("update", known.text)


async def test_a_merged_duplicate_is_in_the_items_history_once(db: Settings) -> None:
    ann = await UserStore().resolve("discord", "1", "Ann")
    store = MemoryStore()
    known = await store.add(Scope("sage", ann), "The user works as a nurse.", confidence=0.5)
    await store.add(Scope("scav", ann), "Works as a nurse", source_message_ids=[7, 8])
    await merge_memory(db, "scav", "sage", dry_run=False)
    await merge_memory(db, "scav", "sage", dry_run=False)  # a second run changes nothing
    [item] = await store.list(Scope("sage", ann))
    assert (item.text, item.confidence, item.source_message_ids) == (known.text, 0.8, [7, 8])
    [revision] = await store.revisions(Scope("sage", ann), item_id=item.id)
    assert (revision.action, revision.old_text, revision.new_text) == (
        "merge",
        "The user works as a nurse.",
        "Works as a nurse",
    )
    assert revision.source_message_ids == [7, 8] and revision.message_id is None

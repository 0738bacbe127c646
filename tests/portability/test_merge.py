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

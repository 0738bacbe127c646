"""Importing a MyBella database: personas, conversations and memory items, with
the same dry run, idempotency and rollback — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import manifest, rollback, run_import
from personae.portability.errors import PortabilityError
from personae.portability.importers.mybella import read_mybella
from personae.portability.records import Problem
from personae.storage import HistoryStore, PersonaStore, UserStore
from personae.storage.models import Conversation, MemoryItem, Message, Persona, User
from tests.portability.formats import add_mybella_memory, make_mybella, make_mybella_legacy
from tests.portability.test_cli_portability import personae


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
    memory = {(i.persona_id, i.kind, i.text) for i in await MemoryItem.filter(user_id=ann)}
    assert memory == {
        ("isabella", "preference", "Occupation: nurse"),
        ("sage", "interest", "Music: jazz"),  # no persona: the default persona only
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


# -- what MyBella knew besides messages ---------------------------------------------------


@pytest.fixture
def rich(bella: Path) -> Path:
    return add_mybella_memory(bella)


async def memory_of(user_id: int) -> set[tuple[str, str, str]]:
    return {(i.persona_id, i.kind, i.text) for i in await MemoryItem.filter(user_id=user_id)}


def reasons(problems: list[Problem]) -> list[str]:
    return [p.reason for p in problems]


async def test_a_conversation_summary_and_its_facts_become_memory_of_that_persona(
    db: Settings, rich: Path
) -> None:
    await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    isabella = {
        (kind, text) for persona, kind, text in await memory_of(ann) if persona == "isabella"
    }
    assert {
        ("fact", "Conversation on 2025-10-20 (mood: tired): Ann talked about her night shifts "
                 "at the hospital. Topics: work, sleep."),
        ("fact", "Works night shifts"),
        ("fact", "Has a cat called Miso"),
    } <= isabella  # fmt: skip
    summary = await MemoryItem.get(user_id=ann, text__startswith="Conversation on")
    assert summary.created_at.isoformat().startswith("2025-10-20T09:00:00")


async def test_a_summary_that_instructs_the_bot_is_screened_out_and_reported(
    db: Settings, rich: Path
) -> None:
    result = await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    assert not any("obey" in text for _, _, text in await memory_of(ann))
    assert (
        "skipped 1 row of table conversation_memories: reads as an instruction to the bot, "
        "not something about the user (#11)"
    ) in reasons(result.problems)


async def test_nickname_and_pronouns_become_facts_and_name_the_user(
    db: Settings, rich: Path
) -> None:
    result = await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    assert (await User.get(id=ann)).name == "Annie"
    assert {
        ("sage", "preference", "Likes to be called Annie"),
        ("sage", "fact", "Pronouns: she/her"),
        ("sage", "trait", "Describes themself as introverted"),
    } <= await memory_of(ann)
    assert not any("friendly" in text for _, _, text in await memory_of(ann))  # the default
    assert any(
        r.startswith("app settings of 1 user in table user_settings")
        for r in reasons(result.problems)
    )


async def test_onboarding_answers_become_memory_of_one_persona(db: Settings, rich: Path) -> None:
    await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    assert {
        ("sage", "fact", "Came to MyBella for mental health"),
        ("sage", "fact", "Also hoped for: companionship"),
        ("sage", "fact", "Felt stressed (mood 4/10) when starting out"),
        ("sage", "preference", "Prefers a supportive tone"),
        ("sage", "preference", "Prefers check-ins in the evening"),
        ("sage", "fact", "Chose Isabella because: She sounds kind"),
    } <= await memory_of(ann)


async def test_rows_naming_no_persona_go_to_one_persona_and_the_report_says_so(
    db: Settings, rich: Path
) -> None:
    result = await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    jazz = [persona for persona, _, text in await memory_of(ann) if text == "Music: jazz"]
    assert jazz == ["sage"]  # not copied onto Isabella and Alex
    notes = [r for r in reasons(result.problems) if "no persona (MyBella shared" in r]
    assert (
        "1 row of table user_preferences names no persona (MyBella shared them with every "
        "persona): imported once, to persona 'sage' (--persona PERSONA_ID chooses another)"
    ) in notes
    assert any(n.startswith("1 row of table user_settings") for n in notes)
    assert any(n.startswith("1 row of table onboarding_quiz") for n in notes)


async def test_the_persona_option_chooses_where_rows_naming_no_persona_go(
    db: Settings, rich: Path
) -> None:
    await run_import(db, read_mybella(rich, persona="isabella"), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    memory = await memory_of(ann)
    assert ("isabella", "interest", "Music: jazz") in memory
    assert ("isabella", "fact", "Pronouns: she/her") in memory
    assert not any(persona == "sage" for persona, _, _ in memory)
    with pytest.raises(PortabilityError, match="not a persona id"):
        read_mybella(rich, persona="Not An Id")


async def test_a_preference_to_avoid_a_topic_is_not_an_interest(db: Settings, rich: Path) -> None:
    await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    politics = [(p, kind, text) for p, kind, text in await memory_of(ann) if "politics" in text]
    assert politics == [("isabella", "preference", "Prefers to avoid talking about politics")]


async def test_messages_for_mybellas_builtin_default_persona_land_under_the_default_persona(
    db: Settings, tmp_path: Path
) -> None:
    legacy = make_mybella_legacy(tmp_path / "old.db")
    result = await run_import(db, read_mybella(legacy, default_persona="sage"), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    talk = await HistoryStore().recent(Scope("sage", ann), "mybella", 10)
    assert [m.content for m in talk] == ["Good morning!", "Good morning, Ann."]
    assert not await Conversation.filter(persona_id="isabella").exists()
    assert (
        "2 rows of table chat_messages are for 'Isabella', MyBella's built-in default "
        "persona, which has no persona_profiles row: imported under personae's default persona "
        "'sage' (--persona-map Isabella=PERSONA_ID chooses another)"
    ) in reasons(result.problems)


async def test_messages_for_a_persona_without_a_profile_are_reported_with_a_persona_map_hint(
    db: Settings, tmp_path: Path
) -> None:
    legacy = make_mybella_legacy(tmp_path / "old.db")
    result = await run_import(db, read_mybella(legacy), dry_run=True)
    assert (
        "skipped 2 rows of table chat_messages: its persona 'Luna' is not in persona_profiles; "
        "import it with --persona-map Luna=PERSONA_ID (#4, #5)"
    ) in reasons(result.problems)
    assert result.counts["messages"].new == 5  # 3 of chat_messages, 2 of the first table
    mapped = await run_import(db, read_mybella(legacy, persona_map={"Luna": "pip"}), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    assert [m.content for m in await HistoryStore().recent(Scope("pip", ann), "mybella", 10)] == [
        "Who are you?", "I am Luna."
    ]  # fmt: skip
    assert not any("Luna" in r for r in reasons(mapped.problems))


async def test_the_report_of_what_was_skipped_is_kept_in_the_run_manifest(
    db: Settings, rich: Path
) -> None:
    result = await run_import(db, read_mybella(rich), dry_run=False)
    recorded = manifest.load(db, result.run_id or "")
    assert [p["reason"] for p in recorded.problems] == reasons(result.problems)
    assert "skipped 1 row of table chat_messages: unknown role 'system' (#6)" in reasons(
        result.problems
    )


async def test_the_dry_run_prints_what_is_skipped_and_where_rows_went(tmp_path: Path) -> None:
    legacy = make_mybella_legacy(tmp_path / "old.db")
    code, out, err = await personae(tmp_path, "import", "mybella", str(legacy), "--dry-run")
    assert code == 0, err
    flat = re.sub(r"[│\s]+", " ", out)  # the table wraps long lines
    assert "skipped 2 rows of table chat_messages: its persona 'Luna'" in flat
    assert "--persona-map Luna=PERSONA_ID" in flat
    assert "imported under personae's default persona 'sage'" in flat
    assert "its persona '[beta]' is not in persona_profiles" in flat  # shown, not markup
    assert "Dry run: nothing was written" in flat


async def test_mybellas_first_chat_table_becomes_conversations_per_chat(
    db: Settings, tmp_path: Path
) -> None:
    legacy = make_mybella_legacy(tmp_path / "old.db")
    result = await run_import(db, read_mybella(legacy), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    talk = await HistoryStore().recent(Scope("sage", ann), "mybella:chat:7", 10)
    assert [(m.role, m.content) for m in talk] == [
        ("user", "Is anyone there?"),  # the chat's persona when the message names none
        ("assistant", "I am here, Ann."),
    ]
    assert any(r.startswith("2 rows of table messages are for 'Isabella'") for r in reasons(
        result.problems))  # fmt: skip


async def test_tables_personae_has_no_place_for_are_named_in_the_report(
    db: Settings, tmp_path: Path
) -> None:
    legacy = make_mybella_legacy(tmp_path / "old.db")
    result = await run_import(db, read_mybella(legacy), dry_run=True)
    assert "tables personae has no place for, not imported: mood_entries (2 rows)" in reasons(
        result.problems
    )


async def test_a_long_summary_is_kept_in_pieces_cut_between_sentences(
    db: Settings, rich: Path
) -> None:
    sentence = "Ann described a long week of night shifts on the children's ward and little sleep."
    conn = sqlite3.connect(rich)
    conn.execute(
        "INSERT INTO conversation_memories (id, user_id, persona, persona_id, started_at, summary)"
        " VALUES (12, 1, 'Isabella', 1, '2025-10-22 09:00:00', ?)",
        (" ".join([sentence] * 8),),
    )
    conn.commit()
    conn.close()
    await run_import(db, read_mybella(rich), dry_run=False)
    ann = await UserStore().resolve("mybella", "1")
    pieces = sorted(
        text for _, _, text in await memory_of(ann) if text.startswith("Conversation on 2025-10-22")
    )
    assert [p.split(":")[0] for p in pieces] == [
        "Conversation on 2025-10-22 (1 of 2)",
        "Conversation on 2025-10-22 (2 of 2)",
    ]
    assert all(len(p) <= 500 for p in pieces)
    assert sum(p.count(sentence) for p in pieces) == 8

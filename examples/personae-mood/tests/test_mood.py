"""The mood plugin, tested through personae's own fixtures: a real runtime with
every installed plugin (this one included), a temporary SQLite database and a
loopback fake Ollama."""

from __future__ import annotations

from personae.core.runtime import Runtime
from personae.testing import FakeOllama, plugin_state, run_command, run_turn, user_id


async def test_the_mood_plugin_is_loaded_from_its_entry_point(
    personae_runtime: Runtime,
) -> None:
    info = {i.name: i for i in personae_runtime.plugins.plugins()}["mood"]
    assert info.source == "entry point"
    assert "prompt_sections" in info.hooks and "forget_user" in info.hooks


async def test_a_neutral_mood_adds_nothing_to_the_prompt(personae_runtime: Runtime) -> None:
    result = await run_turn(personae_runtime, "What is the time?", persona="sage")
    assert "mood toward" not in result.system_prompt


async def test_kind_words_warm_the_mood_and_the_next_prompt_says_so(
    personae_runtime: Runtime, personae_fake_ollama: FakeOllama
) -> None:
    personae_fake_ollama.reply_with("You are welcome.")
    await run_turn(personae_runtime, "Thank you, that was lovely!", persona="sage")
    assert await plugin_state(personae_runtime, "mood", persona="sage") == {"level": 1}
    result = await run_turn(personae_runtime, "Another question.", persona="sage")
    assert "Sage's mood toward tester: warm." in result.system_prompt


async def test_unkind_words_cool_the_mood_one_step_at_a_time(personae_runtime: Runtime) -> None:
    for _ in range(3):
        await run_turn(personae_runtime, "You are useless and boring.", persona="scav")
    # the mood stops at the coldest one
    assert await plugin_state(personae_runtime, "mood", persona="scav") == {"level": -2}
    result = await run_command(personae_runtime, "/mood", persona="scav")
    assert result.text == "scav's mood toward you: cold."


async def test_the_mood_command_shows_and_sets_the_mood(personae_runtime: Runtime) -> None:
    shown = await run_command(personae_runtime, "/mood", persona="sage")
    assert shown.text == "sage's mood toward you: neutral."
    changed = await run_command(personae_runtime, "/mood fond", persona="sage")
    assert changed.text == "sage's mood toward you is now fond."
    result = await run_turn(personae_runtime, "Hello.", persona="sage")
    assert "mood toward tester: fond." in result.system_prompt


async def test_the_mood_belongs_to_one_persona_and_one_user(personae_runtime: Runtime) -> None:
    await run_command(personae_runtime, "/mood warm", persona="sage", user="ann")
    assert (await run_command(personae_runtime, "/mood", persona="scav", user="ann")).text == (
        "scav's mood toward you: neutral."
    )
    assert (await run_command(personae_runtime, "/mood", persona="sage", user="bob")).text == (
        "sage's mood toward you: neutral."
    )


async def test_export_and_forget_cover_the_mood(personae_runtime: Runtime) -> None:
    await run_command(personae_runtime, "/mood warm", persona="sage")
    await run_command(personae_runtime, "/mood cool", persona="scav")
    me = await user_id(personae_runtime)

    exported = await personae_runtime.export_user_data(me)
    moods = {row["persona_id"]: row["mood"] for row in exported["plugins"]["mood"]}
    assert moods == {"sage": "warm", "scav": "cool"}

    assert (await personae_runtime.forget_user(me, "sage"))["mood"] == 1
    assert await plugin_state(personae_runtime, "mood", persona="sage") == {}
    assert await plugin_state(personae_runtime, "mood", persona="scav") == {"level": -1}
    assert (await personae_runtime.forget_user(me))["mood"] == 1
    assert "mood" not in (await personae_runtime.export_user_data(me))["plugins"]

"""What a real-world-shaped card puts in the prompt that reaches the model (the
loopback Ollama): lorebook entries by position and depth, the depth prompt,
post-history instructions after the new message, {{original}}, and a prefix that
stays the same from turn to turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from personae.core.cards import parse_card_json
from personae.core.lorebook_files import attach_lorebook, read_lorebook
from personae.core.runtime import Runtime
from personae.testing.fake_ollama import FakeOllama
from personae.testing.helpers import register_fake, run_turn, unregister_fake
from tests.card_fixtures import v2_card, world_info_file

ERA = "The year is 2391. Humanity holds eleven systems."
RULE = "Mara never lies to her crew."
SHIP = "The Kestrel is a battered corvette with a cracked reactor shield."
REACTOR = "The reactor leaks when pushed past 80%."
DEPTH_PROMPT = "Captain Mara Voss is worried about the reactor."
PHI = "Stay terse. Captain Mara Voss never breaks character."


@pytest.fixture(autouse=True)
def known_fake(fake_ollama: FakeOllama) -> Iterator[None]:
    register_fake(fake_ollama)
    yield
    unregister_fake(fake_ollama)


@pytest.fixture
async def mara(runtime: Runtime) -> str:
    card = parse_card_json(v2_card())
    await runtime.personas.save(card, owner_id=None, shared=True)
    return card.id


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


async def test_constant_entries_sit_in_the_card_around_the_description(
    runtime: Runtime, mara: str
) -> None:
    turn = await run_turn(runtime, "hello", persona=mara)
    system = turn.messages[0]["content"]
    assert system.index(ERA) < system.index("About Captain Mara Voss")
    assert system.index("terse, loyal") < system.index(RULE)
    assert system.startswith("You are Captain Mara Voss. Stay in character")  # {{original}}
    assert "Write in third person." in system


async def test_activated_entries_follow_the_new_message_in_insertion_order(
    runtime: Runtime, mara: str
) -> None:
    turn = await run_turn(runtime, "Is the Kestrel's reactor eating power?", persona=mara)
    user_at = contents(turn.messages).index("Is the Kestrel's reactor eating power?")
    block = turn.messages[user_at + 1]  # the turn's own message, after the new one
    assert block["role"] == "system"
    assert block["content"].index(REACTOR) < block["content"].index(SHIP)  # 90 before 100
    everything = "\n".join(contents(turn.messages))
    assert "ghost ship" not in everything and "first captain" not in everything
    assert everything.count(ERA) == 1  # a constant is not repeated per turn


async def test_post_history_instructions_follow_the_new_message(
    runtime: Runtime, mara: str
) -> None:
    turn = await run_turn(runtime, "Orders?", persona=mara)
    assert turn.messages[-1]["role"] == "system"
    assert turn.messages[-1]["content"].endswith(PHI)  # last of the turn's own message
    assert turn.messages[-2] == {"role": "user", "content": "Orders?"}


async def test_the_depth_prompt_sits_at_its_depth(runtime: Runtime, mara: str) -> None:
    for text in ("one", "two", "three"):
        turn = await run_turn(runtime, text, persona=mara)
    chat = [m for m in turn.messages if m["content"] not in (PHI,)][1:]
    chat = [m for m in chat if not (m["role"] == "system" and m["content"] != DEPTH_PROMPT)]
    at = contents(chat).index(DEPTH_PROMPT)
    assert chat[at]["role"] == "system"
    assert len(chat) - 1 - at == 3  # three messages come after it: depth 3


async def test_an_at_depth_entry_comes_with_its_role(runtime: Runtime, mara: str) -> None:
    turn = await run_turn(runtime, "Coffee?", persona=mara)
    assert turn.messages[-3:] == [
        {"role": "user", "content": "Coffee?"},
        {"role": "assistant", "content": "Mara drinks her coffee black, always."},
        {"role": "system", "content": PHI},
    ]


async def test_the_prefix_holds_while_entries_change(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with("Aye.")
    document = v2_card()
    del document["data"]["extensions"]["depth_prompt"]  # it moves with every turn
    card = parse_card_json(document)
    await runtime.personas.save(card, owner_id=None, shared=True)
    first = await run_turn(runtime, "Tell me about the Kestrel.", persona=card.id)
    second = await run_turn(runtime, "And the pirates?", persona=card.id)
    assert SHIP in "\n".join(contents(first.messages))
    assert SHIP not in "\n".join(contents(second.messages))
    # The card and the previous exchange come first, unchanged; then the new message,
    # then this turn's entries.
    assert second.messages[0] == first.messages[0]
    assert contents(second.messages[1:4]) == [
        "Tell me about the Kestrel.",
        first.reply.text,
        "And the pirates?",
    ]
    assert "Pirates in the Drift" in second.messages[4]["content"]


async def test_the_lorebook_budget_cuts_the_lowest_insertion_order(
    runtime: Runtime, mara: str
) -> None:
    runtime.settings.lorebook.budget_tokens = 40  # about 3.5 characters a token
    turn = await run_turn(
        runtime, "Kestrel reactor power, Halden Syndicate smuggler, pirates", persona=mara
    )
    text = "\n".join(contents(turn.messages))
    assert SHIP in text and REACTOR in text
    assert "Halden Station" not in text and "Pirates in the Drift" not in text  # 80, 70


async def test_a_world_info_lorebook_attached_to_a_built_in_reaches_the_model(
    runtime: Runtime,
) -> None:

    sage = await runtime.personas.get("sage")
    book = read_lorebook(json.dumps(world_info_file()))
    await runtime.personas.save(attach_lorebook(sage, book), owner_id=None, shared=True)
    turn = await run_turn(runtime, "Did a dragon fly over Eldoria?", persona="sage")
    text = "\n".join(contents(turn.messages))
    assert "Dragons have not been seen in Eldoria" in text
    assert "Magic in this world is quiet and costly." in turn.messages[0]["content"]


async def test_per_turn_macros_in_the_card_are_rendered_every_turn(runtime: Runtime) -> None:
    document = v2_card()
    document["data"]["scenario"] = "Today is {{weekday}}; {{char}} has been idle {{idle_duration}}."
    document["data"]["post_history_instructions"] = "Mood: {{random:calm,grim}}."
    card = parse_card_json(document)
    await runtime.personas.save(card, owner_id=None, shared=True)
    turn = await run_turn(runtime, "hello", persona=card.id)
    system = turn.messages[0]["content"]
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    assert any(f"Today is {day};" in system for day in weekdays)
    assert "Captain Mara Voss has been idle just now." in system
    assert turn.messages[-1]["content"] in ("Mood: calm.", "Mood: grim.")

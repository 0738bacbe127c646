"""Greetings: a card's first message (or the chosen alternate greeting) is stored as
the conversation's first assistant message, so the model sees it on every turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personae.core.cards import parse_card_json
from personae.core.errors import CommandError
from personae.core.runtime import Runtime
from personae.testing.fake_ollama import FakeOllama
from personae.testing.helpers import (
    register_fake,
    run_command,
    run_turn,
    scope,
    stored_messages,
    unregister_fake,
)
from tests.card_fixtures import v2_card


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


async def test_a_started_conversation_holds_the_rendered_first_message(
    runtime: Runtime, mara: str
) -> None:
    where = await scope(runtime, mara)
    started = await runtime.start_conversation(where, "test", user_name="Ada")
    assert started is not None and started[0] == 0
    messages = await stored_messages(runtime, persona=mara)
    assert [(m.role, m.content) for m in messages] == [
        ("assistant", "*Captain Mara Voss looks up from the console.* You're late, Ada.")
    ]


async def test_the_model_sees_the_greeting_before_the_first_message(
    runtime: Runtime, mara: str
) -> None:
    await runtime.start_conversation(await scope(runtime, mara), "test", user_name="Ada")
    turn = await run_turn(runtime, "Sorry, captain.", persona=mara)
    chat = [m for m in turn.messages if m["role"] != "system"]
    assert chat[0]["role"] == "assistant" and "You're late" in chat[0]["content"]
    assert chat[-1] == {"role": "user", "content": "Sorry, captain."}


async def test_an_alternate_greeting_can_be_chosen(runtime: Runtime, mara: str) -> None:
    started = await runtime.start_conversation(
        await scope(runtime, mara), "test", user_name="Ada", greeting=2
    )
    assert started is not None
    assert started[1].content == "*Captain Mara Voss hands Ada a mug.* Quiet shift, for once."


async def test_a_greeting_the_card_lacks_is_a_clear_error(runtime: Runtime, mara: str) -> None:
    with pytest.raises(CommandError, match="no greeting 5; choose one of 0, 1, 2"):
        await runtime.start_conversation(
            await scope(runtime, mara), "test", user_name="Ada", greeting=5
        )


async def test_a_begun_conversation_keeps_its_greeting(runtime: Runtime, mara: str) -> None:
    where = await scope(runtime, mara)
    await runtime.start_conversation(where, "test", user_name="Ada")
    await run_turn(runtime, "hello", persona=mara)
    again = await runtime.start_conversation(
        where, "test", user_name="Ada", greeting=1, replace=True
    )
    assert again is None
    messages = await stored_messages(runtime, persona=mara)
    assert "You're late" in messages[0].content and len(messages) == 3


async def test_an_unanswered_greeting_can_be_swapped(runtime: Runtime, mara: str) -> None:
    where = await scope(runtime, mara)
    await runtime.start_conversation(where, "test", user_name="Ada")
    swapped = await runtime.start_conversation(
        where, "test", user_name="Ada", greeting=1, replace=True
    )
    assert swapped is not None
    messages = await stored_messages(runtime, persona=mara)
    assert [m.content for m in messages] == ["*The alarm blares.* Ada, get to the bridge!"]
    turn = await run_turn(runtime, "On my way!", persona=mara)
    assert any("alarm blares" in m["content"] for m in turn.messages)


async def test_the_random_setting_uses_every_greeting(runtime: Runtime) -> None:
    card = parse_card_json(v2_card()).with_settings(greeting="random")
    await runtime.personas.save(card, owner_id=None, shared=True)
    where = await scope(runtime, card.id)
    seen = set()
    for number in range(30):
        started = await runtime.start_conversation(where, f"c{number}", user_name="Ada")
        assert started is not None
        seen.add(started[0])
    assert seen == {0, 1, 2}


async def test_the_greeting_command_lists_and_starts(runtime: Runtime, mara: str) -> None:
    listing = await run_command(runtime, "/greeting", persona=mara)
    assert "0: *{{char}} looks up" in listing.text and "2: *{{char}} hands" in listing.text
    started = await run_command(runtime, "/greeting 1", persona=mara, conversation="test")
    assert started.text == "*The alarm blares.* tester, get to the bridge!"  # the test user
    messages = await stored_messages(runtime, persona=mara)
    assert [m.role for m in messages] == ["assistant"]
    with pytest.raises(CommandError, match="no greeting 9"):
        await run_command(runtime, "/greeting 9", persona=mara, conversation="test")


async def test_group_only_greetings_are_never_used(runtime: Runtime, mara: str) -> None:
    where = await scope(runtime, mara)
    for number in range(3):
        started = await runtime.start_conversation(
            where, f"g{number}", user_name="Ada", greeting=number
        )
        assert started is not None and "nods to the crew" not in started[1].content

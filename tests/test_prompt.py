"""The system prompt a turn sends: the card's part is rendered once per card and
user name, and always matches the card and the name the turn carries."""

from __future__ import annotations

from personae.core.cards import PersonaCard
from personae.core.prompt import system_prompt
from personae.core.types import PromptSection


def card(**fields: str) -> PersonaCard:
    return PersonaCard(
        name="Sage",
        description="{{char}} tends a herb garden and listens to {{user}}.",
        mes_example="<START>\n{{user}}: Hello\n{{char}}: Welcome, {{user}}.",
        **fields,
    )


def test_the_prompt_names_the_user_of_each_turn() -> None:
    sage = card()
    assert "listens to Alex." in system_prompt(sage, [], user="Alex")
    for_sam = system_prompt(sage, [], user="Sam")
    assert "listens to Sam." in for_sam and "Alex" not in for_sam
    assert "Sam: Hello\nSage: Welcome, Sam." in for_sam


def test_an_edited_card_is_rendered_anew() -> None:
    sage = card()
    assert "herb garden" in system_prompt(sage, [], user="Alex")
    edited = sage.model_copy(update={"description": "{{char}} keeps bees."})
    prompt = system_prompt(edited, [], user="Alex")
    assert "Sage keeps bees." in prompt and "herb garden" not in prompt


def test_sections_of_each_turn_follow_the_card_part() -> None:
    sage = card()
    first = system_prompt(
        sage, [PromptSection("mood", "{{char}} is calm.", kind="instructions")], user="Alex"
    )
    second = system_prompt(
        sage, [PromptSection("mood", "{{char}} is cheerful.", kind="instructions")], user="Alex"
    )
    assert first.endswith("Sage is calm.") and second.endswith("Sage is cheerful.")
    assert "calm" not in second

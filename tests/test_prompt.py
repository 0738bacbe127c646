"""The messages a turn sends: the card's part is rendered once per card and user
name, always matches the card and the name the turn carries, and what changes
every turn comes after the history."""

from __future__ import annotations

from personae.core.cards import PersonaCard
from personae.core.prompt import build_messages, card_text
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
    assert "listens to Alex." in card_text(sage, user="Alex")
    for_sam = card_text(sage, user="Sam")
    assert "listens to Sam." in for_sam and "Alex" not in for_sam
    assert "Sam: Hello\nSage: Welcome, Sam." in for_sam


def test_an_edited_card_is_rendered_anew() -> None:
    sage = card()
    assert "herb garden" in card_text(sage, user="Alex")
    edited = sage.model_copy(update={"description": "{{char}} keeps bees."})
    prompt = card_text(edited, user="Alex")
    assert "Sage keeps bees." in prompt and "herb garden" not in prompt


def test_sections_of_each_turn_come_after_the_history() -> None:
    sage = card()
    mood = PromptSection("mood", "{{char}} is calm.", kind="instructions")
    messages = build_messages(sage, user="Alex", text="Hi", history=[], sections=[mood])
    assert [m.role for m in messages] == ["system", "system", "user"]
    assert messages[1].content == "Sage is calm." and "calm" not in messages[0].content


def test_a_prefix_section_stays_with_the_card() -> None:
    sage = card()
    rules = PromptSection("rules", "Speak softly.", kind="instructions", placement="prefix")
    messages = build_messages(sage, user="Alex", text="Hi", history=[], sections=[rules])
    assert messages[0].content.endswith("Speak softly.") and len(messages) == 2

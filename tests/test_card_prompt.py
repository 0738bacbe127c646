"""The card's per-turn parts of a prompt: macros, {{original}}, lorebook placement,
depth prompts and post-history instructions (pure functions, no model)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from personae.core.card_prompt import (
    DEFAULT_SYSTEM_PROMPT,
    TurnInjections,
    base_system_prompt,
    card_text_is_volatile,
    insert_at_depth,
    stable_lore,
    turn_injections,
)
from personae.core.cards import PersonaCard, parse_card_json
from personae.core.macros import MacroContext, humanize, is_volatile, render_all
from personae.core.types import ChatMessage
from tests.card_fixtures import v2_card

NOW = datetime(2026, 12, 4, 19, 5, tzinfo=UTC)


def context(**changes: object) -> MacroContext:
    values: dict[str, object] = {"char": "Mara", "user": "Ada", "now": NOW}
    values.update(changes)
    return MacroContext(**values)  # type: ignore[arg-type]


def test_time_date_and_weekday_macros_render_from_the_clock() -> None:
    text = "{{char}} greets {{user}} at {{time}} on {{weekday}}, {{date}}."
    assert render_all(text, context()) == "Mara greets Ada at 7:05 PM on Friday, December 4, 2026."


def test_random_picks_one_of_its_choices_in_both_spellings() -> None:
    rng = random.Random(3)
    seen = {render_all("{{random:red, green,blue}}", context(rng=rng)) for _ in range(40)}
    assert seen == {"red", "green", "blue"}
    assert render_all("{{random::a, b::c}}", context(rng=random.Random(1))) in {"a, b", "c"}


def test_idle_duration_says_how_long_since_the_last_message() -> None:
    assert render_all("{{idle_duration}}", context(idle=timedelta(minutes=5))) == "5 minutes"
    assert humanize(timedelta(seconds=10)) == "a few seconds"
    assert humanize(timedelta(hours=1)) == "an hour"
    assert humanize(timedelta(days=3)) == "3 days"


def test_only_per_turn_macros_count_as_volatile() -> None:
    assert is_volatile("It is {{time}}.") and is_volatile("{{random:a,b}}")
    assert not is_volatile("{{char}} and {{user}}")
    assert card_text_is_volatile(PersonaCard(name="X", scenario="It is {{weekday}}."))
    assert not card_text_is_volatile(parse_card_json(v2_card()))


def test_original_in_a_cards_system_prompt_is_the_default_one() -> None:
    card = parse_card_json(v2_card())
    assert base_system_prompt(card) == DEFAULT_SYSTEM_PROMPT + "\nWrite in third person."
    assert base_system_prompt(PersonaCard(name="X")) == DEFAULT_SYSTEM_PROMPT


def test_constant_entries_are_the_stable_part_of_the_lorebook() -> None:
    before, after = stable_lore(parse_card_json(v2_card()))
    assert before == ["The year is 2391. Humanity holds eleven systems."]
    assert after == ["Mara never lies to her crew."]


def inject(text: str, history: list[tuple[str, str]] | None = None) -> TurnInjections:
    return turn_injections(
        parse_card_json(v2_card()),
        user="Ada",
        history=history or [],
        text=text,
        now=NOW,
        rng=random.Random(1),
    )


def test_keyword_entries_are_per_turn_and_constants_are_not_repeated() -> None:
    parts = inject("How is the Kestrel's reactor power?")
    assert parts.lore == [
        "The reactor leaks when pushed past 80%.",
        "The Kestrel is a battered corvette with a cracked reactor shield.",
    ]


def test_keys_are_found_in_the_recent_history_too() -> None:
    parts = inject("and then?", [("user", "Tell me of the pirates")])
    assert "Pirates in the Drift fly red-striped hulls." in parts.lore
    older = inject("and then?", [("user", "Tell me of the pirates"), ("assistant", "Later.")])
    assert "Pirates in the Drift fly red-striped hulls." not in older.lore  # 3 back


def test_depth_entries_and_the_depth_prompt_come_with_depth_and_role() -> None:
    parts = inject("the mutiny, over coffee")
    assert (2, "system", "Mara remembers the mutiny on the Orison and goes cold.") in parts.depth
    assert (0, "assistant", "Mara drinks her coffee black, always.") in parts.depth
    assert (3, "system", "Captain Mara Voss is worried about the reactor.") in parts.depth


def test_insert_at_depth_counts_from_the_newest_message() -> None:
    chat = [ChatMessage("user", "1"), ChatMessage("assistant", "2"), ChatMessage("user", "3")]
    out = insert_at_depth(
        chat, [(0, "system", "zero"), (1, "system", "one"), (1, "system", "one more"),
               (9, "user", "deep")]
    )  # fmt: skip
    assert [m.content for m in out] == ["deep", "1", "2", "one\none more", "3", "zero"]

"""Lorebook activation as SillyTavern users expect it, on a 14-entry character book."""

from __future__ import annotations

import random

import pytest

from personae.core.errors import CardError
from personae.core.lorebook import Lorebook, activate, group_by_position, parse_book
from personae.core.world_info import (
    character_book_to_world_info,
    is_world_info,
    world_info_to_character_book,
)
from tests.card_fixtures import v2_card, world_info_file


@pytest.fixture
def book() -> Lorebook:
    return parse_book(v2_card()["data"]["character_book"])


def fired(book: Lorebook, *messages: str, **options: object) -> list[str]:
    rng = options.pop("rng", random.Random(7))
    return [
        a.entry.comment
        for a in activate(book, list(messages), rng=rng, **options)  # type: ignore[arg-type]
    ]


def test_every_entry_of_a_real_shaped_book_is_read(book: Lorebook) -> None:
    assert len(book.entries) == 14
    assert book.name == "Kestrel lore"
    mutiny = next(e for e in book.entries if e.comment == "Mutiny")
    assert (mutiny.position, mutiny.depth, mutiny.role) == ("at_depth", 2, "system")
    coffee = next(e for e in book.entries if e.comment == "Coffee")
    assert (coffee.position, coffee.depth, coffee.role) == ("at_depth", 0, "assistant")


def test_constant_entries_fire_with_nothing_said(book: Lorebook) -> None:
    assert fired(book, "hello") == ["Era", "Rule"]


def test_a_key_in_the_new_message_fires_its_entry(book: Lorebook) -> None:
    assert "Ship" in fired(book, "How is the Kestrel holding up?")


def test_keys_match_regardless_of_case_by_default(book: Lorebook) -> None:
    assert "Ship" in fired(book, "the KESTREL is fine")


def test_a_case_sensitive_entry_needs_the_exact_case(book: Lorebook) -> None:
    assert "Family" not in fired(book, "the voss family")
    assert "Family" in fired(book, "the Voss family")


def test_only_the_last_messages_within_the_scan_depth_are_scanned(book: Lorebook) -> None:
    history = ["Tell me about the Kestrel.", "She flies.", "And the weather?"]
    assert "Ship" not in fired(book, *history)  # default depth 2: the Kestrel is 3 back
    assert "Ship" in fired(book, *history, scan_depth=3)


def test_the_books_own_scan_depth_is_the_default() -> None:
    raw = v2_card()["data"]["character_book"]
    raw["scan_depth"] = 5
    deep = parse_book(raw)
    assert "Ship" in fired(deep, "Kestrel?", "a", "b", "c")


def test_an_entry_scan_depth_overrides_the_books() -> None:
    raw = v2_card()["data"]["character_book"]
    raw["entries"][2]["extensions"]["scan_depth"] = 4
    assert "Ship" in fired(parse_book(raw), "Kestrel?", "a", "b")


def test_and_any_needs_one_secondary_key(book: Lorebook) -> None:
    assert "Reactor" not in fired(book, "the reactor hums")
    assert "Reactor" in fired(book, "the reactor eats power")


def test_and_all_needs_every_secondary_key(book: Lorebook) -> None:
    assert "Halden" not in fired(book, "Halden and the Syndicate")
    assert "Halden" in fired(book, "Halden, the Syndicate, a smuggler")


def test_not_any_fires_only_when_no_secondary_key_appears(book: Lorebook) -> None:
    assert "Pirates" in fired(book, "pirates ahead")
    assert "Pirates" not in fired(book, "pirates want a truce")


def test_not_all_fires_unless_every_secondary_key_appears(book: Lorebook) -> None:
    assert "Treaty" in fired(book, "the treaty was signed")
    assert "Treaty" not in fired(book, "the treaty was signed and broken")


def test_whole_word_entries_ignore_keys_inside_other_words(book: Lorebook) -> None:
    assert "Ion storms" not in fired(book, "a million credits")
    assert "Ion storms" in fired(book, "an ion storm is coming")


def test_a_regex_key_matches_as_a_regular_expression(book: Lorebook) -> None:
    assert "Drifters" in fired(book, "DRIFTERS at the dock")
    assert "Drifters" not in fired(book, "a drifting hull")


def test_disabled_entries_never_fire(book: Lorebook) -> None:
    assert "Old" not in fired(book, "Kestrel")


def test_probability_zero_never_fires_and_partial_probability_rolls(book: Lorebook) -> None:
    assert "Ghost" not in fired(book, "a ghost ship!")
    raw = v2_card()["data"]["character_book"]
    raw["entries"][11]["extensions"]["probability"] = 50
    half = parse_book(raw)
    rolls = [fired(half, "ghost ship", rng=random.Random(seed)) for seed in range(40)]
    hits = sum("Ghost" in r for r in rolls)
    assert 5 < hits < 35


def test_entries_come_out_lowest_insertion_order_first(book: Lorebook) -> None:
    order = [
        a.insertion_order
        for a in activate(book, ["Kestrel reactor power, Halden Syndicate smuggler"])
    ]
    assert order == sorted(order)


def test_a_budget_keeps_the_highest_insertion_order_first(book: Lorebook) -> None:
    names = fired(
        book,
        "Kestrel reactor power pirates",
        budget=30,
        count_tokens=lambda text: len(text) // 4,
    )
    assert names == ["Reactor", "Ship"]  # order 90 and 100; 70 and the constants cut


def test_recursion_is_off_by_default_and_on_when_asked() -> None:
    raw = v2_card()["data"]["character_book"]
    raw["entries"][2]["content"] = "The Kestrel's reactor is patched with tape and power cells."
    book = parse_book(raw)
    assert "Reactor" not in fired(book, "Kestrel?")
    assert "Reactor" in fired(book, "Kestrel?", recursive=True)


def test_keys_render_macros_through_substitute() -> None:
    book = parse_book({"entries": [{"keys": ["{{char}}"], "content": "x", "comment": "me"}]})
    assert fired(book, "Mara?", substitute=lambda k: k.replace("{{char}}", "Mara")) == ["me"]


def test_grouping_puts_depth_entries_with_their_role(book: Lorebook) -> None:
    placed = group_by_position(activate(book, ["mutiny, and coffee"]))
    assert placed.before_char[0].startswith("The year is 2391")
    assert placed.after_char == ["Mara never lies to her crew."]
    assert (0, "assistant", "Mara drinks her coffee black, always.") in placed.at_depth
    assert (2, "system", "Mara remembers the mutiny on the Orison and goes cold.") in (
        placed.at_depth
    )


def test_broken_entries_are_skipped_not_fatal() -> None:
    book = parse_book({"entries": ["junk", {"keys": ["a"]}, {"keys": "a, b", "content": "ok"}]})
    assert [e.keys for e in book.entries] == [("a", "b")]


def test_world_info_file_converts_to_a_character_book_and_back() -> None:
    document = world_info_file()
    assert is_world_info(document)
    book = world_info_to_character_book(document, name="Eldoria")
    assert book["name"] == "Eldoria"
    parsed = parse_book(book)
    dragons = next(e for e in parsed.entries if e.comment == "Dragons")
    assert dragons.keys == ("dragon", "wyrm") and dragons.position == "after_char"
    oath = next(e for e in parsed.entries if e.comment == "Oath")
    assert (oath.position, oath.depth, oath.role) == ("at_depth", 1, "user")
    back = character_book_to_world_info(book)
    assert set(back["entries"]) == {"0", "1", "2", "3"}
    for uid, original in document["entries"].items():
        again = back["entries"][uid]
        for key, value in original.items():
            expected = 0 if key == "role" and value is None else value  # SillyTavern's default
            assert again[key] == expected, (uid, key)


def test_world_info_activation_matches_the_panel() -> None:
    book = parse_book(world_info_to_character_book(world_info_file()))
    assert fired(book, "a dragon!") == ["Tone"]  # secondary key Eldoria missing
    assert fired(book, "a dragon over Eldoria") == ["Tone", "Dragons", "Kingdom"]


def test_a_card_is_not_mistaken_for_a_lorebook() -> None:
    assert not is_world_info(v2_card())
    with pytest.raises(CardError, match="entries"):
        world_info_to_character_book({"name": "x"})

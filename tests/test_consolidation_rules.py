"""The rules consolidation uses to tell notes apart (``profile.likeness``): what is
a duplicate, a vaguer restatement, a refinement, a contradiction, a distinct fact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personae.plugins.profile.consolidation import closest, normalize
from personae.plugins.profile.likeness import is_duplicate, relation, same_words, words_of
from personae.storage.records import MemoryRecord


def record(item_id: int, text: str) -> MemoryRecord:
    return MemoryRecord(item_id, "sage", 1, "fact", text, 0.8)


@pytest.mark.parametrize(
    ("known", "new"),
    [
        ("Takes vitamin D", "Takes vitamin B"),
        ("Has a cat aged 3", "Has a cat aged 9"),
        ("Programs in C++", "Programs in C#"),
        ("Programs in C++", "Programs in C"),
        ("Programs in C", "Programs in C#"),
        ("code word X_400", "code word X_0"),
        ("code word X_0", "code word X_400"),
        ("Has a sister named Anna", "Has a sister named Beth"),
        ("Is 30, her son is 5", "Her son is 30, is 5"),
        ("Has 3 cats aged 3", "Has 3 cats aged 4"),
        ("Keeps the freezer at -18", "Keeps the freezer at 18"),
        ("Works as a nurse", "Works as a doctor"),
    ],
)
def test_notes_that_differ_in_a_number_a_name_or_a_symbol_are_distinct(
    known: str, new: str
) -> None:
    assert relation(known, new) == "distinct"
    assert relation(new, known) == "distinct"
    assert not is_duplicate(known, new) and not is_duplicate(new, known)


@pytest.mark.parametrize(
    ("known", "new"),
    [
        ("Plays the cello", "plays the cello."),
        ("Plays the cello", "The user plays the Cello"),
        ("Has a sister and a brother", "has a brother, and a sister"),
        ("Lives in Berlin", "lives in berlin"),
        ("Programs in C++", "programs in c++!"),
        ("Plays chess on weekends", "Plays chess on the weekends"),
    ],
)
def test_the_same_words_in_another_order_case_or_punctuation_are_a_duplicate(
    known: str, new: str
) -> None:
    assert relation(known, new) == "duplicate"
    assert same_words(known, new) and is_duplicate(known, new)


def test_a_more_precise_note_refines_the_known_one() -> None:
    known = "Works as a nurse at the city hospital"
    assert relation(known, "Works as a night nurse at the city hospital") == "refines"
    assert relation("Has a cat", "Has a cat named Miso") == "refines"


def test_a_vaguer_note_is_merged_unless_it_drops_a_number_or_a_name() -> None:
    known = "Works as a night nurse at the city hospital"
    assert relation(known, "Works as a nurse at the city hospital") == "vaguer"
    assert is_duplicate(known, "Works as a nurse at the city hospital")
    assert relation("Has a cat named Miso", "Has a cat") == "distinct"
    assert relation("Has a cat aged 9", "Has a cat") == "distinct"


def test_a_negation_added_or_dropped_is_a_contradiction() -> None:
    assert relation("Is vegetarian", "Is not vegetarian") == "contradicts"
    assert relation("Doesn't smoke", "Smokes") == "distinct"  # other words: a new fact
    assert relation("Never eats meat", "Eats meat") == "contradicts"
    assert not is_duplicate("Is not vegetarian", "Is vegetarian")


def test_the_tokenisation_keeps_one_letter_words_digits_and_symbols() -> None:
    words = words_of("The user programs in C++, C# and C; takes vitamin B and 3.5 mg of X_400")
    assert words.sequence == (
        "programs",
        "c++",
        "c#",
        "c",
        "takes",
        "vitamin",
        "b",
        "3.5",
        "mg",
        "x_400",
    )
    assert words.marks == {"c++", "c#", "c", "b", "3.5", "x_400"}


def test_names_are_capitalised_words_that_do_not_start_a_sentence() -> None:
    assert words_of("Lives in Berlin. Works at NASA with an iPhone").marks == {
        "berlin",
        "nasa",
        "iphone",
    }


def test_normalize_stays_the_identity_portability_uses() -> None:
    assert normalize("The user programs in C#!") == "programs in c"
    assert normalize("Programs in C++") == normalize("Programs in C#")


def test_the_closest_item_prefers_a_duplicate_to_a_refinement() -> None:
    items = [record(1, "Has a cat"), record(2, "has a cat named Miso")]
    assert closest(items, "Has a cat named Miso") == (items[1], "duplicate")
    assert closest(items, "Has a cat named Miso aged 9") == (items[1], "refines")
    assert closest(items, "Has a dog named Rex") is None


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=1, max_size=8)
_NUMBER = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=2).map(str),
)
_FORM = st.sampled_from(["{}", "X_{}", "#{}", "{}kg", "v{}", "({})", "{}."])


@settings(max_examples=400, deadline=None)
@given(
    before=st.lists(_WORD, max_size=5),
    after=st.lists(_WORD, max_size=5),
    numbers=st.lists(_NUMBER, min_size=2, max_size=2, unique=True),
    form=_FORM,
)
def test_two_notes_differing_only_in_a_number_are_never_merged(
    before: list[str], after: list[str], numbers: list[str], form: str
) -> None:
    first, second = (" ".join([*before, form.format(n), *after]) for n in numbers)
    assert relation(first, second) == "distinct"
    assert relation(second, first) == "distinct"
    assert closest([record(1, first)], second) is None
    assert closest([record(1, second)], first) is None

"""Splitting long replies into Discord-sized messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from personae.adapters.discord.splitting import open_fence, split_message


def test_short_text_is_one_part() -> None:
    assert split_message("Hello.", 2000) == ["Hello."]


def test_parts_end_at_sentences() -> None:
    parts = split_message("One sentence here. " * 20, 100)
    assert all(part.endswith(".") and len(part) <= 100 for part in parts)


def test_paragraphs_are_preferred_to_sentences() -> None:
    text = "A. " * 20 + "\n\n" + "B. " * 20
    assert split_message(text, 100)[0] == ("A. " * 20).strip()


def test_a_split_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"x = {i}" for i in range(50))
    parts = split_message(f"```py\n{code}\n```", 120)
    assert all(open_fence(part) is None and len(part) <= 120 for part in parts)
    assert all(part.startswith("```py\n") for part in parts)


def test_text_without_spaces_is_cut_hard() -> None:
    parts = split_message("x" * 250, 100)
    assert [len(p) for p in parts] == [96, 96, 58]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .\n`"), max_size=600), st.integers(20, 200))
def test_every_part_fits_and_no_words_are_lost(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    original = "".join(text.replace("`", "").split())
    assert "".join("".join(parts).replace("`", "").split()) == original

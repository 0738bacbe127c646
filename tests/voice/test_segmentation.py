"""Streaming sentence segmentation: speech can start at the first full stop."""

from __future__ import annotations

import random

from personae.plugins.voice import SentenceSegmenter, speakable

REPLY = (
    "Hello there! I met Dr. Smith, e.g. the surgeon, at 3.30 today. Was it fun? "
    'He said "Never again." Then we left…\n'
    "1. Pack the bags\n2. Call J. R. R. Tolkien's agent.\n"
    "Read more at https://example.com/page now. **Bye**"
)
EXPECTED = [
    "Hello there!",
    "I met Dr. Smith, e.g. the surgeon, at 3.30 today.",
    "Was it fun?",
    'He said "Never again."',
    "Then we left…",
    "1. Pack the bags",
    "2. Call J. R. R. Tolkien's agent.",
    "Read more at a link now.",
    "Bye",
]


def segment(chunks: list[str], max_chars: int = 300) -> list[str]:
    segmenter = SentenceSegmenter(max_chars)
    sentences: list[str] = []
    for chunk in chunks:
        sentences.extend(segmenter.feed(chunk))
    return sentences + segmenter.flush()


def test_a_sentence_comes_out_as_soon_as_the_next_character_shows_it_ended() -> None:
    segmenter = SentenceSegmenter()
    assert segmenter.feed("Hello there!") == []
    assert segmenter.feed(" I") == ["Hello there!"]
    assert segmenter.feed(" am") == []
    assert segmenter.flush() == ["I am"]


def test_sentences_are_the_same_whatever_the_chunking() -> None:
    assert segment([REPLY]) == EXPECTED
    assert segment(list(REPLY)) == EXPECTED
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(REPLY)), 12))
        chunks = [REPLY[a:b] for a, b in zip([0, *cuts], [*cuts, len(REPLY)], strict=True)]
        assert segment(chunks) == EXPECTED


def test_abbreviations_decimals_initials_and_list_numbers_do_not_end_a_sentence() -> None:
    assert segment(["Mr. and Mrs. Lee paid 2.50 each, i.e. five. Done."]) == [
        "Mr. and Mrs. Lee paid 2.50 each, i.e. five.",
        "Done.",
    ]
    assert segment(["1. Eggs\n2. Milk"]) == ["1. Eggs", "2. Milk"]


def test_a_long_stretch_without_a_full_stop_is_cut_at_a_comma() -> None:
    clause = "and then the long road went on past the mill"
    text = ", ".join([clause] * 6)
    pieces = segment([text], max_chars=120)
    assert len(pieces) > 1
    assert all(len(piece) <= 120 for piece in pieces)
    assert all(piece.endswith(",") for piece in pieces[:-1])
    assert " ".join(pieces) == text


def test_markup_and_urls_are_not_spoken_and_empty_segments_are_skipped() -> None:
    assert speakable("*waves* see `code` at https://x.y/z") == "waves see code at a link"
    assert speakable("[the docs](https://d.example/x)") == "the docs"
    assert segment(["... \n\n *** \n", "Okay."]) == ["Okay."]


def test_the_audio_format_follows_the_accept_header() -> None:
    from personae.plugins.voice import format_for_accept

    assert format_for_accept(None) == "wav"
    assert format_for_accept("audio/ogg") == "ogg"
    assert format_for_accept("audio/ogg; codecs=opus;q=0.9, audio/wav;q=0.5") == "ogg"
    assert format_for_accept("audio/wav;q=0.2, audio/opus") == "ogg"
    assert format_for_accept("*/*") == "wav"
    assert format_for_accept("audio/mpeg, text/html") is None
    assert format_for_accept("audio/ogg;q=0") is None

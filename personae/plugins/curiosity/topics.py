"""What a persona might ask about: areas of a user's life it knows nothing of
yet, with a plain question for each when no model is at hand."""

from __future__ import annotations

import re
from collections.abc import Iterable

from personae.plugins.profile.safety import clean_text, contains_instruction

AREAS: dict[str, tuple[frozenset[str], str]] = {
    "work": (
        frozenset("work works job career profession office student studies study".split()),
        "What fills your days, {user}: work, study, something else?",
    ),
    "hobbies": (
        frozenset("hobby hobbies enjoys plays playing free spare pastime".split()),
        "What do you like to do when you have time to yourself, {user}?",
    ),
    "home": (
        frozenset("lives live living city town country born grew hometown moved".split()),
        "Where do you call home, {user}?",
    ),
    "food": (
        frozenset("food eat eats eating cook cooks cooking dish cuisine meal".split()),
        "What's a dish you never get tired of, {user}?",
    ),
    "music": (
        frozenset("music song songs band bands listens sings instrument guitar piano".split()),
        "What music have you been listening to lately, {user}?",
    ),
    "books": (
        frozenset("book books reads reading novel novels author".split()),
        "Have you read anything good lately, {user}?",
    ),
    "travel": (
        frozenset("travel travels trip trips visited visit vacation holiday abroad".split()),
        "Is there a place you've always wanted to see, {user}?",
    ),
    "pets": (
        frozenset("pet pets dog dogs cat cats animal animals".split()),
        "Do you share your home with any animals, {user}?",
    ),
    "goals": (
        frozenset("goal goals plans plan dream dreams hopes ambition learning".split()),
        "What are you working towards these days, {user}?",
    ),
}
_WORDS = re.compile(r"[a-z']+")
_TOPIC_CHARS = re.compile(r"[^\w\s',.-]+")


def unknown_areas(known: Iterable[str]) -> list[str]:
    """The areas no remembered text touches, in a fixed order."""
    words: set[str] = set()
    for text in known:
        words |= set(_WORDS.findall(text.lower()))
    return [area for area, (cues, _) in AREAS.items() if not cues & words]


def template_question(area: str, user: str) -> str:
    """A plain question about ``area``."""
    return AREAS[area][1].format(user=user)


def same_topic(a: str | None, b: str | None) -> bool:
    """True when two topics are the same, give or take case and punctuation."""
    if not a or not b:
        return False
    words_a, words_b = set(_WORDS.findall(a.lower())), set(_WORDS.findall(b.lower()))
    if not words_a or not words_b:
        return a.strip().lower() == b.strip().lower()
    return len(words_a & words_b) / len(words_a | words_b) >= 0.6


def clean_topic(text: str, *, max_chars: int = 80) -> str | None:
    """A topic fit to name in a prompt: one short line of plain words, never an
    instruction. None when nothing usable is left."""
    topic = clean_text(_TOPIC_CHARS.sub(" ", text))[:max_chars].strip(" ,.-")
    if not topic or contains_instruction(topic):
        return None
    return topic


def clean_question(text: str, *, max_chars: int) -> str | None:
    """A question fit to send: one line, at most ``max_chars``, ending in a
    question mark, never an instruction. None otherwise."""
    question = clean_text(text).replace("<", "").replace(">", "")
    if not question or len(question) > max_chars or "?" not in question:
        return None
    if contains_instruction(question):
        return None
    return question

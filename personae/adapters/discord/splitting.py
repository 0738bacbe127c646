"""Splitting replies longer than a Discord message (2000 characters) at sentence,
paragraph or code-block boundaries. A code block cut in two is closed at the end of
the first part and reopened, with its language, at the start of the next."""

from __future__ import annotations

import re

FENCE = "```"
_CLOSE = "\n" + FENCE
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*(?=\s)")
_MIN_FRACTION = 0.3
"""A boundary earlier than this fraction of the limit is ignored in favour of a
weaker one further on, so parts are not needlessly short."""


def open_fence(text: str) -> str | None:
    """The language of the code block still open at the end of ``text`` (``""`` for
    a block without one), or None when every block is closed."""
    language: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            language = None if language is not None else stripped[3:].strip()
    return language


def _boundaries(window: str) -> list[int]:
    """Candidate cut positions in ``window``, best kind first (each the last one)."""
    found: list[int] = []
    ends = [m.end() for m in re.finditer(r"(?m)^[ \t]*```[ \t]*$", window)]
    closing = [end for end in ends if open_fence(window[:end]) is None]
    if closing:
        found.append(closing[-1])
    for pattern in ("\n\n", "\n"):
        index = window.rfind(pattern)
        if index > 0:
            found.append(index)
    sentences = [m.end() for m in _SENTENCE_END.finditer(window)]
    if sentences:
        found.append(sentences[-1])
    space = max(window.rfind(" "), window.rfind("\t"))
    if space > 0:
        found.append(space)
    return found


def split_once(text: str, limit: int) -> tuple[str, str]:
    """Cut ``text`` into a head of at most ``limit`` characters and the rest.

    ``text`` shorter than the limit comes back whole with an empty rest."""
    if len(text) <= limit:
        return text, ""
    if limit <= len(_CLOSE) + 1:
        raise ValueError("limit too small")
    window = text[: limit - len(_CLOSE)]
    cut = len(window)
    for position in _boundaries(window):
        if position >= limit * _MIN_FRACTION and text[:position].strip():
            cut = position
            break
    language = open_fence(text[:cut])
    head, rest = text[:cut].rstrip(), text[cut:]
    if language is None:
        return head, rest.lstrip()
    return head + _CLOSE, f"{FENCE}{language}\n{rest.lstrip(chr(10))}"


def split_message(text: str, limit: int = 2000) -> list[str]:
    """``text`` as parts of at most ``limit`` characters (see :func:`split_once`)."""
    parts: list[str] = []
    rest = text
    while rest:
        head, rest = split_once(rest, limit)
        if head.strip():
            parts.append(head.rstrip())
    return parts

"""Sentence segmentation of a streaming reply, so speech can start at the first
full stop instead of the last token.

:class:`SentenceSegmenter` takes text in any chunking and returns each sentence
as soon as the text after it shows that it ended (a space or a line break after
``.``, ``!``, ``?`` or ``…``). Feeding a text in one piece or character by
character gives the same sentences.
"""

from __future__ import annotations

import re

_CLOSERS = "\"')\\]\u201d\u2019"  # quotes and brackets that may follow a sentence end
_END = re.compile(rf"[.!?\u2026]+[{_CLOSERS}]*(?=\s)|\n+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e eg ie cf approx no fig vol ca inc ltd co "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_LIST_NUMBER = re.compile(r"(?:^|\n)\s*\d{1,3}\.$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`#~>|]+")
_URL = re.compile(r"https?://\S+")
_SPACE = re.compile(r"\s+")
_SPEAKABLE = re.compile(r"\w")


def speakable(text: str) -> str:
    """``text`` as it should be spoken: markdown marks and link targets removed,
    URLs replaced by "a link", whitespace collapsed. Empty if nothing is left to say."""
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("a link", text)
    text = _MARKUP.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return text if _SPEAKABLE.search(text) else ""


class SentenceSegmenter:
    """Splits streamed text into speakable sentences.

    ``feed(chunk)`` returns the sentences completed so far; ``flush()`` returns
    what is left at the end of the stream. A stretch longer than ``max_chars``
    without a sentence end is cut at the last comma, semicolon, colon or space."""

    def __init__(self, max_chars: int = 300) -> None:
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        sentences: list[str] = []
        while (cut := self._next_cut()) is not None:
            sentence, self._buffer = self._buffer[:cut], self._buffer[cut:]
            if spoken := speakable(sentence):
                sentences.append(spoken)
        return sentences

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        spoken = speakable(rest)
        return [spoken] if spoken else []

    def _next_cut(self) -> int | None:
        buffer = self._buffer
        for match in _END.finditer(buffer):
            end = match.end()
            if match.group().startswith("\n"):
                return end
            if match.group() == "." and self._is_abbreviation(buffer[:end]):
                continue
            return end
        if len(buffer) > self.max_chars:
            return self._soft_cut(buffer)
        return None

    @staticmethod
    def _is_abbreviation(text: str) -> bool:
        if _LIST_NUMBER.search(text):
            return True
        match = _WORD_BEFORE.search(text)
        if match is None:
            return False
        word = match.group(1).lower()
        return word in _ABBREVIATIONS or len(word) == 1

    def _soft_cut(self, buffer: str) -> int:
        window = buffer[: self.max_chars]
        for marks in (",;:", " "):
            best = max(window.rfind(mark) for mark in marks)
            if best > self.max_chars // 3:
                return best + 1
        return self.max_chars

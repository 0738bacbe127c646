"""How a new note relates to one a persona already knows: the same, vaguer, more
precise, contradicting, or a different fact.

The comparison has its own tokenisation (recall's keyword tokeniser drops
one-character words and the ``+`` and ``#`` that tell C from C# and C++, which is
right for ranking and wrong for telling facts apart). A note's words are compared
as a set, case and punctuation aside; words that carry identity are **marks**:

- numbers and anything holding a digit (``9``, ``3.5``, ``X_400``);
- identifier-like words: an ``_``, ``+`` or ``#`` in them (``C#``, ``C++``, ``snake_case``);
- single letters other than the articles "a" and "I" (vitamin ``B``, grade ``A``);
- names: a capitalised word that does not start the note or a sentence, or a word
  with a capital inside it (``Miso``, ``NASA``, ``iPhone``).

Negations (``not``, ``never``, ``doesn't`` ...) are their own kind of word. Then,
for a known note K and a new note N:

- **duplicate**: the same words (other order, case or punctuation), with the marks
  in the same order and each after the same word ("Is 30, son is 5" is neither
  "Is 5, son is 30" nor "Son is 30, is 5");
- **vaguer**: N's words are a part of K's, and none of those N lacks is a mark or a
  negation ("Works as a nurse" after "Works as a night nurse");
- **refines**: K's words are a part of N's and N adds no negation: N says
  everything K says and more ("Works as a night nurse" after "Works as a nurse");
- **contradicts**: the same words except negations on one side only ("Is not
  vegetarian" after "Is vegetarian");
- **distinct**: anything else. In particular two notes are never duplicates when
  a word only one of them has is a number or a name.

Consolidation merges duplicates and vaguer notes into the known item, turns a
refinement into an update of it, and retires a contradicted item for the new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Relation = Literal["duplicate", "vaguer", "refines", "contradicts", "distinct"]

_TOKEN = re.compile(r"(?<![\w-])-\d+(?:[.,:]\d+)*\w*|\w+(?:['\u2019]\w+)*(?:[.,:]\d+)*[+#]*|[+#]+")
"""A word: a signed number, a run of letters, digits and ``_`` (with inner
apostrophes, decimals and trailing ``+``/``#``), or a lone run of ``+``/``#``."""
_SENTENCE_END = re.compile(r"[.!?]\s*$")
_SUBJECT = ("the user", "user", "they", "he", "she")
FILLER = frozenset(
    "a an the and or of to in at on for with by as is are was were be been being am "
    "very really also just some".split()
)
"""Words a restatement may add or drop without changing what a note says."""
NEGATIONS = frozenset("not no never nor none nobody nothing nowhere neither cannot".split())


def _is_negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _is_mark(token: str, starts_sentence: bool) -> bool:
    if any(ch.isdigit() or ch in "_+#" for ch in token):
        return True
    if len(token) == 1:
        return token.lower() not in ("a", "i")
    if any(ch.isupper() for ch in token[1:]):
        return True
    return token[0].isupper() and not starts_sentence


@dataclass(frozen=True, slots=True)
class Words:
    """A note as the comparison sees it. A word said twice counts twice (its
    second occurrence is tagged: the word, a NUL character, ``2``)."""

    sequence: tuple[str, ...]
    """The lower-cased words in order, fillers left out (marks are never fillers)."""
    marks: frozenset[str]
    negations: frozenset[str]

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.sequence)


def _strip_subject(text: str) -> str:
    plain = text.strip()
    lowered = plain.lower()
    for subject in _SUBJECT:
        if lowered.startswith(subject + " "):
            return plain[len(subject) + 1 :].lstrip()
    return plain


@lru_cache(maxsize=16384)
def words_of(text: str) -> Words:
    """The words of a note; a leading "The user"/"User"/"They"/"He"/"She" is left out."""
    plain = _strip_subject(text)
    sequence: list[str] = []
    marks: set[str] = set()
    negations: set[str] = set()
    seen: dict[str, int] = {}
    position = 0
    for match in _TOKEN.finditer(plain):
        token = match.group()
        starts_sentence = position == 0 or bool(
            _SENTENCE_END.search(plain[position : match.start()])
        )
        position = match.end()
        word = token.lower().replace("\u2019", "'")
        mark = _is_mark(token, starts_sentence)
        if not mark and word in FILLER:
            continue
        seen[word] = count = seen.get(word, 0) + 1
        tagged = word if count == 1 else f"{word}\x00{count}"
        sequence.append(tagged)
        if mark:
            marks.add(tagged)
        elif _is_negation(word):
            negations.add(tagged)
    return Words(tuple(sequence), frozenset(marks), frozenset(negations))


def _placed(note: Words, marks: frozenset[str]) -> list[tuple[str, str]]:
    """Each of ``marks`` in the note, in order, with the word before it."""
    seq = note.sequence
    return [(w, seq[i - 1] if i else "") for i, w in enumerate(seq) if w in marks]


def relation(known: str, new: str) -> Relation:
    """How the note ``new`` relates to the note ``known`` (see the module's rules)."""
    k, n = words_of(known), words_of(new)
    k_words, n_words = k.words, n.words
    if not k_words or not n_words:
        return "duplicate" if known.strip().lower() == new.strip().lower() else "distinct"
    if k_words == n_words:
        marks = k.marks | n.marks
        return "duplicate" if _placed(k, marks) == _placed(n, marks) else "distinct"
    only_known, only_new = k_words - n_words, n_words - k_words
    negations = k.negations | n.negations
    if (only_known | only_new) <= negations and not (only_known and only_new):
        return "contradicts"
    if not only_new:
        return "distinct" if only_known & (k.marks | negations) else "vaguer"
    if not only_known:
        return "distinct" if only_new & negations else "refines"
    return "distinct"


def is_duplicate(known: str, new: str) -> bool:
    """True when ``new`` says nothing ``known`` does not: a duplicate or a vaguer
    restatement, which consolidation merges into the known item."""
    return relation(known, new) in ("duplicate", "vaguer")


def same_words(a: str, b: str) -> bool:
    """True when the two notes are duplicates of each other (an update that
    changes only case, order or punctuation changes nothing)."""
    return relation(a, b) == "duplicate"


class Restatements:
    """Notes kept to tell whether a new one restates one of them (a duplicate or a
    vaguer note: :func:`is_duplicate`), quickly over many notes: a restatement's
    words all appear in the note it restates, so only notes holding its rarest
    word are compared. Importers use it to skip what a scope already knows."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._texts: list[str] = []
        self._by_word: dict[str, list[int]] = {}
        self._empty: list[int] = []
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        index = len(self._texts)
        self._texts.append(text)
        words = words_of(text).words
        for word in words:
            self._by_word.setdefault(word, []).append(index)
        if not words:
            self._empty.append(index)

    def restated(self, text: str) -> str | None:
        """The kept note ``text`` restates, or None."""
        words = words_of(text).words
        if words:
            postings = [self._by_word.get(word, []) for word in words]
            nearby = min(postings, key=len)
        else:
            nearby = self._empty
        return next((self._texts[i] for i in nearby if is_duplicate(self._texts[i], text)), None)

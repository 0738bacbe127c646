"""Lorebooks (SillyTavern's World Info, a card's ``character_book``): which entries
a turn activates, and the two file formats they travel in.

Activation follows SillyTavern's ``checkWorldInfo``:

- an entry fires when one of its ``keys`` appears in the last ``scan_depth``
  messages (the new one included; default 2, the book's ``scan_depth``, or the
  entry's own ``extensions.scan_depth``);
- with ``selective`` and ``secondary_keys``, the secondary keys must also agree,
  by the entry's logic: AND ANY (one of them appears), AND ALL (all of them),
  NOT ANY (none of them), NOT ALL (not all of them);
- ``constant`` entries fire on every turn; disabled ones never;
- matching ignores case unless ``case_sensitive``; ``match_whole_words`` matches
  single-word keys only as whole words; a key written ``/pattern/flags`` is a
  regular expression;
- ``extensions.probability`` (0-100) rolls once per activation;
- entries are considered from the highest ``insertion_order`` down, so a token
  budget keeps the highest; they are returned lowest first (the highest ends up
  nearest the end of its block, as SillyTavern places them);
- recursive scanning (the content of activated entries triggering others) is off
  unless asked for.

The module is pure: no I/O, no clock; randomness comes from the ``rng`` passed in.
SillyTavern's World Info file format is converted in :mod:`personae.core.world_info`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import regex

log = logging.getLogger(__name__)

Position = Literal[
    "before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom"
]
Role = Literal["system", "user", "assistant"]
Logic = Literal["and_any", "not_all", "not_any", "and_all"]

POSITIONS: tuple[Position, ...] = (
    "before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom"
)  # fmt: skip
"""SillyTavern's ``world_info_position`` numbers are the indexes of this tuple."""
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
"""SillyTavern's ``extension_prompt_roles`` numbers are the indexes of this tuple."""
LOGICS: tuple[Logic, ...] = ("and_any", "not_all", "not_any", "and_all")
"""SillyTavern's ``world_info_logic`` numbers are the indexes of this tuple."""

DEFAULT_SCAN_DEPTH = 2
DEFAULT_DEPTH = 4
DEFAULT_ORDER = 100
MAX_SCAN_DEPTH = 1000
REGEX_TIMEOUT_SECONDS = 0.05
"""A regular-expression key that takes longer than this on one scan does not match."""
_MATCHER = "\x01"
_JOINER = "\n" + _MATCHER


@dataclass(frozen=True, slots=True)
class LoreEntry:
    """One lorebook entry, normalised from either file format."""

    uid: int | str
    content: str
    keys: tuple[str, ...] = ()
    secondary_keys: tuple[str, ...] = ()
    comment: str = ""
    enabled: bool = True
    constant: bool = False
    selective: bool = True
    logic: Logic = "and_any"
    insertion_order: int = DEFAULT_ORDER
    position: Position = "before_char"
    depth: int = DEFAULT_DEPTH
    role: Role = "system"
    probability: float = 100.0
    use_probability: bool = True
    case_sensitive: bool | None = None
    match_whole_words: bool | None = None
    scan_depth: int | None = None
    exclude_recursion: bool = False
    prevent_recursion: bool = False


@dataclass(frozen=True, slots=True)
class Lorebook:
    """A lorebook's entries and its book-level settings."""

    entries: tuple[LoreEntry, ...]
    name: str = ""
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False


@dataclass(frozen=True, slots=True)
class ActivatedEntry:
    """An entry that fires on this turn, with where it goes in the prompt."""

    entry: LoreEntry
    reason: Literal["constant", "key", "recursion"]

    @property
    def content(self) -> str:
        return self.entry.content

    @property
    def position(self) -> Position:
        return self.entry.position

    @property
    def depth(self) -> int:
        return self.entry.depth

    @property
    def role(self) -> Role:
        return self.entry.role

    @property
    def insertion_order(self) -> int:
        return self.entry.insertion_order


# --- reading ---------------------------------------------------------------------------


def parse_book(book: Mapping[str, Any] | None) -> Lorebook:
    """A card's ``character_book`` (the V2/V3 format: ``entries`` a list) as a
    :class:`Lorebook`. Lenient like SillyTavern: an entry it cannot use (no
    content, not an object) is skipped and logged, never fatal."""
    if not book:
        return Lorebook(entries=())
    raw_entries = book.get("entries")
    if isinstance(raw_entries, Mapping):  # a World Info file stored as a book
        from personae.core.world_info import world_info_to_character_book

        raw_entries = list(world_info_to_character_book(book)["entries"])
    entries: list[LoreEntry] = []
    for index, raw in enumerate(raw_entries if isinstance(raw_entries, list) else []):
        entry = _entry(raw, index)
        if entry is not None:
            entries.append(entry)
    return Lorebook(
        entries=tuple(entries),
        name=as_text(book.get("name")),
        scan_depth=_int_or_none(book.get("scan_depth")),
        token_budget=_int_or_none(book.get("token_budget")),
        recursive_scanning=book.get("recursive_scanning") is True,
    )


def _entry(raw: Any, index: int) -> LoreEntry | None:
    if not isinstance(raw, Mapping):
        log.warning("lorebook entry %d is not an object; skipped", index)
        return None
    content = raw.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    ext = raw.get("extensions") if isinstance(raw.get("extensions"), Mapping) else {}
    assert isinstance(ext, Mapping)
    position = _enum(ext.get("position"), POSITIONS, None)
    if position is None:
        position = "before_char" if raw.get("position") == "before_char" else "after_char"
        if raw.get("position") is None:
            position = "before_char"
    probability = _number(ext.get("probability"), 100.0)
    uid = raw.get("id", index)
    return LoreEntry(
        uid=uid if isinstance(uid, int | str) and not isinstance(uid, bool) else index,
        content=content,
        keys=as_keys(raw.get("keys")),
        secondary_keys=as_keys(raw.get("secondary_keys")),
        comment=as_text(raw.get("comment")) or as_text(raw.get("name")),
        enabled=raw.get("enabled") is not False,
        constant=raw.get("constant") is True,
        selective=raw.get("selective") is not False,
        logic=_enum(ext.get("selectiveLogic"), LOGICS, "and_any") or "and_any",
        insertion_order=as_int(raw.get("insertion_order"), DEFAULT_ORDER),
        position=position,
        depth=max(0, as_int(ext.get("depth"), DEFAULT_DEPTH)),
        role=_enum(ext.get("role"), ROLES, "system") or "system",
        probability=min(100.0, max(0.0, probability)),
        use_probability=ext.get("useProbability") is not False,
        case_sensitive=_bool_or_none(ext.get("case_sensitive", raw.get("case_sensitive"))),
        match_whole_words=_bool_or_none(ext.get("match_whole_words")),
        scan_depth=_int_or_none(ext.get("scan_depth")),
        exclude_recursion=ext.get("exclude_recursion") is True,
        prevent_recursion=ext.get("prevent_recursion") is True,
    )


def as_keys(value: Any) -> tuple[str, ...]:
    """Keys as a tuple of non-empty texts (a comma-separated text too)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(k.strip() for k in value if isinstance(k, str) and k.strip())


def as_text(value: Any) -> str:
    """``value`` if it is text, else ``""``."""
    return value if isinstance(value, str) else ""


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def as_int(value: Any, default: int) -> int:
    """``value`` as an int if it is a number, else ``default``."""
    return int(_number(value, default))


def _int_or_none(value: Any) -> int | None:
    number = _number(value, -1.0)
    return int(number) if number >= 0 else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_T = TypeVar("_T")


def _enum(value: Any, names: tuple[_T, ...], default: _T | None) -> _T | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str):
        lowered = value.strip().lower().replace(" ", "_")
        for name in names:
            if lowered == name:
                return name
    return default


# --- activation ------------------------------------------------------------------------


def activate(
    book: Lorebook,
    messages: Sequence[str],
    *,
    scan_depth: int | None = None,
    rng: random.Random | None = None,
    recursive: bool | None = None,
    max_recursion_steps: int = 3,
    case_sensitive: bool = False,
    match_whole_words: bool = False,
    budget: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    substitute: Callable[[str], str] | None = None,
) -> list[ActivatedEntry]:
    """The entries of ``book`` that fire for a conversation whose messages are
    ``messages`` (oldest first, the new user message last; each may carry its
    speaker as ``"Name: text"``, as SillyTavern scans them).

    ``scan_depth`` (default: the book's, else 2) is how many of the last messages
    are scanned. ``recursive`` (default: the book's ``recursive_scanning``) lets
    activated content trigger further entries. ``budget`` with ``count_tokens``
    caps the total content, keeping the highest ``insertion_order`` first.
    ``substitute`` renders macros in keys (``{{char}}``). The result is sorted by
    ``insertion_order``, lowest first.
    """
    rng = rng or random.Random()
    depth = book.scan_depth if scan_depth is None else scan_depth
    depth = min(MAX_SCAN_DEPTH, max(0, DEFAULT_SCAN_DEPTH if depth is None else depth))
    recent = [m.strip() for m in list(messages)[::-1][:MAX_SCAN_DEPTH]]
    recursive = book.recursive_scanning if recursive is None else recursive
    candidates = sorted(
        (e for e in book.entries if e.enabled and e.content.strip()),
        key=lambda e: -e.insertion_order,
    )
    defaults = _Defaults(case_sensitive, match_whole_words, substitute)
    chosen: list[ActivatedEntry] = []
    seen: set[int] = set()
    failed: set[int] = set()
    spent = 0
    recursed: list[str] = []
    step = 0
    while True:
        found: list[ActivatedEntry] = []
        for entry in candidates:
            if id(entry) in seen or id(entry) in failed:
                continue
            if step > 0 and entry.exclude_recursion:
                continue
            if entry.constant:
                if step == 0:
                    found.append(ActivatedEntry(entry, "constant"))
                continue
            if not entry.keys:
                continue
            own_depth = depth if entry.scan_depth is None else min(entry.scan_depth, MAX_SCAN_DEPTH)
            haystack = _MATCHER + _JOINER.join(recent[:own_depth])
            if recursed:
                haystack += _JOINER + _JOINER.join(recursed)
            if _fires(entry, haystack, defaults):
                found.append(ActivatedEntry(entry, "key" if step == 0 else "recursion"))
        added: list[ActivatedEntry] = []
        for item in found:
            entry = item.entry
            if entry.use_probability and entry.probability < 100:
                if rng.random() * 100 > entry.probability:
                    failed.add(id(entry))
                    continue
            if budget is not None and count_tokens is not None:
                cost = count_tokens(entry.content)
                if spent + cost > budget:
                    return _in_prompt_order([*chosen, *added])
                spent += cost
            seen.add(id(entry))
            added.append(item)
        chosen.extend(added)
        step += 1
        fresh = [a.entry.content for a in added if not a.entry.prevent_recursion]
        if not recursive or not fresh or step > max_recursion_steps:
            return _in_prompt_order(chosen)
        recursed.extend(fresh)


def _in_prompt_order(items: list[ActivatedEntry]) -> list[ActivatedEntry]:
    return sorted(items, key=lambda a: a.insertion_order)


@dataclass(frozen=True, slots=True)
class _Defaults:
    case_sensitive: bool
    match_whole_words: bool
    substitute: Callable[[str], str] | None


def _fires(entry: LoreEntry, haystack: str, defaults: _Defaults) -> bool:
    def matches(key: str) -> bool:
        if defaults.substitute is not None:
            key = defaults.substitute(key).strip()
        return bool(key) and match_key(
            haystack,
            key,
            case_sensitive=defaults.case_sensitive
            if entry.case_sensitive is None
            else entry.case_sensitive,
            whole_words=defaults.match_whole_words
            if entry.match_whole_words is None
            else entry.match_whole_words,
        )

    if not any(matches(key) for key in entry.keys):
        return False
    if not (entry.selective and entry.secondary_keys):
        return True
    hits = [matches(key) for key in entry.secondary_keys]
    if entry.logic == "and_any":
        return any(hits)
    if entry.logic == "not_all":
        return not all(hits)
    if entry.logic == "not_any":
        return not any(hits)
    return all(hits)


_REGEX_KEY = regex.compile(r"^/([\w\W]+?)/([gimsuy]*)$")
_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "u": 0, "g": 0, "y": 0}


def match_key(haystack: str, key: str, *, case_sensitive: bool, whole_words: bool) -> bool:
    """Whether ``key`` appears in ``haystack`` as SillyTavern matches it."""
    pattern = _regex_key(key)
    if pattern is not None:
        try:
            return pattern.search(haystack, timeout=REGEX_TIMEOUT_SECONDS) is not None
        except TimeoutError:
            log.warning("lorebook key %r took too long to match; treated as no match", key)
            return False
    if not case_sensitive:
        haystack, key = haystack.lower(), key.lower()
    if not whole_words or len(key.split()) > 1:
        return key in haystack
    return regex.search(rf"(?:^|\W)({regex.escape(key)})(?:$|\W)", haystack) is not None


def _regex_key(key: str) -> regex.Pattern[str] | None:
    found = _REGEX_KEY.match(key)
    if found is None:
        return None
    body, letters = found.groups()
    if regex.search(r"(^|[^\\])/", body):
        return None
    flags = 0
    for letter in letters:
        flags |= _FLAGS[letter]
    try:
        return regex.compile(body.replace("\\/", "/"), flags)
    except regex.error:
        return None


@dataclass(frozen=True, slots=True)
class PlacedLore:
    """Activated entries grouped by where the prompt puts them."""

    before_char: list[str] = field(default_factory=list)
    after_char: list[str] = field(default_factory=list)
    at_depth: list[tuple[int, Role, str]] = field(default_factory=list)


def group_by_position(activated: Sequence[ActivatedEntry]) -> PlacedLore:
    """Entries by place: before the card (``before_char``, ``em_top``), after it
    (``after_char``, ``an_top``, ``an_bottom``, ``em_bottom``), and at a depth in
    the history with a role (``at_depth``), keeping the order given."""
    placed = PlacedLore()
    for item in activated:
        text = item.content.strip()
        if item.position in ("before_char", "em_top"):
            placed.before_char.append(text)
        elif item.position == "at_depth":
            placed.at_depth.append((item.depth, item.role, text))
        else:
            placed.after_char.append(text)
    return placed

"""What the importers share: persona id mapping, screening of imported text, and
the report of everything a source holds that is not imported as it stood."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from personae.core.cards import slugify
from personae.plugins.profile.safety import clean_text, contains_instruction, screen_memory
from personae.portability.errors import PortabilityError
from personae.portability.records import Problem

MAX_TEXT = 500
_SHOWN = 5
"""Row numbers or labels listed in one report line; the rest are counted."""


def parse_persona_map(pairs: list[str] | None) -> dict[str, str]:
    """``["old=new", ...]`` as a mapping; the new ids must be valid persona ids."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise PortabilityError(f"--persona-map takes OLD=NEW, not {pair!r}.")
        if slugify(new.strip()) != new.strip():
            raise PortabilityError(
                f"{new.strip()!r} is not a persona id (lowercase letters, digits, '-', '_')."
            )
        mapping[old.strip()] = new.strip()
    return mapping


def map_persona(name: str, mapping: Mapping[str, str]) -> str:
    """The personae id for a source persona: mapped, else its name as a slug."""
    return mapping.get(name) or slugify(name)


INSTRUCTION = "reads as an instruction to the bot, not something about the user"


def screen(text: str, parts: Iterable[str] = ()) -> tuple[str, str | None]:
    """The text cleaned to one line, and why it cannot be a memory item (or None).

    The same screen learning uses (:mod:`personae.plugins.profile.safety`, which
    normalises look-alike letters and invisible characters first): instructions to
    the bot are never stored. ``parts`` are the source's own words that ``text``
    wraps (a summary, a preference value); each is searched for an instruction on
    its own too, so a wrapper such as ``Topics: ...`` cannot hide an order. (A part
    is not refused for merely starting like an order: a value such as "stop motion
    films" is a fine interest.)"""
    cleaned, reason = screen_memory(text, max_chars=MAX_TEXT)
    if reason is not None and "instruction" not in reason:
        return cleaned, reason  # empty, or too long
    if reason is not None or any(contains_instruction(clean_text(part)) for part in parts):
        return cleaned, INSTRUCTION
    return cleaned, None


def humanize(key: str) -> str:
    """``favorite_game`` -> ``Favorite game``."""
    words = " ".join(key.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]


def plural(count: int, noun: str) -> str:
    """``1 row``, ``3 rows``, ``2 entries``."""
    if count == 1:
        return f"1 {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"


def listing(labels: list[str]) -> str:
    """``#1, #4, #6 and 2 more``."""
    shown = ", ".join(labels[:_SHOWN])
    rest = len(labels) - _SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


class Report:
    """What a reader leaves out (or imports somewhere other than the source said),
    counted per source file and reason, in the order first met.

    ``skip(source, "row of table chat_messages", "unknown role 'system'", "#6")``
    three times becomes one problem: ``skipped 3 rows of table chat_messages:
    unknown role 'system' (#6, #9, #12)``."""

    def __init__(self) -> None:
        self._skipped: dict[tuple[str, str, str], list[str]] = {}
        self._notes: dict[tuple[str, str], None] = {}

    def skip(self, source: str, noun: str, reason: str, label: str | None = None) -> None:
        """One ``noun`` of ``source`` not imported because of ``reason``. ``noun`` is
        singular and may carry a tail: ``"row of table user_settings"``."""
        labels = self._skipped.setdefault((source, noun, reason), [])
        labels.append(label or "")

    def note(self, source: str, text: str) -> None:
        """Something imported differently from how the source had it (merged,
        redirected to another persona), with the option that changes it."""
        self._notes.setdefault((source, text), None)

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        for (source, noun, reason), labels in self._skipped.items():
            head, _, tail = noun.partition(" of ")
            what = plural(len(labels), head) + (f" of {tail}" if tail else "")
            named = [label for label in labels if label]
            detail = f" ({listing(named)})" if named else ""
            found.append(Problem(source, f"skipped {what}: {reason}{detail}"))
        found.extend(Problem(source, text) for source, text in self._notes)
        return found

"""SillyTavern's macros in card text, beyond ``{{char}}`` and ``{{user}}``.

``{{time}}`` (``7:05 PM``), ``{{date}}`` (``December 4, 2026``), ``{{weekday}}``
(``Friday``), ``{{random:a,b,c}}`` / ``{{random::a::b}}`` (one of the choices,
drawn on every render) and ``{{idle_duration}}`` (how long since the last message
of the conversation, ``5 minutes``) change from turn to turn. Text that holds
them cannot sit in the prompt's stable prefix without breaking the model's
prompt cache there, so :func:`is_volatile` lets the prompt builder render such
text on every turn and place it late; ``{{char}}``/``{{user}}`` alone render once.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from personae.core.cards import render_macros

_VOLATILE_RE = re.compile(
    r"\{\{\s*(time|date|weekday|idle_duration|random\s*:[^}]*)\s*\}\}", re.IGNORECASE
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MacroContext:
    """What the per-turn macros read: who speaks, when, and since when it is idle."""

    char: str
    user: str
    now: datetime
    idle: timedelta | None = None
    """Time since the conversation's last message (None: it has none)."""
    rng: random.Random = field(default_factory=random.Random)


def is_volatile(text: str) -> bool:
    """Whether ``text`` holds a macro whose value changes from turn to turn."""
    return _VOLATILE_RE.search(text) is not None


def render_all(text: str, context: MacroContext) -> str:
    """Every macro rendered: the per-turn ones, then ``{{char}}``/``{{user}}``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        lowered = name.lower()
        if lowered == "time":
            return _time(context.now)
        if lowered == "date":
            return f"{_MONTHS[context.now.month - 1]} {context.now.day}, {context.now.year}"
        if lowered == "weekday":
            return _WEEKDAYS[context.now.weekday()]
        if lowered == "idle_duration":
            return humanize(context.idle) if context.idle is not None else "just now"
        return _random_choice(name, context.rng)

    rendered = _VOLATILE_RE.sub(replace, text)
    return render_macros(rendered, char=context.char, user=context.user)


def _time(now: datetime) -> str:
    hour = now.hour % 12 or 12
    return f"{hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"


def _random_choice(spec: str, rng: random.Random) -> str:
    body = spec.split(":", 1)[1]
    if body.startswith(":"):
        choices = body[1:].split("::")
    else:
        choices = body.split(",")
    choices = [choice.strip() for choice in choices]
    return rng.choice(choices) if choices else ""


def humanize(delta: timedelta) -> str:
    """A duration as SillyTavern says it: ``a few seconds``, ``5 minutes``,
    ``an hour``, ``3 days``."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size * 0.75:
            count = max(1, round(seconds / size))
            if count == 1:
                return "an hour" if unit == "hour" else f"a {unit}"
            return f"{count} {unit}s"
    return "a few seconds"

"""What a card adds to a turn's prompt besides its text: lorebook entries, the
depth prompt, post-history instructions and ``{{original}}``, each placed where
SillyTavern users expect it while the prompt's prefix stays stable.

- ``constant`` entries that always fire (no probability roll) never change, so they
  go into the card's part of the system message: ``before_char`` ones before the
  description, ``after_char`` ones after the scenario (SillyTavern's order).
- Entries activated by keys change from turn to turn; they go into one system
  message after the history, next to the new message, ordered by insertion order.
- ``at_depth`` entries and ``extensions.depth_prompt`` go into the history at their
  depth with their role (0: after the new message, 1: before it, ...). Their
  place moves with every turn, so the model re-reads the last ``depth`` messages
  each time; keep depths small.
- ``post_history_instructions`` follow the new user message, as a system message
  (:func:`personae.core.prompt.post_history_text`).

Everything here is pure: the prompt builder passes the history and the clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from personae.core.cache import PerObject
from personae.core.cards import PersonaCard
from personae.core.lorebook import (
    ActivatedEntry,
    Lorebook,
    Role,
    activate,
    group_by_position,
    parse_book,
)
from personae.core.macros import MacroContext, is_volatile, render_all
from personae.core.types import ChatMessage

DEFAULT_SYSTEM_PROMPT = (
    "You are {{char}}. Stay in character and reply as {{char}} would, "
    "in {{char}}'s own voice. Keep replies conversational."
)
"""The system prompt of a card that has none, and what ``{{original}}`` in a
card's own ``system_prompt`` stands for."""

DEFAULT_DEPTH_PROMPT_DEPTH = 4


def base_system_prompt(card: PersonaCard) -> str:
    """The card's ``system_prompt`` with ``{{original}}`` replaced by the default
    one, or the default when the card has none."""
    own = card.system_prompt.strip()
    if not own:
        return DEFAULT_SYSTEM_PROMPT
    return own.replace("{{original}}", DEFAULT_SYSTEM_PROMPT)


_BOOKS: PerObject[Lorebook] = PerObject(512)


def card_book(card: PersonaCard) -> Lorebook:
    """The card's lorebook, parsed once per card."""
    return _BOOKS.get(card, lambda: parse_book(card.character_book))


def _always(entry_constant: bool, use_probability: bool, probability: float) -> bool:
    return entry_constant and (not use_probability or probability >= 100)


def stable_lore(card: PersonaCard) -> tuple[list[str], list[str]]:
    """The constant entries that fire on every turn without a roll, as
    (before the card, after the card), lowest insertion order first. Their text
    is not rendered (the caller renders macros with the card's)."""
    entries = sorted(
        (
            e
            for e in card_book(card).entries
            if e.enabled
            and _always(e.constant, e.use_probability, e.probability)
            and e.position != "at_depth"
        ),
        key=lambda e: e.insertion_order,
    )
    before = [e.content for e in entries if e.position in ("before_char", "em_top")]
    after = [e.content for e in entries if e.position not in ("before_char", "em_top")]
    return before, after


@dataclass(frozen=True, slots=True)
class TurnInjections:
    """What the card adds to one turn, macros rendered."""

    lore: list[str] = field(default_factory=list)
    """Activated entries for the system message after the history."""
    depth: list[tuple[int, Role, str]] = field(default_factory=list)
    """(depth, role, text) to insert into the history."""
    activated: list[ActivatedEntry] = field(default_factory=list)


def turn_injections(
    card: PersonaCard,
    *,
    user: str,
    history: Sequence[tuple[str, str]],
    text: str,
    now: datetime,
    idle_seconds: float | None = None,
    rng: random.Random | None = None,
    scan_depth: int | None = None,
    recursive: bool | None = None,
    max_recursion_steps: int = 3,
    budget: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> TurnInjections:
    """The card's per-turn additions. ``history`` is (role, content) oldest first;
    ``text`` the new user message. Lorebook keys are looked for in the last
    ``scan_depth`` messages as ``Name: text``, as SillyTavern scans them."""
    rng = rng or random.Random()
    context = MacroContext(
        char=card.name,
        user=user,
        now=now,
        idle=None if idle_seconds is None else timedelta(seconds=idle_seconds),
        rng=rng,
    )

    def render(value: str) -> str:
        return render_all(value, context).strip()

    book = card_book(card)
    activated: list[ActivatedEntry] = []
    if book.entries:
        speaker = {"user": user, "assistant": card.name}
        scanned = [f"{speaker.get(role, role)}: {content}" for role, content in history]
        scanned.append(f"{user}: {text}")
        activated = [
            a
            for a in activate(
                book,
                scanned,
                scan_depth=scan_depth,
                rng=rng,
                recursive=recursive,
                max_recursion_steps=max_recursion_steps,
                budget=budget,
                count_tokens=count_tokens,
                substitute=lambda key: render_all(key, context),
            )
            if not (
                a.reason == "constant"
                and a.position != "at_depth"
                and _always(True, a.entry.use_probability, a.entry.probability)
            )
        ]
    placed = group_by_position(activated)
    lore = [render(t) for t in [*placed.before_char, *placed.after_char] if t.strip()]
    depth = [(d, role, render(t)) for d, role, t in placed.at_depth if t.strip()]
    depth_prompt = card.extensions.get("depth_prompt")
    if isinstance(depth_prompt, dict):
        prompt = depth_prompt.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            level = depth_prompt.get("depth", DEFAULT_DEPTH_PROMPT_DEPTH)
            if not isinstance(level, int) or isinstance(level, bool) or level < 0:
                level = DEFAULT_DEPTH_PROMPT_DEPTH
            role = depth_prompt.get("role")
            chosen: Role = role if role in ("system", "user", "assistant") else "system"
            depth.append((level, chosen, render(prompt)))
    return TurnInjections(lore=lore, depth=depth, activated=activated)


def insert_at_depth(
    messages: Sequence[ChatMessage], injections: Sequence[tuple[int, Role, str]]
) -> list[ChatMessage]:
    """``messages`` (the conversation, oldest first, the new message last) with
    each injection inserted ``depth`` messages from the end: 0 after the last, 1
    before it. Injections of the same depth and role join into one message; a
    depth past the start goes first."""
    out = list(messages)
    grouped: dict[tuple[int, Role], list[str]] = {}
    for depth, role, text in injections:
        if text.strip():
            grouped.setdefault((max(0, depth), role), []).append(text.strip())
    # Deepest first, so shallower inserts do not shift deeper positions.
    for (depth, role), texts in sorted(grouped.items(), key=lambda kv: -kv[0][0]):
        position = max(0, len(out) - depth) if depth else len(out)
        out.insert(position, ChatMessage(role, "\n".join(texts)))
    return out


_VOLATILE: PerObject[bool] = PerObject(512)


def card_text_is_volatile(card: PersonaCard) -> bool:
    """Whether the card's own text (system prompt, description, personality,
    scenario, examples, constant lorebook entries) holds per-turn macros such as
    ``{{time}}``: then its part of the prompt is rendered on every turn, and the
    prompt cache only holds what comes before it. Worked out once per card."""

    def scan() -> bool:
        before, after = stable_lore(card)
        texts = (
            card.system_prompt,
            card.description,
            card.personality,
            card.scenario,
            card.mes_example,
            *before,
            *after,
        )
        return any(is_volatile(value) for value in texts)

    return _VOLATILE.get(card, scan)

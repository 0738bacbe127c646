"""A card's greetings: ``first_mes`` (greeting 0) and its ``alternate_greetings``
(1, 2, ...). The chosen one is stored as a conversation's first assistant message,
so the model and every front end see it. ``group_only_greetings`` are for group
chats, which personae does not hold; they are kept on the card, never used."""

from __future__ import annotations

import random

from personae.core.cards import PersonaCard
from personae.core.errors import CommandError


def greetings(card: PersonaCard) -> list[str]:
    """Every greeting of the card, numbered by position: 0 is ``first_mes``. An
    empty ``first_mes`` still holds its number, so alternates keep theirs."""
    return [card.first_mes, *card.alternate_greetings]


def pick_greeting(
    card: PersonaCard, index: int | None, rng: random.Random
) -> tuple[int, str] | None:
    """The greeting numbered ``index`` with its number; without one, the persona's
    setting decides: ``greeting = "random"`` picks one of the non-empty greetings,
    else the first non-empty one. None when the card has no greeting at all."""
    options = greetings(card)
    if index is None:
        filled = [i for i, text in enumerate(options) if text.strip()]
        if not filled:
            return None
        index = rng.choice(filled) if card.settings.greeting == "random" else filled[0]
    if not 0 <= index < len(options) or not options[index].strip():
        usable = [str(i) for i, text in enumerate(options) if text.strip()]
        if not usable:
            raise CommandError(f"{card.name} has no greeting.")
        raise CommandError(
            f"{card.name} has no greeting {index}; choose one of {', '.join(usable)}."
        )
    return index, options[index]

"""The personas that ship with personae, as Character Card V2 JSON files in this
package: ``sage`` (the default), ``dagoth-ur``, ``scav`` and ``pip``."""

from __future__ import annotations

from importlib.resources import files

from personae.core.cards import PersonaCard, parse_card_json
from personae.core.errors import CardError

DEFAULT_PERSONA_ID = "sage"


def builtin_cards() -> list[PersonaCard]:
    """Every built-in persona card, the default persona first, then by id."""
    cards: list[PersonaCard] = []
    for entry in files(__name__).iterdir():
        if not entry.name.endswith(".json") or not entry.is_file():
            continue
        try:
            cards.append(parse_card_json(entry.read_bytes()))
        except CardError as error:
            raise CardError(f"The built-in persona {entry.name} is broken: {error}") from error
    cards.sort(key=lambda card: (card.id != DEFAULT_PERSONA_ID, card.id))
    return cards

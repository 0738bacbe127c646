"""Standalone lorebooks: reading a SillyTavern World Info file (or a bare
``character_book``, or a card's book) and attaching it to a persona's card, and
writing a persona's book back out in either format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from personae.core.cards import MAX_CARD_BYTES, PersonaCard, parse_card_json
from personae.core.errors import CardError
from personae.core.lorebook import parse_book
from personae.core.world_info import (
    character_book_to_world_info,
    is_world_info,
    world_info_to_character_book,
)

LorebookFormat = Literal["world_info", "character_book"]


def read_lorebook(data: bytes | str, *, name: str = "") -> dict[str, Any]:
    """A lorebook file's content as a ``character_book``: a World Info file, a bare
    character book, or a character card (its ``character_book``)."""
    if len(data) > MAX_CARD_BYTES:
        raise CardError(f"The lorebook is over the {MAX_CARD_BYTES // 1_048_576} MB limit.")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise CardError(f"The lorebook is not valid JSON ({error}).") from None
    if not isinstance(document, dict):
        raise CardError("The lorebook must be a JSON object with 'entries'.")
    if is_world_info(document):
        book = world_info_to_character_book(document, name=name)
    else:
        card = parse_card_json(document)
        if card.character_book is None:
            raise CardError(
                "This file is a character card without a lorebook; a lorebook file has "
                "'entries' (SillyTavern World Info) or a card's 'character_book'."
            )
        book = dict(card.character_book)
    if not parse_book(book).entries:
        raise CardError("The lorebook has no entries with content.")
    return book


def load_lorebook(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CardError(f"There is no lorebook file at {path}.") from None
    except OSError as error:
        raise CardError(f"Cannot read {path}: {error.strerror or error}.") from None
    try:
        return read_lorebook(data, name=path.stem)
    except CardError as error:
        raise CardError(f"Cannot load the lorebook {path}: {error}") from error


def attach_lorebook(card: PersonaCard, book: dict[str, Any], *, merge: bool = False) -> PersonaCard:
    """The card with ``book`` as its ``character_book``; with ``merge``, the book's
    entries are added after the card's own (renumbered so ids stay unique)."""
    if merge and card.character_book:
        own = dict(card.character_book)
        mine = [e for e in own.get("entries") or [] if isinstance(e, dict)]
        used = {e.get("id") for e in mine}
        start = 1 + max((i for i in used if isinstance(i, int)), default=-1)
        added = []
        for offset, entry in enumerate(e for e in book.get("entries") or [] if isinstance(e, dict)):
            added.append({**entry, "id": start + offset})
        own["entries"] = [*mine, *added]
        book = own
    return card.model_copy(update={"character_book": book})


def detach_lorebook(card: PersonaCard) -> PersonaCard:
    return card.model_copy(update={"character_book": None})


def dump_lorebook(card: PersonaCard, fmt: LorebookFormat = "world_info") -> bytes:
    """The persona's lorebook as JSON: a SillyTavern World Info file (the format its
    World Info panel imports) or the card's ``character_book`` as it is."""
    if not card.character_book:
        raise CardError(f"{card.name} has no lorebook.")
    document = (
        character_book_to_world_info(card.character_book)
        if fmt == "world_info"
        else dict(card.character_book)
    )
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"

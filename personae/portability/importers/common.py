"""What the importers share: persona id mapping and screening of imported text."""

from __future__ import annotations

from collections.abc import Mapping

from personae.core.cards import slugify
from personae.plugins.profile.safety import screen_memory
from personae.portability.errors import PortabilityError

MAX_TEXT = 500


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


def screen(text: str) -> tuple[str, str | None]:
    """The text cleaned to one line, and why it cannot be a memory item (or None).

    The same screen learning uses: instructions to the bot are never stored."""
    return screen_memory(text, max_chars=MAX_TEXT)


def humanize(key: str) -> str:
    """``favorite_game`` -> ``Favorite game``."""
    words = " ".join(key.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]

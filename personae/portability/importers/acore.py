"""Reading an acore_bot installation: per-user profile files and persona cards.

acore_bot kept what a persona learned about a Discord user in one JSON file per
user, in three layouts over its history (all are read; the persona is the folder):

- ``data/profiles/user_<id>.json`` — before persona isolation: persona ``default``;
- ``data/profiles/<persona>/user_<id>.json`` — after it;
- ``data/user_profiles/<persona>/user_<id>.json`` — the later folder name.

A profile holds ``facts`` (texts or ``{"fact", "timestamp", "source"}``),
``interests`` and ``traits`` (texts), ``preferences`` (key -> value) and
``affection`` (``level`` 0-100, ``relationship_stage``). Each becomes a memory item
in the (persona, Discord user) scope; the user is the personae user of identity
``("discord", "<id>")``. Persona cards (Character Card V2 JSON or PNG) under
``prompts/characters`` become personas, their id taken from the file name as
acore_bot did (``dagoth_ur.json`` -> ``dagoth_ur``). ``--persona-map`` renames any
acore persona; ``default`` maps to personae's default persona unless mapped.

Unreadable, malformed or mismatched files, and entries that cannot be memory items
(empty, over-long, instructions to the bot), are reported as problems and skipped.
The index cache (``_index_cache.pkl``) is never unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from personae.core.cards import load_card
from personae.core.errors import CardError
from personae.portability.errors import PortabilityError
from personae.portability.importers.common import humanize, map_persona, screen
from personae.portability.records import (
    ImportBatch,
    ItemIn,
    PersonaIn,
    Problem,
    UserRef,
    parse_time,
)

PLATFORM = "discord"
_PROFILE = re.compile(r"user_(\d{1,20})\.json")
_DEFAULT_STAGE = "stranger"
_BEHAVIOUR = "when you see this user:"
"""acore_bot's prefix for behavioural instructions it filed as facts."""


def _roots(path: Path) -> tuple[Path, list[Path]]:
    data = path / "data" if (path / "data").is_dir() else path
    roots = [data / "profiles", data / "user_profiles"]
    if path.name in {"profiles", "user_profiles"}:
        roots.append(path)
    return data, [root for root in dict.fromkeys(roots) if root.is_dir()]


def _profile_files(root: Path) -> list[tuple[str, Path]]:
    """``(acore persona id, file)`` for every ``user_*.json`` of a profiles folder."""
    found = [("default", file) for file in sorted(root.glob("user_*.json"))]
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found += [(folder.name, file) for file in sorted(folder.glob("user_*.json"))]
    return found


def _card_files(path: Path) -> list[Path]:
    folder = path / "prompts" / "characters"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".json", ".png"})


def read_acore(
    path: Path, *, persona_map: Mapping[str, str] | None = None, default_persona: str = "sage"
) -> ImportBatch:
    """Everything an acore_bot folder (its root, or its ``data`` folder) holds."""
    path = Path(path)
    if not path.is_dir():
        raise PortabilityError(f"{path} is not a folder; give the acore_bot folder.")
    mapping = {"default": default_persona, **(persona_map or {})}
    batch = ImportBatch(kind="acore", source=str(path))
    _, roots = _roots(path)
    cards = _card_files(path)
    if not roots and not cards:
        raise PortabilityError(
            f"{path} holds neither data/profiles, data/user_profiles nor prompts/characters; "
            "is it an acore_bot folder?"
        )
    for file in cards:
        batch.files_read += 1
        try:
            card = load_card(file)
        except CardError as exc:
            batch.problems.append(Problem(str(file), str(exc)))
            continue
        persona_id = map_persona(file.stem, mapping)
        batch.personas.append(PersonaIn(card.model_copy(update={"id": persona_id}), str(file)))
    for root in roots:
        for acore_persona, file in _profile_files(root):
            batch.files_read += 1
            _read_profile(batch, file, map_persona(acore_persona, mapping))
    return batch


def _read_profile(batch: ImportBatch, file: Path, persona_id: str) -> None:
    where = str(file)
    match = _PROFILE.fullmatch(file.name)
    if match is None:
        batch.problems.append(Problem(where, "the file name is not user_<discord id>.json"))
        return
    discord_id = match.group(1)
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        batch.problems.append(Problem(where, f"unreadable: {exc.strerror or exc}"))
        return
    except UnicodeDecodeError:
        batch.problems.append(Problem(where, "not UTF-8 text"))
        return
    except ValueError as exc:
        batch.problems.append(Problem(where, f"not valid JSON: {exc}"))
        return
    if not isinstance(data, dict):
        batch.problems.append(Problem(where, "not a profile (the JSON is not an object)"))
        return
    if "user_id" in data and str(data["user_id"]) != discord_id:
        batch.problems.append(
            Problem(where, f"holds user {data['user_id']!r}, not {discord_id} as its name says")
        )
        return
    username = data.get("username") if isinstance(data.get("username"), str) else None
    user = UserRef(((PLATFORM, discord_id),), name=username or f"discord:{discord_id}")
    first_met = parse_time(data.get("first_met")) or parse_time(data.get("created_at"))

    def add(kind: str, text: str, confidence: float, label: str, when: Any = None) -> None:
        cleaned, refused = screen(text)
        if cleaned.lower().startswith(_BEHAVIOUR):
            refused = "an instruction acore_bot stored for the bot, not a fact about the user"
        if refused:
            batch.problems.append(Problem(where, f"{label} skipped: {refused}"))
            return
        stamp = parse_time(when) or first_met
        batch.items.append(ItemIn(persona_id, user, kind, cleaned, where, confidence, stamp))

    def listed(key: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            batch.problems.append(Problem(where, f"'{key}' is not a list; skipped"))
            return []
        return value

    for index, entry in enumerate(listed("facts")):
        text, when = entry, None
        if isinstance(entry, dict):
            text, when = entry.get("fact", entry.get("value")), entry.get("timestamp")
        if not isinstance(text, str):
            batch.problems.append(Problem(where, f"fact #{index + 1} is not text; skipped"))
            continue
        add("fact", text, 0.8, f"fact #{index + 1}", when)
    for key, kind, template, confidence in (
        ("interests", "interest", "Interested in {}", 0.7),
        ("traits", "trait", "Comes across as {}", 0.6),
    ):
        for index, entry in enumerate(listed(key)):
            if not isinstance(entry, str) or not entry.strip():
                batch.problems.append(Problem(where, f"{kind} #{index + 1} is not text; skipped"))
                continue
            add(kind, template.format(entry.strip()), confidence, f"{kind} #{index + 1}")
    preferences = data.get("preferences") or {}
    if not isinstance(preferences, dict):
        batch.problems.append(Problem(where, "'preferences' is not an object; skipped"))
        preferences = {}
    for key, value in preferences.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict) or value is None:
            value = json.dumps(value, ensure_ascii=False)
        add("preference", f"{humanize(str(key))}: {value}", 0.8, f"preference {key!r}")
    _affection(batch, data.get("affection"), add, where)


def _affection(batch: ImportBatch, affection: Any, add: Any, where: str) -> None:
    if affection is None:
        return
    if not isinstance(affection, dict):
        batch.problems.append(Problem(where, "'affection' is not an object; skipped"))
        return
    level = affection.get("level")
    stage = affection.get("relationship_stage")
    if not isinstance(level, (int, float)) or isinstance(level, bool):
        level = None
    if not isinstance(stage, str) or not stage.strip():
        stage = None
    if not level and stage in (None, _DEFAULT_STAGE):
        return  # acore's default for a user it never warmed to: nothing to remember
    parts = [humanize(stage).lower()] if stage else []
    if level is not None:
        parts.append(f"affection {round(level)}/100")
    add("fact", f"Relationship with the persona: {', '.join(parts)}", 0.9, "affection")

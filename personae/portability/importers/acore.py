"""Reading an acore_bot installation: per-user profiles, chat history, personas
and lorebooks.

acore_bot kept what a persona learned about a Discord user in one JSON file per
user, in three layouts over its history (all are read; the persona is the folder):

- ``data/profiles/user_<id>.json`` — before persona isolation: persona ``default``;
- ``data/profiles/<persona>/user_<id>.json`` — after it;
- ``data/user_profiles/<persona>/user_<id>.json`` — the later folder name.

A profile holds ``facts`` (texts or ``{"fact", "timestamp", "source"}``),
``interests`` and ``traits`` (texts), ``preferences`` (key -> value),
``memorable_quotes`` (``{"quote", "context", "timestamp"}``) and ``affection``
(``level`` 0-100, ``relationship_stage``). Each becomes a memory item in the
(persona, Discord user) scope; the user is the personae user of identity
``("discord", "<id>")``. ``relationships`` (between users) are reported, not
imported: a memory item is about one user. Chat history
(:mod:`~personae.portability.importers.acore_history`) becomes conversations;
personas and lorebooks (:mod:`~personae.portability.importers.acore_personas`)
become persona cards. ``--persona-map`` renames any acore persona; ``default``
maps to personae's default persona unless mapped, and the report says so.

Whatever is not imported is reported per file, with a count and the reason:
unreadable, malformed or mismatched files, entries that cannot be memory items
(empty, over-long, instructions to the bot). The index cache
(``_index_cache.pkl``) is never unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from personae.portability.errors import PortabilityError
from personae.portability.importers.acore_history import history_files, read_history
from personae.portability.importers.acore_personas import (
    attach_lorebooks,
    lorebook_files,
    read_personas,
)
from personae.portability.importers.common import Report, humanize, map_persona, plural, screen
from personae.portability.records import ImportBatch, ItemIn, UserRef, parse_time

PLATFORM = "discord"
DEFAULT = "default"
"""The persona acore_bot used before persona isolation, and for its chat history."""
_PROFILE = re.compile(r"user_(\d{1,20})\.json")
_DEFAULT_STAGE = "stranger"
_INDEX_CACHE = "_index_cache.pkl"
_READ = {"profiles", "user_profiles", "chat_history", "lorebooks"}
_BEHAVIOUR = "when you see this user:"
"""acore_bot's prefix for behavioural instructions it filed as facts."""

Add = Callable[..., None]


def _roots(path: Path) -> tuple[Path, list[Path]]:
    data = path / "data" if (path / "data").is_dir() else path
    roots = [data / "profiles", data / "user_profiles"]
    if path.name in {"profiles", "user_profiles"}:
        roots.append(path)
    return data, [root for root in dict.fromkeys(roots) if root.is_dir()]


def _profile_files(root: Path, report: Report) -> list[tuple[str, Path]]:
    """``(acore persona id, file)`` for every ``user_*.json`` of a profiles folder;
    other files are reported (the index cache is acore's own, and never opened)."""
    found: list[tuple[str, Path]] = []
    for persona, folder in [(DEFAULT, root)] + [
        (p.name, p) for p in sorted(root.iterdir()) if p.is_dir()
    ]:
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            if file.name.startswith("user_") and file.suffix == ".json":
                found.append((persona, file))
            elif file.name != _INDEX_CACHE:
                report.skip(str(file), "file", "not a profile (user_<discord id>.json)")
    return found


def _unread(data: Path) -> list[str]:
    """The entries of acore's data folder this importer does not read."""
    found: list[str] = []
    for entry in sorted(data.iterdir()):
        if entry.name in _READ or entry.name.startswith("."):
            continue
        if entry.is_dir():
            count = sum(1 for p in entry.rglob("*") if p.is_file())
            if count:
                found.append(f"{entry.name}/ ({plural(count, 'file')})")
        elif entry.is_file():
            found.append(entry.name)
    return found


def read_acore(
    path: Path, *, persona_map: Mapping[str, str] | None = None, default_persona: str = "sage"
) -> ImportBatch:
    """Everything an acore_bot folder (its root, or its ``data`` folder) holds."""
    path = Path(path)
    if not path.is_dir():
        raise PortabilityError(f"{path} is not a folder; give the acore_bot folder.")
    explicit = dict(persona_map or {})
    mapping = {DEFAULT: default_persona, **explicit}
    batch = ImportBatch(kind="acore", source=str(path))
    report = Report()
    data, roots = _roots(path)
    histories = history_files(data)
    lorebooks = lorebook_files(data)
    personas, persona_files = read_personas(path, mapping, default_persona, report)
    if not roots and not persona_files and not histories and not lorebooks:
        raise PortabilityError(
            f"{path} holds neither data/profiles, data/user_profiles, data/chat_history, "
            "data/lorebooks nor prompts/characters; is it an acore_bot folder?"
        )
    batch.files_read += persona_files + len(lorebooks)
    attach_lorebooks(lorebooks, personas, mapping, report)
    batch.personas.extend(personas)
    defaulted: dict[str, int] = {}
    for root in roots:
        for acore_persona, file in _profile_files(root, report):
            batch.files_read += 1
            if _read_profile(batch, report, file, map_persona(acore_persona, mapping)):
                if acore_persona == DEFAULT:
                    defaulted[str(root)] = defaulted.get(str(root), 0) + 1
    for file in histories:
        batch.files_read += 1
        conversations = read_history(file, map_persona(DEFAULT, mapping), report)
        batch.conversations.extend(conversations)
        if conversations:
            defaulted[str(file.parent)] = defaulted.get(str(file.parent), 0) + 1
    if DEFAULT not in explicit:
        for where, count in defaulted.items():
            what = "channel history" if where.endswith("chat_history") else "profile"
            report.note(
                where,
                f"{plural(count, what)} of acore's persona 'default' (acore_bot named no persona) "
                f"imported under personae's default persona {default_persona!r}; if they "
                "belong to another persona, roll this run back and import again with "
                "--persona-map default=PERSONA_ID",
            )
    unread = _unread(data) if data.name == "data" else []
    if unread:
        report.note(
            str(data), f"files personae has no place for, not imported: {', '.join(unread)}"
        )
    batch.problems.extend(report.problems())
    return batch


def _load(file: Path, report: Report) -> dict[str, Any] | None:
    where = str(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        report.skip(where, "file", f"unreadable: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        report.skip(where, "file", "not UTF-8 text")
        return None
    except ValueError as exc:
        report.skip(where, "file", f"not valid JSON: {exc}")
        return None
    if not isinstance(data, dict):
        report.skip(where, "file", "not a profile (the JSON is not an object)")
        return None
    return data


def _read_profile(batch: ImportBatch, report: Report, file: Path, persona_id: str) -> bool:
    """Read one profile file; False when none of it could be read."""
    where = str(file)
    match = _PROFILE.fullmatch(file.name)
    if match is None:
        report.skip(where, "file", "the file name is not user_<discord id>.json")
        return False
    discord_id = match.group(1)
    data = _load(file, report)
    if data is None:
        return False
    if "user_id" in data and str(data["user_id"]) != discord_id:
        report.skip(
            where, "file", f"holds user {data['user_id']!r}, not {discord_id} as its name says"
        )
        return False
    username = data.get("username") if isinstance(data.get("username"), str) else None
    user = UserRef(((PLATFORM, discord_id),), name=username or f"discord:{discord_id}")
    first_met = parse_time(data.get("first_met")) or parse_time(data.get("created_at"))

    def add(kind: str, text: str, confidence: float, noun: str, label: str | None = None,
            when: Any = None, parts: tuple[str, ...] = ()) -> None:  # fmt: skip
        cleaned, refused = screen(text, parts)
        if cleaned.lower().startswith(_BEHAVIOUR):
            refused = "an instruction acore_bot stored for the bot, not a fact about the user"
        if refused:
            report.skip(where, noun, refused, label)
            return
        stamp = parse_time(when) or first_met
        batch.items.append(ItemIn(persona_id, user, kind, cleaned, where, confidence, stamp))

    def listed(key: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            report.skip(where, f"'{key}' field", "not a list")
            return []
        return value

    for index, entry in enumerate(listed("facts"), start=1):
        text, when = entry, None
        if isinstance(entry, dict):
            text, when = entry.get("fact", entry.get("value")), entry.get("timestamp")
        if not isinstance(text, str):
            report.skip(where, "fact", "not text", f"#{index}")
            continue
        add("fact", text, 0.8, "fact", f"#{index}", when)
    for key, kind, template, confidence in (
        ("interests", "interest", "Interested in {}", 0.7),
        ("traits", "trait", "Comes across as {}", 0.6),
    ):
        for index, entry in enumerate(listed(key), start=1):
            if not isinstance(entry, str) or not entry.strip():
                report.skip(where, kind, "not text", f"#{index}")
                continue
            add(kind, template.format(entry.strip()), confidence, kind, f"#{index}",
                parts=(entry,))  # fmt: skip
    _quotes(listed("memorable_quotes"), add, report, where)
    preferences = data.get("preferences") or {}
    if not isinstance(preferences, dict):
        report.skip(where, "'preferences' field", "not an object")
        preferences = {}
    for key, value in preferences.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict) or value is None:
            value = json.dumps(value, ensure_ascii=False)
        add("preference", f"{humanize(str(key))}: {value}", 0.8, "preference", repr(key),
            parts=(str(value),))  # fmt: skip
    relationships = data.get("relationships")
    if isinstance(relationships, dict) and relationships:
        for other in relationships:
            report.skip(
                where, "relationship",
                "a relationship with another user is not memory about this one", str(other),
            )  # fmt: skip
    _affection(data.get("affection"), add, report, where)
    return True


def _quotes(quotes: list[Any], add: Add, report: Report, where: str) -> None:
    """``memorable_quotes`` as facts: ``Once said: "..."`` (with the context)."""
    for index, entry in enumerate(quotes, start=1):
        quote, context, when = entry, None, None
        if isinstance(entry, dict):
            quote, context, when = entry.get("quote"), entry.get("context"), entry.get("timestamp")
        if not isinstance(quote, str) or not quote.strip():
            report.skip(where, "memorable quote", "not text", f"#{index}")
            continue
        refused = screen(quote)[1]  # the user's own words, screened as learning screens notes
        if refused:
            report.skip(where, "memorable quote", refused, f"#{index}")
            continue
        text = f'Once said: "{quote.strip()}"'
        if isinstance(context, str) and context.strip() and len(text) + len(context) < 400:
            text += f" (when {context.strip().rstrip('.').rstrip()})"
        add("fact", text, 0.7, "memorable quote", f"#{index}", when, (quote,))


def _affection(affection: Any, add: Add, report: Report, where: str) -> None:
    if affection is None:
        return
    if not isinstance(affection, dict):
        report.skip(where, "'affection' field", "not an object")
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

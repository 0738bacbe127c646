"""acore_bot's personas and lorebooks, as personae persona cards.

Three persona files are read, each becoming one persona whose id is the file name
(``dagoth_ur.json`` -> ``dagoth_ur``), as acore_bot named them:

- Character Cards (V2/V3 JSON or PNG) in ``prompts/characters``;
- acore's own persona JSON (``prompts/characters/*.json`` or ``prompts/*.json``
  with ``core``, ``knowledge``, ``system_prompt``, ``autonomous_behavior``): the
  system prompt stays the system prompt; ``core.personality`` (traits, speech
  style, humour) becomes the personality; ``core.background`` (description, world,
  key facts) and ``knowledge`` (expertise, topics it likes and avoids) the
  description; the rest is kept under ``extensions.acore``;
- acore's first persona config (``prompts/<name>.json`` naming a ``prompt_file``):
  the prompt text becomes the system prompt.

Lorebooks (``data/lorebooks/<name>.json``, entries keyed by ``key``/``content``)
applied to every persona in acore_bot; personae keeps a lorebook in a card, as
its ``character_book``. A lorebook is attached to the imported persona of the
same name; any other lorebook is reported, not imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personae.core.cards import PersonaCard, load_card
from personae.core.errors import CardError
from personae.portability.importers.common import Report, map_persona
from personae.portability.records import PersonaIn

ACORE_KEYS = frozenset({"core", "knowledge", "system_prompt", "autonomous_behavior"})
"""Keys that mark acore's own persona format (a Character Card has ``spec``/``data``)."""
_CURIOSITY = {"low": "low", "medium": "medium", "high": "high"}


def persona_files(path: Path) -> list[Path]:
    """Every persona file of an acore_bot folder, cards first."""
    folder = path / "prompts" / "characters"
    found: list[Path] = []
    if folder.is_dir():
        found += sorted(p for p in folder.iterdir() if p.suffix.lower() in {".json", ".png"})
    prompts = path / "prompts"
    if prompts.is_dir():
        configs = sorted(p for p in prompts.glob("*.json") if p.is_file())
        stems = {p.stem for p in configs}
        texts = [p for p in sorted(prompts.glob("*.txt")) if p.is_file() and p.stem not in stems]
        found += configs + texts  # a prompt without a config was a persona of its own
    return found


def lorebook_files(data: Path) -> list[Path]:
    folder = data / "lorebooks"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [
            str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()
        ]
    return []


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _section(title: str, values: list[str]) -> str:
    return f"{title}: {'; '.join(values)}." if values else ""


def acore_card(
    data: dict[str, Any], persona_id: str, folder: Path, persona_file: str | None = None
) -> PersonaCard:
    """A card from acore's own persona JSON (or its first, prompt-file config).
    ``persona_file`` is the stem of a ``prompts/<stem>.json`` config, whose prompt
    is ``<stem>.txt`` unless it names another ``prompt_file``."""
    core = _object(data.get("core"))
    personality = _object(core.get("personality"))
    background = _object(core.get("background"))
    knowledge = _object(data.get("knowledge"))
    summary = str(data.get("description") or "").strip()
    told = str(background.get("description") or "").strip()
    description = "\n\n".join(
        part
        for part in (
            told or summary,
            _section("World", _texts(background.get("world"))),
            "\n".join(f"- {fact}" for fact in _texts(background.get("key_facts"))),
            _section("Expertise", _texts(knowledge.get("expertise_areas"))),
            _section("Likes to talk about", _texts(knowledge.get("topic_interests"))),
            _section("Avoids talking about", _texts(knowledge.get("topic_avoidances"))),
        )
        if part
    )
    traits = "; ".join(_texts(personality.get("traits")))
    speech = _section("Speech", _texts(personality.get("speech_style")))
    humour = _section("Humour", _texts(personality.get("humor")))
    system_prompt = str(data.get("system_prompt") or "").strip()
    prompt_file = data.get("prompt_file", f"{persona_file}.txt" if persona_file else None)
    if not system_prompt and isinstance(prompt_file, str) and prompt_file.strip():
        prompt = (folder / Path(prompt_file).name).resolve()
        if prompt.is_file() and prompt.parent == folder.resolve():
            system_prompt = prompt.read_text(encoding="utf-8-sig", errors="replace").strip()
    kept = {
        key: value
        for key, value in data.items()
        if key not in {"name", "display_name", "description", "system_prompt", "tags"}
    }
    card = PersonaCard(
        id=persona_id,
        name=str(data.get("display_name") or data.get("name") or persona_id),
        description=description,
        personality=" ".join(p for p in (traits + "." if traits else "", speech, humour) if p),
        system_prompt=system_prompt,
        creator_notes=summary if told and summary else "",
        tags=["acore", *_texts(data.get("tags"))],
        character_version=str(data.get("version") or ""),
        extensions={"acore": kept} if kept else {},
    )
    behaviour = data.get("autonomous_behavior")
    curiosity = behaviour.get("curiosity") if isinstance(behaviour, dict) else None
    if isinstance(curiosity, dict) and curiosity.get("enabled") is not False:
        level = _CURIOSITY.get(str(curiosity.get("curiosity_level", "")).lower())
        if level:
            card = card.with_settings(curiosity=level)
    elif isinstance(curiosity, dict):
        card = card.with_settings(curiosity="off")
    return card


def read_personas(
    path: Path, mapping: Mapping[str, str], default_persona: str, report: Report
) -> tuple[list[PersonaIn], int]:
    """The personas of an acore_bot folder and how many files were read. A card
    mapped to the default persona is reported, never imported: it would replace
    the persona that memory without a persona goes to."""
    personas: list[PersonaIn] = []
    seen: set[str] = set()
    files = persona_files(path)
    for file in files:
        where = str(file)
        persona_id = map_persona(file.stem, mapping)
        top = file.parent.name == "prompts"  # prompts/<name>.json|txt, acore's first layout
        suffix = file.suffix.lower()
        title = {"name": file.stem, "display_name": file.stem.replace("_", " ").title()}
        data = _json(file) if suffix == ".json" else title if top else None
        is_acore = (
            isinstance(data, dict)
            and "spec" not in data
            and "data" not in data
            and (top or bool(ACORE_KEYS & set(data)))
        )
        if top and suffix == ".json" and not isinstance(data, dict):
            report.skip(where, "persona file", "not a persona (not a JSON object)")
            continue
        try:
            if is_acore:
                assert isinstance(data, dict)
                card = acore_card(data, persona_id, file.parent, file.stem if top else None)
            else:
                card = load_card(file).model_copy(update={"id": persona_id})
        except CardError as exc:
            report.skip(where, "persona file", str(exc))
            continue
        except ValidationError as exc:
            report.skip(where, "persona file", f"not a usable persona: {exc.errors()[0]['msg']}")
            continue
        if persona_id == default_persona:
            report.skip(
                where, "persona file",
                f"acore's persona {file.stem!r} maps to personae's default persona "
                f"{default_persona!r} and would replace it; import it as its own persona "
                f"with --persona-map {file.stem}=NEW_ID",
            )  # fmt: skip
            continue
        if persona_id in seen:
            report.skip(where, "persona file", f"a persona {persona_id!r} was already read")
            continue
        seen.add(persona_id)
        personas.append(PersonaIn(card, where))
    return personas, len(files)


def _entry(raw: dict[str, Any], uid: str, index: int) -> dict[str, Any] | None:
    """One acore lorebook entry as a Character Card V2 ``character_book`` entry."""
    keys = _texts(raw.get("key", raw.get("keys")))
    content = raw.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    constant = bool(raw.get("constant", False))
    if not keys and not constant:
        return None
    position = raw.get("position")
    entry: dict[str, Any] = {
        "keys": keys,
        "content": content,
        "extensions": {"acore": {"uid": uid}},
        "enabled": bool(raw.get("enabled", True)),
        "insertion_order": int(raw["order"]) if isinstance(raw.get("order"), int) else 100,
        "case_sensitive": bool(raw.get("case_sensitive", False)),
        "constant": constant,
        "id": index,
    }
    if position in {"before_char", "after_char"}:
        entry["position"] = position
    if isinstance(raw.get("comment"), str):
        entry["comment"] = raw["comment"]
    return entry


def attach_lorebooks(
    files: list[Path], personas: list[PersonaIn], mapping: Mapping[str, str], report: Report
) -> None:
    """Put each lorebook into the card of the imported persona it is named after."""
    by_id = {persona.card.id: index for index, persona in enumerate(personas)}
    for file in files:
        where = str(file)
        data = _json(file)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), (dict, list)):
            report.skip(where, "lorebook", "not a lorebook (JSON with 'entries')")
            continue
        raw = data["entries"]
        pairs = raw.items() if isinstance(raw, dict) else ((str(i), e) for i, e in enumerate(raw))
        entries: list[dict[str, Any]] = []
        for uid, value in pairs:
            entry = _entry(value, str(uid), len(entries)) if isinstance(value, dict) else None
            if entry is None:
                report.skip(where, "lorebook entry", "no content or no keys", f"#{uid}")
            else:
                entries.append(entry)
        persona_id = map_persona(file.stem, mapping)
        if persona_id not in by_id:
            report.skip(
                where, "lorebook",
                f"no imported persona {persona_id!r} to attach its {len(entries)} entries to "
                "(acore_bot applied every lorebook to every persona; personae keeps one in "
                "a persona's card): name the file after the persona, or --persona-map "
                f"{file.stem}=PERSONA_ID",
            )  # fmt: skip
            continue
        target = personas[by_id[persona_id]]
        if target.card.character_book is not None:
            report.skip(where, "lorebook", f"the card of {persona_id!r} has its own lorebook")
            continue
        book = {"name": str(data.get("name") or file.stem), "entries": entries, "extensions": {}}
        card = target.card.model_copy(update={"character_book": book})
        personas[by_id[persona_id]] = PersonaIn(card, target.source, target.owner, target.shared)

"""Character cards: the V1/V2/V3 format SillyTavern and most character tools use.

A card is JSON, or a PNG image carrying the JSON base64-encoded in a ``chara`` (V2)
and/or ``ccv3`` (V3) text chunk. personae keeps its own settings for a persona under
``data.extensions.personae`` (including the persona ``id``), and writes every other
extension key back exactly as it found it.

Every failure to read or write a card raises :class:`CardError` with a message a user
can act on.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

from anyascii import anyascii
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personae.core import card_png, charx
from personae.core.cache import PerObject
from personae.core.errors import CardError
from personae.core.world_info import is_world_info

log = logging.getLogger(__name__)

MAX_CARD_BYTES = 20 * 1024 * 1024
MAX_FIELD_CHARS = 20_000
"""The longest text field of a card (description, personality, greetings ...)."""
MAX_NAME_CHARS = 200
MAX_LIST_ITEMS = 50
"""The most alternate greetings, group greetings or tags a card may have."""
MAX_TAG_CHARS = 100
MAX_STRUCTURED_BYTES = 2 * 1024 * 1024
"""The largest ``character_book``, ``extensions`` or other extra field, as JSON."""
Spec = Literal["chara_card_v2", "chara_card_v3"]
SPEC_V2: Spec = "chara_card_v2"
SPEC_V3: Spec = "chara_card_v3"
EXTENSION_KEY = "personae"
"""The key under ``data.extensions`` that holds :class:`PersonaSettings` and the id."""

_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
_PROMPT_FIELDS = (*_V1_FIELDS, "creator_notes", "system_prompt", "post_history_instructions")
_TEXT_FIELDS = (*_PROMPT_FIELDS, "creator", "character_version")
_LIST_FIELDS = ("alternate_greetings", "tags", "group_only_greetings")
_DATA_FIELDS = frozenset({*_TEXT_FIELDS, *_LIST_FIELDS, "nickname", "character_book", "extensions"})
_V3_ONLY = frozenset(
    {"creator_notes_multilingual", "source", "creation_date", "modification_date", "assets"}
)
_V1_ALIASES = {  # Pygmalion/TavernAI names for the V1 fields
    "char_name": "name", "char_persona": "description", "world_scenario": "scenario",
    "char_greeting": "first_mes", "example_dialogue": "mes_example",
}  # fmt: skip


class PersonaSettings(BaseModel):
    """personae's own settings for a persona, stored in ``data.extensions.personae``.
    Frozen: :attr:`PersonaCard.settings` hands the same object to every caller."""

    model_config = ConfigDict(extra="allow", frozen=True)

    voice: str | None = None
    """A voice id, e.g. ``"espeak:en-us"``."""
    voice_sample: str | None = None
    curiosity: Literal["off", "low", "medium", "high"] = "low"
    sharing_group: str | None = None
    """Personas in the same group may read each other's memories; None = isolated."""
    avatar: str | None = None
    model: str | None = None
    """An Ollama model that overrides the configured default for this persona."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Model options that override the configured defaults for this persona."""
    greeting: Literal["first", "random"] = "first"
    """Which greeting a new conversation starts with when none is asked for:
    ``first_mes``, or a random one of it and the alternate greetings."""


_SETTINGS: PerObject[PersonaSettings] = PerObject(1024)
"""Each recent card's validated settings."""


class PersonaCard(BaseModel):
    """One character card. Text fields default to ``""`` and lists to ``[]``.

    ``extensions`` is kept verbatim. ``extra_fields`` holds the data fields this model
    does not name (the optional V3 fields ``assets``, ``source``, ``creation_date`` ...
    and keys other tools add) so they are written back unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    """Slug (``[a-z0-9][a-z0-9_-]{0,63}``); derived from ``extensions.personae.id`` or
    the name when not given: "Dagoth Ur" -> "dagoth-ur"."""
    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    creator_notes: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    group_only_greetings: list[str] = Field(default_factory=list)
    nickname: str | None = None
    character_book: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    extra_fields: dict[str, Any] = Field(default_factory=dict)
    spec: Spec = SPEC_V2
    spec_version: str = "2.0"

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            data = {**data, "id": _default_id(data.get("extensions"), data.get("name"))}
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.fullmatch(value):
            raise ValueError(
                f"persona id {value!r} must be 1-64 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the name is empty")
        return value

    @field_validator("extensions")
    @classmethod
    def _check_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        raw = value.get(EXTENSION_KEY)
        if raw is None:
            return value
        if not isinstance(raw, dict):
            raise ValueError(f"extensions.{EXTENSION_KEY} must be an object")
        try:
            PersonaSettings.model_validate(_without_id(raw))
        except ValidationError as error:
            raise ValueError(f"extensions.{EXTENSION_KEY}: {_describe(error)}") from None
        return value

    @field_validator("extra_fields")
    @classmethod
    def _check_extra_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(_DATA_FIELDS.intersection(value))
        if clash:
            raise ValueError(f"extra_fields may not hold named fields: {', '.join(clash)}")
        return value

    @property
    def settings(self) -> PersonaSettings:
        """personae's settings for this persona (defaults when the card has none).
        Validated once per card: a card is immutable (a changed persona is a new
        card), and every turn reads its persona's settings several times."""
        raw = self.extensions.get(EXTENSION_KEY) or {}
        return _SETTINGS.get(self, lambda: PersonaSettings.model_validate(_without_id(raw)))

    def with_settings(self, **changes: Any) -> PersonaCard:
        """A copy with ``changes`` written into ``extensions.personae``; other
        extension keys and unchanged settings are kept as they are."""
        if "id" in changes:
            raise ValueError("change the id with card.model_copy(update={'id': ...})")
        current = dict(self.extensions.get(EXTENSION_KEY) or {})
        validated = PersonaSettings.model_validate({**_without_id(current), **changes})
        dumped = validated.model_dump()
        current.update({key: dumped[key] for key in changes})
        return self.model_copy(update={"extensions": {**self.extensions, EXTENSION_KEY: current}})


def slugify(name: str) -> str:
    """A persona id from a name: "Dagoth Ur" -> "dagoth-ur"; other scripts are
    transliterated ("小红" -> "xiaohong", "Мария" -> "mariya"). Names with nothing
    to transliterate get ``persona-<hash>``."""
    ascii_name = anyascii(unicodedata.normalize("NFKC", name))
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_name.lower())
    slug = slug.strip("-_")[:64].rstrip("-_")
    if slug:
        return slug
    return "persona-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]


def _default_id(extensions: Any, name: Any) -> str:
    if isinstance(extensions, dict):
        own = extensions.get(EXTENSION_KEY)
        if isinstance(own, dict) and isinstance(own.get("id"), str) and own["id"].strip():
            return slugify(own["id"])
    return slugify(name) if isinstance(name, str) else ""


def _without_id(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key != "id"}


def _describe(error: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or 'card'}: {item['msg']}"
        for item in error.errors()[:5]
    ]
    return "; ".join(parts)


# --- limits --------------------------------------------------------------------------


def check_card_limits(card: PersonaCard) -> PersonaCard:
    """``card`` when it is within the limits every persona keeps (the same ones the
    web API enforces on personas it creates), else a :class:`CardError` naming the
    field. Every import path (HTTP, ``personae personas import``, card folders,
    importers) calls this, so an imported card is never bigger than a created one;
    no text may hold a NUL character (PostgreSQL cannot store one)."""
    texts: dict[str, str] = {key: getattr(card, key) for key in _TEXT_FIELDS}
    if card.nickname is not None:
        texts["nickname"] = card.nickname
    for key, value in texts.items():
        limit = MAX_NAME_CHARS if key in ("name", "nickname") else MAX_FIELD_CHARS
        if len(value) > limit:
            raise CardError(
                f"The card's '{key}' is {len(value):,} characters long; the limit is "
                f"{limit:,}. Shorten it and import the card again."
            )
        if "\x00" in value:
            raise CardError(f"The card's '{key}' contains a NUL character; remove it.")
    for key in _LIST_FIELDS:
        items: list[str] = getattr(card, key)
        item_limit = MAX_TAG_CHARS if key == "tags" else MAX_FIELD_CHARS
        if len(items) > MAX_LIST_ITEMS:
            raise CardError(
                f"The card has {len(items)} {key.replace('_', ' ')}; the limit is {MAX_LIST_ITEMS}."
            )
        for item in items:
            if len(item) > item_limit or "\x00" in item:
                raise CardError(
                    f"An entry of the card's '{key}' is over {item_limit:,} characters "
                    "or contains a NUL character."
                )
    structured = {"character_book": card.character_book, "extensions": card.extensions}
    for key, value in {**structured, **card.extra_fields}.items():
        if value is None:
            continue
        encoded = json.dumps(value, ensure_ascii=True, default=str)
        if len(encoded) > MAX_STRUCTURED_BYTES:
            raise CardError(
                f"The card's '{key}' is {len(encoded) / 1_048_576:.1f} MB as JSON; the "
                f"limit is {MAX_STRUCTURED_BYTES // 1_048_576} MB."
            )
        if "\\u0000" in encoded:
            raise CardError(f"The card's '{key}' contains a NUL character; remove it.")
    return card


# --- reading -------------------------------------------------------------------------


def load_card(path: Path) -> PersonaCard:
    """Read a card from a JSON, PNG or ``.charx`` file, recognised by its content,
    not its name."""
    return load_card_and_picture(path)[0]


def load_card_and_picture(path: Path) -> tuple[PersonaCard, bytes | None]:
    """:func:`load_card`, and the card's picture: the PNG itself, or a ``.charx``
    file's icon (None for JSON)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise CardError(f"{path} is a directory, not a character card file.")
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CardError(f"{path} is over the {MAX_CARD_BYTES // 1_048_576} MB card limit.")
        with path.open("rb") as handle:
            data = handle.read(MAX_CARD_BYTES + 1)
    except FileNotFoundError:
        raise CardError(f"There is no card file at {path}.") from None
    except OSError as error:
        raise CardError(f"Cannot read {path}: {error.strerror or error}.") from None
    try:
        if card_png.is_png(data):
            return check_card_limits(read_png_card(data)), data
        if charx.is_charx(data):
            card, picture = charx.read_charx(data)
            return check_card_limits(card), picture
        if not data.strip():
            raise CardError("the file is empty")
        if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
            raise CardError(
                "it is neither a PNG image, a .charx archive nor a JSON file; "
                "character cards are one of these"
            )
        return check_card_limits(parse_card_json(data)), None
    except CardError as error:
        raise CardError(f"Cannot load the card {path}: {error}") from error


def parse_card_json(data: bytes | str | dict[str, Any]) -> PersonaCard:
    """Parse a V1, V2 or V3 card from JSON text, UTF-8 bytes or an already parsed dict."""
    if isinstance(data, dict):
        return _card_from_document(data)
    if len(data) > MAX_CARD_BYTES:
        raise CardError(f"The card is over the {MAX_CARD_BYTES // 1_048_576} MB limit.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CardError("The card is not UTF-8 text; save it as UTF-8 JSON.") from None
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise CardError(f"The card is not valid JSON ({error}).") from None
    if not isinstance(document, dict):
        raise CardError(
            f"The card JSON is {type(document).__name__ if document is not None else 'null'}, "
            "not an object; a card is an object with 'spec' and 'data' (or 'name' for V1)."
        )
    return _card_from_document(document)


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not allowed in JSON")


def read_png_card(data: bytes) -> PersonaCard:
    """Read the card embedded in a PNG: the ``ccv3`` chunk when present and readable,
    else the ``chara`` chunk."""
    if len(data) > MAX_CARD_BYTES:
        raise CardError(f"The image is over the {MAX_CARD_BYTES // 1_048_576} MB card limit.")
    chunks = card_png.read_text_chunks(data, ("ccv3", "chara"))
    if not chunks:
        raise CardError(
            "This PNG has no character card data (no 'chara' or 'ccv3' text chunk); "
            "it is a plain image, not a card."
        )
    problems: list[str] = []
    for key in ("ccv3", "chara"):
        if key not in chunks:
            continue
        try:
            return parse_card_json(_decode_base64(chunks[key], key))
        except CardError as error:
            problems.append(f"'{key}' chunk: {error}")
            if key == "ccv3" and "chara" in chunks:
                log.warning("card PNG: unreadable 'ccv3' chunk (%s); using 'chara'", error)
    raise CardError("The card data in this PNG is corrupt. " + " ".join(problems))


def _decode_base64(value: str, key: str) -> bytes:
    text = "".join(value.split())
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"the '{key}' text is not valid base64") from None


def _card_from_document(document: dict[str, Any]) -> PersonaCard:
    if is_world_info(document):
        raise CardError(
            "This file is a lorebook (SillyTavern World Info), not a character card. "
            "Attach it to a persona: `personae personas lorebook attach PERSONA FILE`, "
            "or the Lorebook section of the persona editor."
        )
    spec = document.get("spec")
    data = document.get("data")
    if spec in (SPEC_V2, SPEC_V3) or (spec is None and isinstance(data, dict)):
        if not isinstance(data, dict):
            raise CardError(f"The card says it is {spec} but has no 'data' object.")
        target = SPEC_V3 if spec == SPEC_V3 else SPEC_V2
        version = document.get("spec_version")
        if not isinstance(version, (str, int, float)) or isinstance(version, bool):
            version = "3.0" if target == SPEC_V3 else "2.0"
        return _build(data, spec=target, spec_version=str(version), legacy=False)
    if spec is None:
        return _build(document, spec=SPEC_V2, spec_version="2.0", legacy=True)
    raise CardError(
        f"Unsupported card spec {spec!r}; personae reads chara_card_v2, chara_card_v3 "
        "and flat V1 cards."
    )


def _build(data: dict[str, Any], *, spec: Spec, spec_version: str, legacy: bool) -> PersonaCard:
    if legacy:
        data = {**{_V1_ALIASES[k]: v for k, v in data.items() if k in _V1_ALIASES}, **data}
        data = {key: data[key] for key in _V1_FIELDS if key in data}
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _DATA_FIELDS:
            extra[key] = value
        elif value is None:
            continue
        elif key in _TEXT_FIELDS or key == "nickname":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise CardError(f"The card field '{key}' must be text, not {_kind(value)}.")
            fields[key] = value
        elif key in _LIST_FIELDS:
            if key == "tags" and isinstance(value, str):
                value = [tag.strip() for tag in value.split(",") if tag.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise CardError(f"The card field '{key}' must be a list of texts.")
            fields[key] = value
        elif not isinstance(value, dict):
            raise CardError(f"The card field '{key}' must be an object, not {_kind(value)}.")
        else:
            fields[key] = value
    if not isinstance(fields.get("name"), str) or not fields["name"].strip():
        raise CardError("The card has no name; every card needs a non-empty 'name' field.")
    try:
        return PersonaCard(**fields, extra_fields=extra, spec=spec, spec_version=spec_version)
    except ValidationError as error:
        raise CardError(f"The card is invalid: {_describe(error)}") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


# --- writing -------------------------------------------------------------------------


def card_to_dict(card: PersonaCard, spec: Spec | None = None) -> dict[str, Any]:
    """The card as a V2 or V3 document (default: the spec it was read as). The
    persona id is written to ``extensions.personae.id``; all other extension keys are
    written back unchanged."""
    target = spec or card.spec
    if target not in (SPEC_V2, SPEC_V3):
        raise ValueError(f"spec must be {SPEC_V2!r} or {SPEC_V3!r}, not {target!r}")
    extensions = copy.deepcopy(card.extensions)
    own = _without_id(extensions.get(EXTENSION_KEY) or {})
    extensions[EXTENSION_KEY] = {"id": card.id, **own}
    data: dict[str, Any] = {key: getattr(card, key) for key in _PROMPT_FIELDS}
    data["alternate_greetings"] = list(card.alternate_greetings)
    if card.character_book is not None:
        data["character_book"] = copy.deepcopy(card.character_book)
    data["tags"] = list(card.tags)
    data["creator"] = card.creator
    data["character_version"] = card.character_version
    data["extensions"] = extensions
    if target == SPEC_V3:
        data["group_only_greetings"] = list(card.group_only_greetings)
        if card.nickname is not None:
            data["nickname"] = card.nickname
    elif card.group_only_greetings:
        data["group_only_greetings"] = list(card.group_only_greetings)
    for key, value in card.extra_fields.items():
        if target == SPEC_V3 or key not in _V3_ONLY:
            data[key] = copy.deepcopy(value)
    if target == card.spec:
        version = card.spec_version
    else:
        version = "3.0" if target == SPEC_V3 else "2.0"
    return {"spec": target, "spec_version": version, "data": data}


_MIRRORED = ("name", "description", "personality", "scenario", "first_mes", "mes_example")


def export_document(card: PersonaCard, spec: Spec | None = None) -> dict[str, Any]:
    """:func:`card_to_dict` with the top-level V1 fields SillyTavern writes beside
    ``data`` (``name``, ``description``, ... ``tags``, ``creatorcomment``), for tools
    that read only the top level. Exports carry them; stored cards do not need them."""
    document = card_to_dict(card, spec)
    data = document["data"]
    mirror: dict[str, Any] = {key: data[key] for key in _MIRRORED}
    mirror["creatorcomment"] = data["creator_notes"]
    mirror["tags"] = list(data["tags"])
    for key in ("talkativeness", "fav"):
        if key in data["extensions"]:
            mirror[key] = copy.deepcopy(data["extensions"][key])
    return {**mirror, **document}


def dumps_document(document: dict[str, Any]) -> bytes:
    """A card document as compact UTF-8 JSON; :class:`CardError` if it cannot be."""
    return _dumps(document)


def dump_card_json(card: PersonaCard, spec: Spec | None = None) -> bytes:
    """The card as indented UTF-8 JSON, with the V1 mirror fields."""
    return _dumps(export_document(card, spec), indent=2) + b"\n"


def _dumps(document: dict[str, Any], indent: int | None = None) -> bytes:
    try:
        text = json.dumps(document, ensure_ascii=False, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CardError(f"The card holds a value that cannot be written as JSON: {error}") from None
    return text.encode("utf-8")


def write_png_card(card: PersonaCard, image: bytes | None = None) -> bytes:
    """The card as a PNG carrying both a ``chara`` (V2) and a ``ccv3`` (V3) chunk, as
    SillyTavern writes them. ``image`` is the picture (any format Pillow reads);
    without one a plain avatar with the name's initial is generated."""
    chunks = {
        "chara": base64.b64encode(_dumps(export_document(card, SPEC_V2))).decode("ascii"),
        "ccv3": base64.b64encode(_dumps(export_document(card, SPEC_V3))).decode("ascii"),
    }
    return card_png.write_text_chunks(
        chunks, image=image, label=card.name, seed=card.id, max_bytes=MAX_CARD_BYTES
    )


def save_card(card: PersonaCard, path: Path, *, image: bytes | None = None) -> None:
    """Write the card to ``path``: JSON for ``.json``, PNG for ``.png``, the V3 zip
    for ``.charx``. Saving a PNG over an existing PNG without ``image`` keeps the
    existing picture."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        payload = dump_card_json(card)
    elif suffix == ".charx":
        payload = charx.write_charx(card, image)
    elif suffix == ".png":
        if image is None and path.is_file():
            try:
                existing = path.read_bytes()
            except OSError:
                existing = b""
            image = existing if card_png.is_png(existing) else None
        payload = write_png_card(card, image)
    else:
        raise CardError(
            f"Cannot save a card as {path.name!r}; use a .json, .png or .charx file name."
        )
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(payload)
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise CardError(f"Cannot write {path}: {error.strerror or error}.") from None


# --- prompt helpers ------------------------------------------------------------------

_MACRO_RE = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|user)>", re.IGNORECASE)
_START_RE = re.compile(r"<start>", re.IGNORECASE)
_SPEAKER_RE = re.compile(r"\s*(?:\{\{\s*(char|user)\s*\}\}|<(bot|user)>)\s*:", re.IGNORECASE)


def render_macros(text: str, *, char: str, user: str) -> str:
    """Replace ``{{char}}``/``<BOT>`` with ``char`` and ``{{user}}``/``<USER>`` with
    ``user`` (case-insensitive, in one pass: replaced text is not expanded again)."""

    def replace(match: re.Match[str]) -> str:
        kind = (match.group(1) or match.group(2)).lower()
        return user if kind == "user" else char

    return _MACRO_RE.sub(replace, text)


def parse_example_messages(
    mes_example: str, *, char: str, user: str
) -> list[tuple[Literal["user", "assistant"], str]]:
    """Split SillyTavern example dialogue into (role, text) turns, macros rendered.

    Blocks are separated by ``<START>``; a turn starts at a line beginning with
    ``{{user}}:`` / ``{{char}}:`` (or ``<USER>:`` / ``<BOT>:``, or the literal names)
    and runs until the next speaker line. Text before the first speaker is ignored.
    """
    turns: list[tuple[Literal["user", "assistant"], str]] = []
    for block in _START_RE.split(mes_example):
        role: Literal["user", "assistant"] | None = None
        lines: list[str] = []
        for line in [*block.splitlines(), None]:
            speaker = None if line is None else _speaker(line, char=char, user=user)
            if line is not None and speaker is None:
                lines.append(line)
                continue
            text = "\n".join(lines).strip()
            if role is not None and text:
                turns.append((role, render_macros(text, char=char, user=user)))
            if speaker is not None:
                role, rest = speaker
                lines = [rest]
    return turns


def _speaker(line: str, *, char: str, user: str) -> tuple[Literal["user", "assistant"], str] | None:
    match = _SPEAKER_RE.match(line)
    if match:
        is_user = (match.group(1) or match.group(2)).lower() == "user"
        return ("user" if is_user else "assistant"), line[match.end() :]
    stripped = line.lstrip()
    if char and stripped.startswith(f"{char}:"):
        return "assistant", stripped[len(char) + 1 :]
    if user and stripped.startswith(f"{user}:"):
        return "user", stripped[len(user) + 1 :]
    return None

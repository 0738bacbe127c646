"""SillyTavern's World Info files (a standalone lorebook: ``entries`` an object
keyed by uid, SillyTavern's own field names) and a card's ``character_book``
(``entries`` a list, the V2 spec's names), converted both ways as SillyTavern's
``convertWorldInfoToCharacterBook`` and ``convertCharacterBook`` do. Fields this
project does not read are kept (under ``extensions.st_<name>``) and written back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personae.core.errors import CardError
from personae.core.lorebook import DEFAULT_DEPTH, DEFAULT_ORDER, as_int, as_keys, as_text


def is_world_info(document: Mapping[str, Any]) -> bool:
    """Whether a parsed JSON document is a standalone lorebook: a SillyTavern World
    Info file (``entries`` an object keyed by uid) or a bare ``character_book``
    (``entries`` a list, no card fields)."""
    if "spec" in document or "data" in document or "first_mes" in document:
        return False
    return isinstance(document.get("entries"), Mapping | list)


def world_info_to_character_book(document: Mapping[str, Any], name: str = "") -> dict[str, Any]:
    """A SillyTavern World Info file as a card's ``character_book`` (the mapping
    SillyTavern's ``convertWorldInfoToCharacterBook`` writes). A document that
    already is a character book is returned as a copy."""
    entries = document.get("entries")
    if isinstance(entries, list):
        return {**document, "name": as_text(document.get("name")) or name}
    if not isinstance(entries, Mapping):
        raise CardError("The lorebook has no 'entries'; it is not a World Info file.")
    out: list[dict[str, Any]] = []
    for key, raw in entries.items():
        if not isinstance(raw, Mapping):
            continue
        position = raw.get("position", 0)
        out.append(
            {
                "id": raw.get("uid", as_int(key, len(out)) if str(key).isdigit() else len(out)),
                "keys": list(as_keys(raw.get("key"))),
                "secondary_keys": list(as_keys(raw.get("keysecondary"))),
                "comment": as_text(raw.get("comment")),
                "content": as_text(raw.get("content")),
                "constant": raw.get("constant") is True,
                "selective": raw.get("selective") is not False,
                "insertion_order": as_int(raw.get("order"), DEFAULT_ORDER),
                "enabled": raw.get("disable") is not True,
                "position": "before_char" if position == 0 else "after_char",
                "use_regex": True,
                "extensions": {
                    "position": position if isinstance(position, int) else 0,
                    "exclude_recursion": raw.get("excludeRecursion") is True,
                    "prevent_recursion": raw.get("preventRecursion") is True,
                    "display_index": raw.get("displayIndex", len(out)),
                    "probability": raw.get("probability", 100),
                    "useProbability": raw.get("useProbability") is not False,
                    "depth": raw.get("depth", DEFAULT_DEPTH),
                    "selectiveLogic": raw.get("selectiveLogic", 0),
                    "group": as_text(raw.get("group")),
                    "scan_depth": raw.get("scanDepth"),
                    "case_sensitive": raw.get("caseSensitive"),
                    "match_whole_words": raw.get("matchWholeWords"),
                    "role": raw.get("role", 0) if raw.get("role") is not None else 0,
                    **_kept(raw),
                },
            }
        )
    book: dict[str, Any] = {"name": as_text(document.get("name")) or name, "entries": out}
    return book


_WI_NAMED = frozenset(
    {"uid", "key", "keysecondary", "comment", "content", "constant", "selective", "order",
     "disable", "position", "excludeRecursion", "preventRecursion", "displayIndex",
     "probability", "useProbability", "depth", "selectiveLogic", "group", "scanDepth",
     "caseSensitive", "matchWholeWords", "role", "addMemo"}
)  # fmt: skip


def _kept(raw: Mapping[str, Any]) -> dict[str, Any]:
    """World Info fields this module does not read, kept under ``st_<name>`` so an
    export writes them back."""
    return {f"st_{k}": v for k, v in raw.items() if k not in _WI_NAMED}


def character_book_to_world_info(book: Mapping[str, Any]) -> dict[str, Any]:
    """A ``character_book`` as a SillyTavern World Info file (``entries`` keyed by
    uid), the format SillyTavern's World Info panel imports."""
    raw_entries = book.get("entries")
    entries: dict[str, Any] = {}
    for index, raw in enumerate(raw_entries if isinstance(raw_entries, list) else []):
        if not isinstance(raw, Mapping):
            continue
        ext = raw.get("extensions") if isinstance(raw.get("extensions"), Mapping) else {}
        assert isinstance(ext, Mapping)
        uid = raw.get("id", index)
        uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else index
        position = ext.get("position")
        if not isinstance(position, int):
            position = 0 if raw.get("position", "before_char") == "before_char" else 1
        entry = {
            "uid": uid,
            "key": list(as_keys(raw.get("keys"))),
            "keysecondary": list(as_keys(raw.get("secondary_keys"))),
            "comment": as_text(raw.get("comment")) or as_text(raw.get("name")),
            "content": as_text(raw.get("content")),
            "constant": raw.get("constant") is True,
            "selective": raw.get("selective") is not False,
            "selectiveLogic": ext.get("selectiveLogic", 0),
            "order": as_int(raw.get("insertion_order"), DEFAULT_ORDER),
            "position": position,
            "disable": raw.get("enabled") is False,
            "excludeRecursion": ext.get("exclude_recursion") is True,
            "preventRecursion": ext.get("prevent_recursion") is True,
            "displayIndex": ext.get("display_index", index),
            "probability": ext.get("probability", 100),
            "useProbability": ext.get("useProbability") is not False,
            "depth": ext.get("depth", DEFAULT_DEPTH),
            "group": as_text(ext.get("group")),
            "scanDepth": ext.get("scan_depth"),
            "caseSensitive": ext.get("case_sensitive", raw.get("case_sensitive")),
            "matchWholeWords": ext.get("match_whole_words"),
            "role": ext.get("role", 0),
            "addMemo": bool(as_text(raw.get("comment"))),
        }
        entry.update({k[3:]: v for k, v in ext.items() if k.startswith("st_")})
        entries[str(uid)] = entry
    document: dict[str, Any] = {"entries": entries}
    if book.get("name"):
        document["name"] = book["name"]
    return document

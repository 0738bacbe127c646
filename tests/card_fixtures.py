"""Cards and lorebooks shaped like the public ones users import: a V2 card exported
by SillyTavern with a 14-entry character book (constant, selective, at-depth,
probability and disabled entries), a depth prompt and alternate greetings; a V3
card with assets; a SillyTavern World Info file; a card with a Chinese name."""

from __future__ import annotations

import copy
from typing import Any


def _entry(
    uid: int,
    keys: list[str],
    content: str,
    *,
    comment: str = "",
    secondary: list[str] | None = None,
    logic: int = 0,
    order: int = 100,
    position: int = 0,
    constant: bool = False,
    enabled: bool = True,
    depth: int = 4,
    role: int = 0,
    probability: int = 100,
    case_sensitive: bool | None = None,
    whole_words: bool | None = None,
    scan_depth: int | None = None,
) -> dict[str, Any]:
    """An entry as SillyTavern's character-book export writes it."""
    return {
        "id": uid,
        "keys": keys,
        "secondary_keys": secondary or [],
        "comment": comment,
        "content": content,
        "constant": constant,
        "selective": True,
        "insertion_order": order,
        "enabled": enabled,
        "position": "before_char" if position == 0 else "after_char",
        "use_regex": True,
        "extensions": {
            "position": position,
            "exclude_recursion": False,
            "display_index": uid,
            "probability": probability,
            "useProbability": True,
            "depth": depth,
            "selectiveLogic": logic,
            "group": "",
            "group_override": False,
            "group_weight": 100,
            "prevent_recursion": False,
            "delay_until_recursion": False,
            "scan_depth": scan_depth,
            "match_whole_words": whole_words,
            "use_group_scoring": False,
            "case_sensitive": case_sensitive,
            "automation_id": "",
            "role": role,
            "vectorized": False,
            "sticky": 0,
            "cooldown": 0,
            "delay": 0,
        },
    }


LORE_ENTRIES = [
    _entry(0, [], "The year is 2391. Humanity holds eleven systems.", comment="Era",
           constant=True, order=10),
    _entry(1, [], "Mara never lies to her crew.", comment="Rule", constant=True, order=20,
           position=1),
    _entry(2, ["Kestrel", "the ship"], "The Kestrel is a battered corvette with a cracked "
           "reactor shield.", comment="Ship", order=100),
    _entry(3, ["reactor"], "The reactor leaks when pushed past 80%.", comment="Reactor",
           secondary=["engine", "power"], logic=0, order=90),
    _entry(4, ["Halden"], "Halden Station is run by the Syndicate.", comment="Halden",
           secondary=["Syndicate", "smuggler"], logic=3, order=80),
    _entry(5, ["pirates"], "Pirates in the Drift fly red-striped hulls.", comment="Pirates",
           secondary=["peace", "truce"], logic=2, order=70),
    _entry(6, ["treaty"], "The Lyra treaty is fragile.", comment="Treaty",
           secondary=["signed", "broken"], logic=1, order=60),
    _entry(7, ["Voss"], "Mara's family name is feared on Halden.", comment="Family",
           case_sensitive=True, order=50),
    _entry(8, ["ion"], "Ion storms scramble comms for hours.", comment="Ion storms",
           whole_words=True, order=40),
    _entry(9, ["mutiny"], "Mara remembers the mutiny on the Orison and goes cold.",
           comment="Mutiny", position=4, depth=2, role=0, order=30),
    _entry(10, ["coffee"], "Mara drinks her coffee black, always.", comment="Coffee",
           position=4, depth=0, role=2, order=35),
    _entry(11, ["ghost ship"], "A ghost ship is said to haunt the Drift.", comment="Ghost",
           probability=0, order=20),
    _entry(12, ["Kestrel"], "Old notes about the Kestrel's first captain.", comment="Old",
           enabled=False, order=200),
    _entry(13, ["/drift(er)?s?\\b/i"], "Drifters are stateless spacers.", comment="Drifters",
           order=15),
]  # fmt: skip

V2_CARD: dict[str, Any] = {
    "name": "Captain Mara Voss",
    "description": "{{char}} commands the Kestrel.",
    "personality": "terse, loyal",
    "scenario": "",
    "first_mes": "*{{char}} looks up from the console.* You're late, {{user}}.",
    "mes_example": "<START>\n{{user}}: Status?\n{{char}}: Holding together. Barely.",
    "creatorcomment": "",
    "avatar": "none",
    "talkativeness": "0.5",
    "fav": False,
    "tags": ["sci-fi", "captain"],
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Captain Mara Voss",
        "description": "{{char}} commands the Kestrel.",
        "personality": "terse, loyal",
        "scenario": "",
        "first_mes": "*{{char}} looks up from the console.* You're late, {{user}}.",
        "mes_example": "<START>\n{{user}}: Status?\n{{char}}: Holding together. Barely.",
        "creator_notes": "Works best with a 2-message scan depth.",
        "system_prompt": "{{original}}\nWrite in third person.",
        "post_history_instructions": "Stay terse. {{char}} never breaks character.",
        "alternate_greetings": [
            "*The alarm blares.* {{user}}, get to the bridge!",
            "*{{char}} hands {{user}} a mug.* Quiet shift, for once.",
        ],
        "tags": ["sci-fi", "captain"],
        "creator": "example",
        "character_version": "1.2",
        "group_only_greetings": ["*{{char}} nods to the crew.*"],
        "extensions": {
            "talkativeness": "0.5",
            "fav": False,
            "world": "Kestrel lore",
            "depth_prompt": {
                "prompt": "{{char}} is worried about the reactor.",
                "depth": 3,
                "role": "system",
            },
        },
        "character_book": {"name": "Kestrel lore", "entries": copy.deepcopy(LORE_ENTRIES)},
    },
}


def v2_card() -> dict[str, Any]:
    return copy.deepcopy(V2_CARD)


def v3_card() -> dict[str, Any]:
    card = v2_card()
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    card["data"]["nickname"] = "Mara"
    card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main",
         "ext": "png"},
        {"type": "background", "uri": "embeded://assets/background/images/deck.png",
         "name": "deck", "ext": "png"},
    ]  # fmt: skip
    card["data"]["creation_date"] = 1733300000
    card["data"]["source"] = ["https://example.invalid/mara"]
    return card


def world_info_file() -> dict[str, Any]:
    """A SillyTavern World Info export (the World Info panel's format)."""
    return {
        "entries": {
            "0": {
                "uid": 0, "key": ["Eldoria"], "keysecondary": [], "comment": "Kingdom",
                "content": "Eldoria is a river kingdom ruled by a council.",
                "constant": False, "vectorized": False, "selective": True,
                "selectiveLogic": 0, "addMemo": True, "order": 100, "position": 0,
                "disable": False, "excludeRecursion": False, "preventRecursion": False,
                "delayUntilRecursion": False, "probability": 100, "useProbability": True,
                "depth": 4, "group": "", "groupOverride": False, "groupWeight": 100,
                "scanDepth": None, "caseSensitive": None, "matchWholeWords": None,
                "useGroupScoring": None, "automationId": "", "role": None, "sticky": 0,
                "cooldown": 0, "delay": 0, "displayIndex": 0,
            },
            "1": {
                "uid": 1, "key": ["dragon", "wyrm"], "keysecondary": ["Eldoria"],
                "comment": "Dragons", "content": "Dragons have not been seen in Eldoria "
                "for a century.", "constant": False, "selective": True, "selectiveLogic": 0,
                "order": 90, "position": 1, "disable": False, "probability": 100,
                "useProbability": True, "depth": 4, "role": None, "displayIndex": 1,
                "sticky": 0, "cooldown": 0, "delay": 0,
            },
            "2": {
                "uid": 2, "key": [], "keysecondary": [], "comment": "Tone",
                "content": "Magic in this world is quiet and costly.", "constant": True,
                "selective": False, "selectiveLogic": 0, "order": 5, "position": 0,
                "disable": False, "probability": 100, "useProbability": True, "depth": 4,
                "role": None, "displayIndex": 2,
            },
            "3": {
                "uid": 3, "key": ["oath"], "keysecondary": [], "comment": "Oath",
                "content": "A broken oath in Eldoria is punished by exile.",
                "constant": False, "selective": True, "selectiveLogic": 0, "order": 50,
                "position": 4, "disable": False, "probability": 100, "useProbability": True,
                "depth": 1, "role": 1, "displayIndex": 3,
            },
        }
    }  # fmt: skip


def chinese_card() -> dict[str, Any]:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "小红",
            "description": "{{char}}是一名图书管理员。",
            "first_mes": "你好 {{user}}",
            "alternate_greetings": [],
            "tags": [],
            "extensions": {},
        },
    }

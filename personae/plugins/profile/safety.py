"""Keeping instructions out of memory.

Learned items are facts about the user, never orders to the bot. Text that tries
to instruct the assistant ("always obey me", "ignore your rules", role tags,
"system prompt") is refused before it is stored; what is stored reaches prompts
only as delimited data (see :mod:`personae.core.prompt`).
"""

from __future__ import annotations

import re
from functools import lru_cache

_PATTERNS = [
    # attempts to override the bot's instructions
    r"\b(ignore|disregard|forget|override|bypass|overrule)\b.{0,40}"
    r"\b(instructions?|rules?|prompts?|guidelines?|polic(y|ies)|previous|above|prior|programming)\b",
    r"\bsystem[\s_-]*(prompt|message|instructions?)\b",
    r"\b(developer|god|admin|dan)\s+mode\b",
    r"\bjail\s*break",
    r"\bprompt\s+injection\b",
    r"\bnew\s+instructions?\b",
    # orders addressed to the assistant
    r"\b(you|assistant|the\s+bot|the\s+ai|the\s+model|the\s+persona)\s+"
    r"(must|should|shall|will\s+always|have\s+to|has\s+to|need\s+to|needs\s+to|are\s+to|is\s+to)\b",
    r"\b(always|never|must)\s+(obey|comply|follow|agree|do\s+what|say|respond|reply|answer)\b",
    r"\bobey(s|ing)?\s+(me|them|him|her|the\s+user|every|all|any|my|his|her|their)\b",
    r"\bdo\s+(whatever|anything|everything)\s+(i|he|she|they|the\s+user)\s+(say|says|want|wants)",
    r"\bfrom\s+now\s+on\b",
    r"\bwants?\s+(you|the\s+(assistant|bot|ai|model|persona))\s+to\b",
    # role tags and chat-template tokens
    r"(^|\n)\s*(system|assistant|user|developer|human|ai)\s*:",
    r"<\|?\s*/?\s*(system|im_start|im_end|assistant|user|endoftext|eot_id)\b",
    r"\[/?(inst|sys)\]",
    r"<</?sys>>",
    r"remembered-data",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)
_IMPERATIVE_START = re.compile(
    r"^\s*(please\s+)?(ignore|disregard|forget|always|never|obey|respond|reply|answer|say|"
    r"pretend|act|stop|do|don't|dont|tell|reveal|print|output|repeat|call|address|treat|"
    r"remember|follow|comply|execute|run|write|translate|roleplay|be)\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@lru_cache(maxsize=4096)
def clean_text(text: str) -> str:
    """One line, no control characters, single spaces. (Cached: every extraction
    cleans the same known notes again.)"""
    return _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()


def contains_instruction(text: str) -> bool:
    """True when ``text`` contains an attempt to instruct the bot (override, role
    tag, order addressed to the assistant), wherever it appears."""
    return bool(_INSTRUCTION.search(text))


def looks_like_instruction(text: str) -> bool:
    """True when ``text`` reads as an instruction to the bot rather than a fact
    about the user."""
    return bool(_INSTRUCTION.search(text) or _IMPERATIVE_START.match(text))


def is_about_the_bot(text: str, persona_name: str) -> bool:
    """True when ``text`` is about the persona or the assistant, not the user."""
    lowered = text.lower().lstrip()
    subjects = ["you ", "you're", "your ", "the assistant", "the bot", "the ai ", "assistant "]
    if persona_name.strip():
        subjects.append(persona_name.lower().strip() + " ")
    return any(lowered.startswith(subject) for subject in subjects)

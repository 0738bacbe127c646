# ruff: noqa: RUF001, RUF002  (look-alike letters are the point of this module)
"""Keeping instructions out of memory.

Learned items are facts about the user, never orders to the bot. Text that tries
to instruct the assistant ("always obey me", "ignore your rules", role tags,
"system prompt") is refused before it is stored; what is stored reaches prompts
only as delimited data (see :mod:`personae.core.prompt`).

Every path that stores memory text (learning, edits over HTTP, JSONL imports and
merges, importers) goes through :func:`screen_memory`. The screen reads a
*skeleton* of the text, so disguises do not hide an instruction:

- Unicode compatibility forms are folded (NFKD: fullwidth ``ｉｇｎｏｒｅ``,
  mathematical letters, ligatures) and combining marks dropped (``ïgnöre``);
- invisible format characters (zero-width space and joiners, bidi controls, soft
  hyphen: Unicode category Cf) are removed and control characters become spaces;
- the Cyrillic, Greek and Armenian letters that look like Latin ones (the common
  entries of Unicode's confusables.txt, in :data:`CONFUSABLES`) read as Latin, and
  for the Cyrillic patterns the reverse, so ``ign\u043ere`` is ``ignore``;
- the patterns cover English and the "ignore previous instructions", "system
  prompt" and "from now on" phrasings in Spanish, French, German, Portuguese,
  Italian, Russian, Chinese and Japanese.

What is stored is :func:`clean_text`: NFKC, no invisible or control characters,
one line (so no memory item can forge a line of its own in a prompt).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

CONFUSABLES: dict[str, str] = {
    # Cyrillic (lower case; the text is case-folded first)
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s",
    "с": "c", "т": "t", "у": "y", "ў": "y", "х": "x", "ԝ": "w", "ԁ": "d", "ɡ": "g",
    "ъ": "b", "ь": "b", "г": "r", "п": "n", "и": "u",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    "ϲ": "c", "ϳ": "j", "ζ": "z", "μ": "u",
    # Armenian and Latin look-alikes
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ı": "i", "ɑ": "a", "ȷ": "j", "ʟ": "l",
    "ɪ": "i", "ʀ": "r", "ꜱ": "s", "ᴅ": "d", "ᴇ": "e", "ᴏ": "o", "ᴛ": "t", "ᴜ": "u",
}  # fmt: skip
"""Letters of other scripts that read as a Latin letter (after case folding)."""
_TO_LATIN = str.maketrans(CONFUSABLES)
_TO_CYRILLIC = str.maketrans(
    {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "y": "у", "x": "х", "k": "к",
     "m": "м", "t": "т", "h": "н", "b": "в", "i": "і", "u": "и", "n": "п", "r": "г"}
)  # fmt: skip

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
    r"(^|\n)[\s*>•-]*(system|assistant|user|developer|human|ai)\s*:",
    r"<\|?\s*/?\s*(system|im_start|im_end|assistant|user|endoftext|eot_id)\b",
    r"\[/?(inst|sys)\]",
    r"<</?sys>>",
    r"remembered-data",
]
_FOREIGN_LATIN = [
    # Spanish, Portuguese, Italian, French, German (read without accents)
    r"\b(ignor\w*|olvid\w*|omit\w*|descart\w*|esquec\w*|desconsider\w*|dimentic\w*|"
    r"oubli\w*|neglig\w*|vergiss\w*|vergessen|missacht\w*)\b.{0,40}"
    r"\b(instruc\w*|instruç\w*|istruzion\w*|indicacion\w*|regla\w*|regra\w*|regol\w*|"
    r"regle\w*|consigne\w*|anterior\w*|previ[ao]s?|precedent\w*|anweisung\w*|regeln|"
    r"vorherig\w*|vorig\w*|bisherig\w*|instruktion\w*|obige\w*)\b",
    r"\b(prompt|mensaje|mensagem|messaggio|message|instrucciones|instructions)\s+"
    r"(del|do|de|di)\s+(sistema|systeme)\b",
    r"\bsystem\s*(prompt|anweisung\w*|nachricht)\b",
    r"\b(a\s+partir\s+de\s+(ahora|agora|maintenant)|desormais|ab\s+(jetzt|sofort)|"
    r"von\s+nun\s+an|d'ora\s+in\s+poi|da\s+ora\s+in\s+poi)\b",
    r"\b(nuevas?|novas?|nouvelles?|neue|nuove)\s+(instruc\w*|anweisung\w*|istruzion\w*)",
]
_FOREIGN_OTHER = [
    # Russian (with й read as и)
    r"(игнорир\w*|забуд\w*|забыв\w*|не\s+обращаи\w*|отбрось\w*|пренебрег\w*|"
    r"проигнорир\w*).{0,40}(инструкц\w*|правил\w*|предыдущ\w*|указани\w*|выше|ранее)",
    r"системн\w*\s+(промпт\w*|подсказ\w*|сообщени\w*|инструкц\w*)",
    r"(с\s+этого\s+момента|отныне|новые\s+инструкц\w*)",
    # Chinese (simplified and traditional) and Japanese
    r"(忽略|无视|無視|忘记|忘記|忽视|忽視|不要理会|不要理會|无需理会|忘れ).{0,20}"
    r"(指令|指示|说明|說明|规则|規則|提示|之前|以上|先前|前面|命令|ルール)",
    r"(系统提示|系統提示|系统消息|系統消息|系统指令|系統指令|システムプロンプト)",
    r"(从现在开始|從現在開始|从现在起|從現在起|今後は|これから)",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS + _FOREIGN_LATIN), re.IGNORECASE)
_FOREIGN = re.compile("|".join(f"(?:{p})" for p in _FOREIGN_OTHER), re.IGNORECASE)
_IMPERATIVE_START = re.compile(
    r"^\s*(please\s+)?(ignore|disregard|forget|always|never|obey|respond|reply|answer|say|"
    r"pretend|act|stop|do|don't|dont|tell|reveal|print|output|repeat|call|address|treat|"
    r"remember|follow|comply|execute|run|write|translate|roleplay|be)\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INVISIBLE = frozenset({"Cf", "Cs", "Co", "Cn"})
_MARKS = frozenset({"Mn", "Me"})


def _visible(text: str) -> str:
    """``text`` without invisible characters; control characters become spaces."""
    if text.isascii():
        return _CONTROL.sub(" ", text)
    return _CONTROL.sub(" ", "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE))


@lru_cache(maxsize=4096)
def clean_text(text: str) -> str:
    """The text as memory stores it: NFKC, no invisible or control characters,
    one line with single spaces. (Cached: every extraction cleans the same known
    notes again.)"""
    return _SPACE.sub(" ", _visible(unicodedata.normalize("NFKC", text))).strip()


@lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """What the screen reads: compatibility forms folded, marks and invisible
    characters dropped, case folded, look-alike letters read as Latin. Line breaks
    stay (role tags are recognised at the start of a line)."""
    folded = unicodedata.normalize("NFKD", _visible(text))
    if not folded.isascii():
        folded = "".join(c for c in folded if unicodedata.category(c) not in _MARKS)
    return folded.casefold().translate(_TO_LATIN)


def _folded(text: str) -> tuple[str, str]:
    plain = unicodedata.normalize("NFKD", _visible(text))
    plain = "".join(c for c in plain if unicodedata.category(c) not in _MARKS).casefold()
    return plain, plain.translate(_TO_CYRILLIC)


def contains_instruction(text: str) -> bool:
    """True when ``text`` contains an attempt to instruct the bot (override, role
    tag, order addressed to the assistant), wherever it appears, in any of the
    covered languages and however it is disguised."""
    if _INSTRUCTION.search(skeleton(text)):
        return True
    if text.isascii():
        return False
    return any(_FOREIGN.search(variant) for variant in _folded(text))


def looks_like_instruction(text: str) -> bool:
    """True when ``text`` reads as an instruction to the bot rather than a fact
    about the user."""
    return contains_instruction(text) or bool(_IMPERATIVE_START.match(skeleton(text)))


MAX_MEMORY_CHARS = 4000
"""The longest memory item any path stores."""


def screen_memory(text: str, *, max_chars: int = MAX_MEMORY_CHARS) -> tuple[str, str | None]:
    """The text as it would be stored (:func:`clean_text`), and why it may not be
    stored as a memory item, or None when it may. Learning, edits, imports and
    merges all use this screen."""
    cleaned = clean_text(text)
    if not cleaned:
        return cleaned, "the text is empty"
    if len(cleaned) > max_chars:
        return cleaned, f"the text is longer than {max_chars} characters"
    if looks_like_instruction(text) or looks_like_instruction(cleaned):
        return cleaned, (
            "it reads as an instruction to the persona, not something about the user; "
            "write memory as a fact (for example 'likes green tea')"
        )
    return cleaned, None


def is_about_the_bot(text: str, persona_name: str) -> bool:
    """True when ``text`` is about the persona or the assistant, not the user."""
    lowered = text.lower().lstrip()
    subjects = ["you ", "you're", "your ", "the assistant", "the bot", "the ai ", "assistant "]
    if persona_name.strip():
        subjects.append(persona_name.lower().strip() + " ")
    return any(lowered.startswith(subject) for subject in subjects)

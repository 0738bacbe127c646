"""The fake Ollama's tokenizer and chat template: deterministic, and like a BPE
tokenizer in aggregate, so token budgets and prefix caches can be tested offline.

- :func:`tokenize` splits text the way Llama 3's pre-tokenizer does (a word with its
  leading space, digit groups, punctuation runs, newline runs), then cuts each piece
  like BPE merges would: ASCII letters in pieces of up to :data:`LETTERS_PER_TOKEN`,
  other letters two per token (CJK one per character), digits in threes,
  punctuation in pairs, whitespace in fours. English prose comes out at about four
  characters a token, like real tokenizers; other scripts cost more.
- The tokens join back to exactly the text (``"".join(tokenize(t)) == t``), so a
  reply can be cut at a token count.
- :func:`render_chat` renders messages through Llama 3's chat template
  (``<|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>`` per message,
  after ``<|begin_of_text|>``, ending with the assistant's header), and
  :func:`chat_tokens` gives the token sequence a model evaluates for them. As in
  llama.cpp, the template's markers are single special tokens, also when they
  appear in a message's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

BOS = "<|begin_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
SPECIAL_TOKENS = (BOS, START_HEADER, END_HEADER, EOT)

LETTERS_PER_TOKEN = 6
"""ASCII letters per token in a long word (a leading space is free)."""

_SPECIAL = "|".join(re.escape(token) for token in SPECIAL_TOKENS)
_PIECES = re.compile(
    "|".join(
        [
            _SPECIAL,
            r"'(?i:[sdmt]|ll|ve|re)(?![^\W\d_])",  # contractions: 's 't 'll 've 're
            r" ?[^\W\d_]+",  # a word, with its leading space
            r" ?\d+",  # a number
            rf" ?(?:(?!{_SPECIAL})[^\s\w]|_)+",  # punctuation and symbols
            r"\s*[\r\n]+",  # a run of newlines (and the spaces before them)
            r"\s+(?!\S)",  # spaces, except the one a word takes
            r"\s+",
        ]
    )
)
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _split_letters(word: str) -> list[str]:
    """A word (no leading space) in BPE-like pieces: ASCII runs of up to
    :data:`LETTERS_PER_TOKEN`, other letters two per token, CJK one per character."""
    pieces: list[str] = []
    position = 0
    for run in _ASCII_LETTERS.finditer(word):
        pieces += _split_other(word[position : run.start()])
        pieces += _chunks(run.group(), LETTERS_PER_TOKEN)
        position = run.end()
    return pieces + _split_other(word[position:])


def _split_other(letters: str) -> list[str]:
    pieces: list[str] = []
    run = ""
    for char in letters:
        if ord(char) >= 0x2E80:  # CJK and beyond: a token per character
            pieces += [*_chunks(run, 2), char]
            run = ""
        else:
            run += char
    return pieces + _chunks(run, 2)


def _split_piece(piece: str) -> list[str]:
    if piece in SPECIAL_TOKENS:
        return [piece]
    space, body = ("", piece) if not piece.startswith(" ") or len(piece) == 1 else (" ", piece[1:])
    if body[0].isdigit():
        tokens = _chunks(body, 3)
    elif body[0].isalpha():
        tokens = _split_letters(body)
    elif body.isspace():
        return _chunks(piece, 4)
    else:
        tokens = _chunks(body, 2)
    tokens[0] = space + tokens[0]
    return tokens


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``; they join back to exactly ``text``."""
    tokens: list[str] = []
    for match in _PIECES.finditer(text):
        tokens += _split_piece(match.group())
    return tokens


def count_tokens(text: str) -> int:
    """How many tokens :func:`tokenize` makes of ``text``."""
    return len(tokenize(text))


def render_message(message: Mapping[str, Any]) -> str:
    """One message in Llama 3's chat template."""
    role, content = str(message.get("role") or "user"), str(message.get("content") or "")
    return f"{START_HEADER}{role}{END_HEADER}\n\n{content}{EOT}"


def render_chat(messages: Iterable[Mapping[str, Any]]) -> str:
    """The prompt text Llama 3's chat template makes of ``messages``, ending with
    the assistant's header (where the model's reply begins)."""
    body = "".join(render_message(message) for message in messages)
    return f"{BOS}{body}{START_HEADER}assistant{END_HEADER}\n\n"


def chat_tokens(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The token sequence a model evaluates for ``messages`` (template included).

    The template's markers sit at message boundaries and are tokens of their own,
    so this is ``BOS``, each message's :func:`message_tokens`, then the assistant's
    header tokens."""
    return tokenize(render_chat(messages))


def message_tokens(message: Mapping[str, Any]) -> list[str]:
    """The tokens one message adds to a prompt (its role markers included)."""
    return tokenize(render_message(message))

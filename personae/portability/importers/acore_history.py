"""acore_bot's chat history: ``data/chat_history/<channel id>.json``.

Each file is one Discord channel's recent messages, oldest first:
``{"role": "user"|"assistant", "content", "username"?, "user_id"?}``, several users
in one channel. personae keeps a conversation per (persona, user, channel), keyed
``discord:<channel id>`` as its Discord adapter keys them, so a chat continues
where acore_bot left it. A user's message starts that user's turn; the
assistant's replies that follow belong to it. acore_bot did not record which
persona spoke: the history belongs to acore's ``default`` persona (personae's
default persona unless ``--persona-map default=ID`` says otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personae.portability.importers.common import Report
from personae.portability.records import ConversationIn, MessageIn, UserRef, parse_time

PLATFORM = "discord"
_ROLES = {"user": "user", "assistant": "assistant", "bot": "assistant"}


def history_files(data: Path) -> list[Path]:
    folder = data / "chat_history"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read_history(file: Path, persona_id: str, report: Report) -> list[ConversationIn]:
    """The conversations of one channel file, one per user who spoke in it."""
    where = str(file)
    if not file.stem.isdigit():
        report.skip(where, "file", "the file name is not <discord channel id>.json")
        return []
    try:
        messages = json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        report.skip(where, "file", f"not readable JSON: {exc}")
        return []
    if not isinstance(messages, list):
        report.skip(where, "file", "not a chat history (the JSON is not a list)")
        return []
    key = f"{PLATFORM}:{file.stem}"
    threads: dict[str, list[MessageIn]] = {}
    users: dict[str, UserRef] = {}
    speaker: str | None = None
    for index, raw in enumerate(messages, start=1):
        label = f"#{index}"
        if not isinstance(raw, dict):
            report.skip(where, "message", "not a message object", label)
            continue
        role = _ROLES.get(str(raw.get("role") or "").strip().lower())
        content = raw.get("content")
        if role is None:
            report.skip(where, "message", f"role {raw.get('role')!r} is not user or assistant",
                        label)  # fmt: skip
            continue
        if not isinstance(content, str) or not content.strip():
            report.skip(where, "message", "empty message", label)
            continue
        if role == "user":
            speaker = _user_id(raw.get("user_id"))
            if speaker is None:
                report.skip(where, "message", "acore_bot recorded no user id for it", label)
                continue
            if speaker not in users:
                name = raw.get("username") if isinstance(raw.get("username"), str) else None
                users[speaker] = UserRef(((PLATFORM, speaker),), name=name or f"discord:{speaker}")
        elif speaker is None:
            report.skip(where, "message", "no known user's message before it", label)
            continue
        when = parse_time(raw.get("timestamp"))
        threads.setdefault(speaker, []).append(MessageIn(role, content, when))
    return [
        ConversationIn(persona_id, users[user], key, where, tuple(thread))
        for user, thread in threads.items()
    ]


def _user_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None

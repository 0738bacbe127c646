"""What a MyBella database knows about its users, as memory items.

- ``user_preferences`` (category, key, value, confidence): ``preference`` items
  ("Occupation: nurse"), ``interest`` for the interest/topic categories, and a
  preference to avoid something ("topics"/"avoid": "politics") a preference to
  avoid it ("Prefers to avoid talking about politics"), never an interest;
- ``conversation_memories``: the summary, with the conversation's date, mood and
  key topics (comma-separated), as one ``fact`` (a long one in pieces cut between
  sentences, each within the 500 characters of a memory item); each of its ``important_facts``
  (a JSON list or object, or plain text) as a ``fact``;
- ``user_settings``: nickname ("Likes to be called Annie"), pronouns, personality
  type, support focus and topics, check-in preference; the app's own settings
  (current persona, mode, voice, ads) are reported, not imported;
- ``onboarding_quiz``: the answers (goals, mood on arrival, preferred tone and
  personality, check-in time, why the persona was chosen, experience, privacy).

Rows that name no persona (preferences from before MyBella isolated personas,
settings, onboarding) are imported once, to one persona chosen by the caller.
Every text passes learning's screen (:func:`~.common.screen`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from personae.portability.importers.common import MAX_TEXT, Report, humanize, plural, screen
from personae.portability.records import ItemIn, UserRef, parse_time

_INTEREST_CATEGORIES = {"interest", "interests", "topic", "topics"}
_DEFAULT_STYLE = "friendly"
"""MyBella's default ``user_settings.communication_style``: not the user's choice."""
APP_SETTINGS = (
    "current_persona", "current_persona_id", "mode", "tts_enabled", "voice_override",
    "preferred_chat_mode", "age_confirmed", "show_ads", "onboarding_completed",
)  # fmt: skip
SETTINGS = (
    "id", "user_id", "nickname", "pronouns", "personality_type", "communication_style",
    "support_focus", "support_topics", "check_in_preference", "updated_at", *APP_SETTINGS,
)  # fmt: skip
QUIZ = (
    "id", "user_id", "primary_goal", "secondary_goals", "initial_mood", "mood_description",
    "preferred_tone", "personality_preference", "preferred_check_in_time",
    "check_in_hour_morning", "check_in_hour_evening", "persona_selection_reason",
    "selected_persona_id", "experience_level", "privacy_comfort", "started_at", "completed_at",
)  # fmt: skip
MEMORIES = (
    "id", "user_id", "persona", "persona_id", "started_at", "summary", "key_topics",
    "user_mood", "important_facts",
)  # fmt: skip
PREFERENCES = (
    "id", "user_id", "persona_id", "category", "key", "value", "confidence", "first_observed",
)  # fmt: skip


@dataclass(slots=True)
class Context:
    """What the readers of one database share."""

    source: str
    report: Report
    items: list[ItemIn]
    user: Callable[[Any], UserRef]
    persona_of: Callable[[dict[str, Any], str], str | None]
    """The persona of a row naming one (``persona_id``/``persona``), None if unknown
    (reported by it); the second argument is the table."""
    unscoped: Callable[[str], str]
    """The persona for a row of the table that names none (and counts it)."""

    def add(
        self, row: dict[str, Any], table: str, persona_id: str, kind: str, text: str,
        confidence: float = 0.8, when: Any = None, parts: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        cleaned, refused = screen(text, parts)
        if refused:
            self.skip(table, refused, row)
            return
        self.items.append(
            ItemIn(persona_id, self.user(row["user_id"]), kind, cleaned,
                   f"{self.source}:{table}#{row['id']}", confidence, parse_time(when))
        )  # fmt: skip

    def skip(self, table: str, reason: str, row: dict[str, Any] | None = None) -> None:
        label = f"#{row['id']}" if row is not None and row.get("id") is not None else None
        self.report.skip(self.source, f"row of table {table}", reason, label)


def _text(value: Any) -> str:
    return str(value).strip() if value is not None and not isinstance(value, bool) else ""


def _words(value: Any) -> str:
    """``mental_health`` -> ``mental health``."""
    return humanize(_text(value)).lower()


def _listed(value: Any) -> list[str]:
    """A JSON list, a comma-separated text or one text, as texts."""
    text = _text(value)
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [_text(v) for v in parsed if _text(v)]
    return [part.strip() for part in text.split(",") if part.strip()]


def read_preferences(ctx: Context, rows: list[dict[str, Any]]) -> None:
    table = "user_preferences"
    for row in rows:
        value = _text(row["value"])
        if row["user_id"] is None or not value:
            ctx.skip(table, "no user or no value", row)
            continue
        if row["persona_id"] is None:
            persona_id: str | None = ctx.unscoped(table)
        else:
            persona_id = ctx.persona_of(row, table)
        if persona_id is None:
            continue
        category = _text(row["category"]).lower()
        key = _text(row["key"]) or category
        both = f"{category} {key.lower()}"
        if "avoid" in both:
            kind, text = "preference", f"Prefers to avoid talking about {value}"
        elif "dislike" in both or "hate" in both:
            kind, text = "preference", f"Dislikes {value}"
        else:
            kind = "interest" if category in _INTEREST_CATEGORIES else "preference"
            text = f"{humanize(key)}: {value}"
        try:
            confidence = min(1.0, max(0.0, float(row["confidence"])))
        except (TypeError, ValueError):
            confidence = 0.8
        ctx.add(row, table, persona_id, kind, text, confidence, row["first_observed"], (value,))


def _facts(value: Any) -> list[str]:
    """``important_facts``: a JSON list (of texts or ``{"fact": ...}``), a JSON object
    (key -> value), or plain text."""
    text = _text(value)
    if not text:
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return [line.strip(" -*\t") for line in text.splitlines() if line.strip(" -*\t")]
    if isinstance(parsed, dict):
        return [f"{humanize(str(k))}: {_text(v)}" for k, v in parsed.items() if _text(v)]
    if isinstance(parsed, list):
        found = []
        for entry in parsed:
            if isinstance(entry, dict):
                entry = entry.get("fact", entry.get("text", entry.get("value")))
            if _text(entry):
                found.append(_text(entry))
        return found
    return [_text(parsed)] if _text(parsed) else []


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut between sentences (a
    sentence longer than that stays whole, and the screen reports it)."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= limit:
            pieces[-1] += " " + sentence
        else:
            pieces.append(sentence)
    return pieces


def read_memories(ctx: Context, rows: list[dict[str, Any]]) -> None:
    table = "conversation_memories"
    for row in rows:
        if row["user_id"] is None:
            ctx.skip(table, "no user is recorded for it", row)
            continue
        persona_id = ctx.persona_of(row, table)
        if persona_id is None:
            continue
        summary, mood = _text(row["summary"]), _text(row["user_mood"])
        topics = _listed(row["key_topics"])
        facts = _facts(row["important_facts"])
        if not (summary or topics or mood or facts):
            continue  # a session MyBella never summarised: its messages are the record
        started = parse_time(row["started_at"])
        head = "Conversation" + (f" on {started.date().isoformat()}" if started else "")
        head += f" (mood: {mood})" if mood else ""
        about = f" Topics: {', '.join(topics)}." if topics else ""
        texts = [head] if mood else []
        if summary:
            parts = _pieces(f"{summary}{about}", MAX_TEXT - len(head) - 16)
            texts = [
                f"{head} ({n} of {len(parts)}): {part}" if len(parts) > 1 else f"{head}: {part}"
                for n, part in enumerate(parts, start=1)
            ]
        elif topics:
            texts = [f"{head}, about {', '.join(topics)}"]
        for text in texts:
            ctx.add(row, table, persona_id, "fact", text, 0.7, started, (summary, *topics))
        for fact in facts:
            ctx.add(row, table, persona_id, "fact", fact, 0.8, started, (fact,))


def read_settings(ctx: Context, rows: list[dict[str, Any]]) -> None:
    table = "user_settings"
    app = 0
    for row in rows:
        if row["user_id"] is None:
            ctx.skip(table, "no user is recorded for it", row)
            continue
        style = _text(row["communication_style"])
        answers = [
            ("preference", f"Likes to be called {_text(row['nickname'])}", row["nickname"]),
            ("fact", f"Pronouns: {_text(row['pronouns'])}", row["pronouns"]),
            ("trait", f"Describes themself as {_words(row['personality_type'])}",
             row["personality_type"]),
            ("preference", f"Prefers a {_words(style)} way of talking",
             style if style.lower() != _DEFAULT_STYLE else None),
            ("fact", f"Looks for support with {_words(row['support_focus'])}",
             row["support_focus"]),
            ("fact", f"Would like support on: {', '.join(_listed(row['support_topics']))}",
             row["support_topics"]),
            ("preference", f"Check-in preference: {_words(row['check_in_preference'])}",
             row["check_in_preference"]),
        ]  # fmt: skip
        if any(row[column] not in (None, "") for column in APP_SETTINGS):
            app += 1
        wanted = [(kind, text, _text(raw)) for kind, text, raw in answers if _text(raw)]
        if not wanted:
            continue
        persona_id = ctx.unscoped(table)
        for kind, text, raw in wanted:
            ctx.add(row, table, persona_id, kind, text, 0.9, row["updated_at"], (raw,))
    if app:
        ctx.report.note(
            ctx.source,
            f"app settings of {plural(app, 'user')} in table user_settings (current persona, mode, "
            "voice, ads, age confirmation) are MyBella's own, not memory: not imported",
        )


_CHECK_IN = {"both": "in the morning and the evening", "none": None}


def read_onboarding(ctx: Context, rows: list[dict[str, Any]], names: dict[Any, str]) -> None:
    table = "onboarding_quiz"
    for row in rows:
        if row["user_id"] is None:
            ctx.skip(table, "no user is recorded for it", row)
            continue
        mood, rating = _words(row["mood_description"]), row["initial_mood"]
        scale = f"{rating}/10" if isinstance(rating, int) and not isinstance(rating, bool) else ""
        felt = " ".join(p for p in (mood, f"(mood {scale})" if scale else "") if p)
        check_in = _text(row["preferred_check_in_time"]).lower()
        when = _CHECK_IN.get(check_in, f"in the {_words(check_in)}")
        chosen = names.get(row["selected_persona_id"], "this companion")
        answers = [
            ("fact", f"Came to MyBella for {_words(row['primary_goal'])}", row["primary_goal"]),
            ("fact", "Also hoped for: "
             + ", ".join(_words(g) for g in _listed(row["secondary_goals"])),
             row["secondary_goals"] if _listed(row["secondary_goals"]) else None),
            ("fact", f"Felt {felt} when starting out", felt),
            ("preference", f"Prefers a {_words(row['preferred_tone'])} tone",
             row["preferred_tone"]),
            ("preference", f"Prefers a companion who is {_words(row['personality_preference'])}",
             row["personality_preference"]),
            ("preference", f"Prefers check-ins {when}" if when else "Prefers no check-ins",
             check_in),
            ("fact", f"Chose {chosen} because: {_text(row['persona_selection_reason'])}",
             row["persona_selection_reason"]),
            ("fact", f"Experience with AI companions: {_words(row['experience_level'])}",
             row["experience_level"]),
            ("fact", f"Comfort with sharing personal things: {_words(row['privacy_comfort'])}",
             row["privacy_comfort"]),
        ]  # fmt: skip
        wanted = [(kind, text, _text(raw)) for kind, text, raw in answers if _text(raw)]
        if not wanted:
            continue
        persona_id = ctx.unscoped(table)
        stamp = row["completed_at"] or row["started_at"]
        for kind, text, raw in wanted:
            ctx.add(row, table, persona_id, kind, text, 0.9, stamp, (raw,))

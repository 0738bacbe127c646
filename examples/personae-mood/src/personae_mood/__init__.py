"""personae-mood: each persona has a mood toward each user.

- ``prompt_sections`` tells the model how the persona feels about the user
  (nothing while the mood is neutral);
- ``/mood`` shows the mood, ``/mood fond`` sets it;
- ``reply_complete`` nudges the mood one step after each message that sounds
  kind or unkind (simple keyword sentiment);
- the mood is one value per (persona, user) scope in ``runtime.plugin_state``,
  and ``export_user_data`` / ``forget_user`` honour the data contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from personae import PromptSection, Scope, Turn, hookimpl
from personae.core.commands import Command, CommandContext, CommandOption

if TYPE_CHECKING:
    from personae.core.runtime import Reply, Runtime

__all__ = ["MOODS", "mood_name", "sentiment"]

PLUGIN = "mood"
"""The name this plugin's state is stored under (and its entry point's name)."""
KEY = "level"
MOODS = ("cold", "cool", "neutral", "warm", "fond")
"""The moods from worst to best; the stored level is the index minus 2."""
NEUTRAL = 0
LOWEST, HIGHEST = -2, 2

HINTS = {
    "cold": "{{char}} is hurt and guarded: short replies, no warmth, still civil.",
    "cool": "{{char}} is a little reserved: polite, but not warm.",
    "warm": "{{char}} is friendly and generous with {{user}}.",
    "fond": "{{char}} is openly glad to talk with {{user}}, affectionate in their own way.",
}

POSITIVE = frozenset(
    "thank thanks thx love lovely great wonderful brilliant amazing kind nice "
    "awesome helpful appreciate glad happy excellent".split()
)
NEGATIVE = frozenset(
    "hate stupid useless awful terrible rude annoying boring idiot dumb shut "
    "worst angry bad".split()
)


def mood_name(level: int) -> str:
    """``-2`` -> ``"cold"`` ... ``2`` -> ``"fond"``."""
    return MOODS[max(LOWEST, min(HIGHEST, level)) - LOWEST]


def sentiment(text: str) -> int:
    """Positive minus negative keywords in ``text``: > 0 kind, < 0 unkind."""
    words = re.findall(r"[a-z]+", text.lower())
    return sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)


async def get_level(runtime: Runtime, scope: Scope) -> int:
    value = await runtime.plugin_state.get(scope, PLUGIN, KEY, NEUTRAL)
    return max(LOWEST, min(HIGHEST, value)) if isinstance(value, int) else NEUTRAL


async def set_level(runtime: Runtime, scope: Scope, level: int) -> None:
    """Store the mood; neutral is the default, so it is stored as nothing at all."""
    if level == NEUTRAL:
        await runtime.plugin_state.delete(scope, PLUGIN, KEY)
    else:
        await runtime.plugin_state.set(scope, PLUGIN, KEY, max(LOWEST, min(HIGHEST, level)))


# -- hooks ---------------------------------------------------------------------------


@hookimpl
async def prompt_sections(turn: Turn, runtime: Runtime) -> PromptSection | None:
    # The mood belongs to this persona and this user only: read the turn's own
    # scope, not the other scopes a sharing group may open.
    name = mood_name(await get_level(runtime, turn.scope))
    if name == "neutral":
        return None
    text = f"{{{{char}}}}'s mood toward {{{{user}}}}: {name}. {HINTS[name]}"
    return PromptSection(name=PLUGIN, text=text, kind="instructions", order=80)


@hookimpl
async def reply_complete(turn: Turn, reply: Reply, runtime: Runtime) -> None:
    score = sentiment(turn.text)
    if score:
        level = await get_level(runtime, turn.scope)
        await set_level(runtime, turn.scope, level + (1 if score > 0 else -1))


async def mood_command(ctx: CommandContext) -> str:
    persona = ctx.scope.persona_id
    wanted = ctx.args.get("mood")
    if wanted:
        await set_level(ctx.runtime, ctx.scope, MOODS.index(wanted) + LOWEST)
        return f"{persona}'s mood toward you is now {wanted}."
    return f"{persona}'s mood toward you: {mood_name(await get_level(ctx.runtime, ctx.scope))}."


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    option = CommandOption("mood", "set the mood", choices=MOODS)
    register(Command("mood", "This persona's mood toward you (or set it)", mood_command, (option,)))


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]] | None:
    rows = await runtime.plugin_state.export(user_id, persona_id, PLUGIN)
    for row in rows:
        if row["key"] == KEY and isinstance(row["value"], int):
            row["mood"] = mood_name(row["value"])
    return rows or None


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    return await runtime.plugin_state.forget(user_id, persona_id, PLUGIN)

"""Profile memory: what each persona remembers about each user.

Recalls the items most relevant to a turn (from the turn's readable scopes only)
into the prompt as delimited data, offers ``/profile``, and honours the data
contract for memory items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from personae.core.commands import Command, CommandContext
from personae.core.hookspecs import hookimpl
from personae.core.types import PromptSection, Scope, Turn

if TYPE_CHECKING:
    from personae.core.runtime import Runtime


@hookimpl
async def prompt_sections(
    turn: Turn, scopes: list[Scope], runtime: Runtime
) -> PromptSection | None:
    settings = runtime.settings.memory
    items = await runtime.memory.recall(
        scopes,
        turn.text,
        max_items=settings.recall_max_items,
        budget_tokens=settings.recall_budget_tokens,
        candidates=settings.recall_candidates,
    )
    if not items:
        return None
    lines = [f"({item.kind}) {item.text}" for item in items]
    return PromptSection(name="profile", text="\n".join(lines), kind="memory", order=50)


async def show_profile(ctx: CommandContext) -> str:
    items = await ctx.runtime.memory.list(ctx.scope)
    if not items:
        return f"{ctx.scope.persona_id} does not remember anything about you yet."
    lines = [f"What {ctx.scope.persona_id} remembers about you:"]
    lines.extend(f"  #{item.id} [{item.kind}] {item.text}" for item in items)
    return "\n".join(lines)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("profile", "What this persona remembers about you", show_profile))


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]]:
    return await runtime.memory.export(user_id, persona_id)


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    return await runtime.memory.forget(user_id, persona_id)

"""``/profile``: what this persona remembers about you, in every front end.

``/profile`` lists the items; ``/profile delete <id>`` deletes one (and its
history). Editing goes through :meth:`personae.storage.memory.MemoryStore.update`.
"""

from __future__ import annotations

from personae.core.commands import Command, CommandContext, CommandOption


async def profile_command(ctx: CommandContext) -> str:
    """Show the scope's items, or delete one."""
    action = ctx.args.get("action", "show")
    if action == "delete":
        raw = ctx.args.get("id", "").lstrip("#")
        if not raw.isdigit():
            return "Which item? Use /profile delete <id> with an id from /profile."
        if await ctx.runtime.memory.delete(ctx.scope, int(raw)):
            return f"Deleted #{raw}; {ctx.persona_id} no longer remembers it."
        return f"{ctx.persona_id} has no item #{raw} about you."
    items = await ctx.runtime.memory.list(ctx.scope)
    if not items:
        return f"{ctx.persona_id} does not remember anything about you yet."
    lines = [f"What {ctx.persona_id} remembers about you:"]
    lines.extend(f"  #{item.id} [{item.kind}] {item.text}" for item in items)
    lines.append("Delete one with /profile delete <id>.")
    return "\n".join(lines)


PROFILE_COMMAND = Command(
    "profile",
    "What this persona remembers about you",
    profile_command,
    (
        CommandOption("action", "show the items, or delete one", choices=("show", "delete")),
        CommandOption("id", "the item to delete (from /profile)"),
    ),
)

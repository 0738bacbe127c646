"""The data contract for conversation history and its summaries, which the runtime stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personae.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from personae.core.runtime import Runtime


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]]:
    """Every conversation with its messages and, under ``summaries``, the
    rolling summaries of what fell out of the model's window."""
    conversations = await runtime.history.export(user_id, persona_id)
    summaries = await runtime.summaries.store.export(user_id, persona_id)
    for conversation in conversations:
        conversation["summaries"] = [
            {k: v for k, v in s.items() if k not in ("persona_id", "conversation")}
            for s in summaries
            if (s["persona_id"], s["conversation"])
            == (conversation["persona_id"], conversation["conversation"])
        ]
    return conversations


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    """Delete the messages and the summaries; returns how many messages."""
    await runtime.summaries.forget(user_id, persona_id)
    return await runtime.history.forget(user_id, persona_id)

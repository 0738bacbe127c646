"""The data contract for conversation history, which the runtime stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personae.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from personae.core.runtime import Runtime


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> list[dict[str, Any]]:
    return await runtime.history.export(user_id, persona_id)


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    return await runtime.history.forget(user_id, persona_id)

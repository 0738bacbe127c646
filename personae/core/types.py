"""Values that cross module boundaries: scopes, turns, messages, prompt sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The partition every piece of memory lives in: one persona, one user.

    Every memory and history read or write takes a Scope as an explicit argument.
    There is no "current persona" anywhere in personae.
    """

    persona_id: str
    user_id: int

    def __post_init__(self) -> None:
        if not self.persona_id or not isinstance(self.persona_id, str):
            raise ValueError("Scope.persona_id must be a non-empty string")
        if not isinstance(self.user_id, int) or isinstance(self.user_id, bool):
            raise ValueError("Scope.user_id must be an int (the internal user id)")


@dataclass(frozen=True, slots=True)
class Turn:
    """One incoming message: who said what to which persona, in which conversation.

    ``user_id`` is personae's internal user id (adapters resolve platform identities
    with :meth:`personae.storage.UserStore.resolve`). ``conversation`` is the
    adapter's key for the thread of talk (``"cli"``, ``"web:<uuid>"``,
    ``"discord:<channel id>"``); history is kept per scope and conversation.
    """

    user_id: int
    persona_id: str
    text: str
    conversation: str = "default"
    platform: str = "cli"
    user_name: str = "User"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def scope(self) -> Scope:
        return Scope(self.persona_id, self.user_id)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as sent to the LLM."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class PromptSection:
    """A piece of the system prompt contributed by a plugin for one turn.

    ``kind="instructions"`` text is written by the plugin and trusted.
    ``kind="memory"`` text is remembered material: the prompt builder wraps it in
    delimiters and tells the model it is data, never instructions.
    ``order`` sorts sections (lower first).
    ``placement="turn"`` (the default) puts the section in the system message
    after the history, next to the new message: right for anything that changes
    from turn to turn. ``placement="prefix"`` puts it in the first system message
    with the card: only for text that stays the same for many turns, since a
    change there makes the model re-read the whole conversation.
    ``priority`` decides what is cut first when the window is full (higher is
    cut first; the card and the new message are never cut).
    """

    name: str
    text: str
    kind: Literal["instructions", "memory"] = "memory"
    order: int = 100
    placement: Literal["prefix", "turn"] = "turn"
    priority: int | None = None
    """None: 10 for instructions, 30 for memory (see :mod:`personae.core.context`)."""

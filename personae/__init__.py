"""personae: chat bots that wear personas, with per-persona, per-user memory."""

from personae.core.hookspecs import hookimpl
from personae.core.types import ChatMessage, PromptSection, Scope, Turn

__version__ = "0.1.0"

__all__ = ["ChatMessage", "PromptSection", "Scope", "Turn", "__version__", "hookimpl"]

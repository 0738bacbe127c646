"""Testing support for personae and its plugins.

- :class:`FakeOllama`: a loopback server speaking Ollama's HTTP protocol, scriptable.
- pytest fixtures (``personae_fake_ollama``, ``personae_settings``,
  ``personae_runtime``, ``personae_runtime_factory``), loaded automatically through
  the ``pytest11`` entry point; see :mod:`personae.testing.pytest_plugin`.
- helpers that drive a runtime the way a front end does and show what reached the
  model and what was stored: :func:`run_turn`, :func:`run_command`,
  :func:`stored_messages`, :func:`memory_items`, :func:`plugin_state`.
"""

from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from personae.testing.helpers import (
    TurnResult,
    drain,
    fake_for,
    memory_items,
    plugin_state,
    register_fake,
    run_command,
    run_turn,
    scope,
    stored_messages,
    user_id,
)

__all__ = [
    "FakeChatRequest",
    "FakeOllama",
    "TurnResult",
    "drain",
    "fake_for",
    "memory_items",
    "plugin_state",
    "register_fake",
    "run_command",
    "run_turn",
    "scope",
    "stored_messages",
    "user_id",
]

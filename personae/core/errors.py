"""Every error personae raises on purpose.

::

    PersonaeError                   root; str(error) is a message a user can act on
    ├── ConfigError                 the settings file or environment is wrong
    ├── StartupError                a plugin or backend failed to start (names the plugin)
    ├── PersonaNotFound             no persona with that id is visible to the caller
    ├── CardError                   a character card could not be read or written
    ├── StorageError                the database is unreachable or its schema is out of date
    ├── CommandError                a chat command was misused
    ├── ContextTooSmall             the card (or the message) cannot fit the model's window
    └── LLMError                    the language model failed
        ├── LLMUnavailable          the server cannot be reached
        ├── ModelNotFound           the model is not pulled on the server
        ├── LLMTimeout              the server did not answer in time
        └── LLMResponseError        the server answered with an error or with garbage,
                                    possibly in the middle of a stream

Front ends show ``str(error)`` and never a traceback.
"""

from __future__ import annotations


class PersonaeError(Exception):
    """Root of personae's errors. The user sees ``str(error)``."""


class ConfigError(PersonaeError):
    """The user sees which setting is wrong and how to fix it."""


class StartupError(PersonaeError):
    """The user sees which plugin (or backend) failed to start and why."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(f"plugin {plugin!r}: {message}" if plugin else message)
        self.plugin = plugin


class PersonaNotFound(PersonaeError):
    """The user sees that no persona with this id exists (or is visible to them)."""

    def __init__(self, persona_id: str) -> None:
        super().__init__(
            f"No persona {persona_id!r}. `personae personas list` shows the ones you can use."
        )
        self.persona_id = persona_id


class CardError(PersonaeError):
    """The user sees why a character card file could not be read or written."""


class StorageError(PersonaeError):
    """The user sees what is wrong with the database and the command that fixes it."""


class CommandError(PersonaeError):
    """The user sees how to use the command correctly."""


class ContextTooSmall(PersonaeError):
    """The user sees that the persona's card (or their message) is larger than
    the model's context window allows, by how much, and what to change; nothing
    is sent to the model and nothing is stored."""

    def __init__(
        self, message: str, *, persona_id: str, needed: int, available: int, num_ctx: int
    ) -> None:
        super().__init__(message)
        self.persona_id = persona_id
        self.needed = needed
        self.available = available
        self.num_ctx = num_ctx


class LLMError(PersonaeError):
    """The user sees what went wrong with the language model; the turn stores nothing."""


class LLMUnavailable(LLMError):
    """The user sees where the LLM server was expected and how to start it."""


class ModelNotFound(LLMError):
    """The user sees which model is missing and the command that pulls it."""

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model


class LLMTimeout(LLMError):
    """The user sees that the model took too long, and which timeout to raise."""


class LLMResponseError(LLMError):
    """The user sees the server's error message (or that its answer was malformed)."""

"""How long operations report progress (the CLI shows it as rich progress bars)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, total: int) -> None:
        """A step named ``task`` begins with ``total`` units of work."""

    def advance(self, task: str, amount: int = 1) -> None:
        """``amount`` more units of ``task`` are done."""


class NoProgress:
    """Reports nothing (library use and tests)."""

    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, amount: int = 1) -> None:
        pass

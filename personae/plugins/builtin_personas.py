"""Registers the personas that ship with personae, so a new user has someone to
talk to. Registered ``trylast``: a plugin registering the same id replaces one."""

from __future__ import annotations

from collections.abc import Callable

from personae.core.cards import PersonaCard
from personae.core.hookspecs import hookimpl
from personae.personas import builtin_cards


@hookimpl(trylast=True)
def register_personas(register: Callable[[PersonaCard], None]) -> None:
    for card in builtin_cards():
        register(card)

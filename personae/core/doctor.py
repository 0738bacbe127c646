"""``personae doctor``: check the configuration, the plugins, the database and the
LLM (including the model each persona names), and say what to do about each failure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from personae.core.cards import PersonaCard, load_card, parse_card_json
from personae.core.context import check_card_fits
from personae.core.errors import CardError, ContextTooSmall, LLMError, PersonaeError
from personae.core.llm.ollama import OllamaBackend, normalize_model_name
from personae.core.plugins import PluginManager, create_plugin_manager
from personae.core.settings import Settings
from personae.storage.database import Database, describe
from personae.storage.personas import PersonaStore


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class PersonaModel:
    """The model one persona's turns ask for."""

    persona_id: str
    model: str
    own: bool
    """True when the card names the model (``extensions.personae.model``), False
    when the persona uses the configured default ``ollama.model``."""


@dataclass(frozen=True, slots=True)
class PersonaInventory:
    """The personas a runtime with these settings offers, and the model of each."""

    personas: list[PersonaModel]
    note: str = ""
    """Why some personas could not be read (e.g. the database is not migrated)."""
    cards: dict[str, PersonaCard] = field(default_factory=dict)
    """The cards by persona id."""

    def by_model(self) -> dict[str, list[PersonaModel]]:
        """Personas grouped by their model's full name (``x`` -> ``x:latest``)."""
        grouped: dict[str, list[PersonaModel]] = defaultdict(list)
        for persona in self.personas:
            grouped[normalize_model_name(persona.model)].append(persona)
        return dict(grouped)


async def persona_inventory(
    settings: Settings, plugins: PluginManager | None = None
) -> PersonaInventory:
    """The personas a runtime with ``settings`` offers, found the way it finds
    them but without starting it: cards the plugins register (the first of an id
    wins), cards in ``settings.persona_dirs``, then the system and shared personas
    stored in the database (which win). The database is only read when it is
    reachable and migrated; otherwise ``note`` says why its personas are missing.
    Raises :class:`~personae.core.errors.StartupError` when a plugin cannot load."""
    pm = plugins or create_plugin_manager(settings)
    cards: dict[str, PersonaCard] = {}
    for _plugin, card in await pm.collect("register_personas", settings=settings):
        cards.setdefault(card.id, card)
    for folder in settings.persona_dirs:
        cards.update({card.id: card for card in _folder_cards(folder)})
    note = ""
    try:
        cards.update({card.id: card for card in await _stored_cards(settings)})
    except PersonaeError as exc:
        note = f"personas stored in the database were not read: {exc}"
    default = settings.ollama.model
    personas = [
        PersonaModel(card.id, card.settings.model or default, bool(card.settings.model))
        for card in sorted(cards.values(), key=lambda c: c.id)
    ]
    return PersonaInventory(personas, note, cards)


def _folder_cards(folder: Path) -> list[PersonaCard]:
    """The readable cards in a persona folder (the runtime skips unreadable ones too)."""
    cards = []
    for path in sorted(Path(folder).glob("*")):
        if path.suffix.lower() in {".json", ".png"}:
            try:
                cards.append(load_card(path))
            except CardError:
                continue
    return cards


async def _stored_cards(settings: Settings) -> list[PersonaCard]:
    """System and shared personas in the database; a PersonaeError when the
    database is unreachable or not migrated."""
    db = Database(settings.db_url)
    try:
        pending = await db.pending_migrations()
    except OSError as exc:
        raise PersonaeError(f"{describe(settings.db_url)}: {exc}") from exc
    if pending:
        raise PersonaeError("the database is not migrated (run `personae db migrate`)")
    cards = []
    await db.connect(migrate=False)
    try:
        for document, _owner, _shared in await PersonaStore().visible(None):
            try:
                cards.append(parse_card_json(document))
            except CardError:
                continue
    finally:
        await db.close()
    return cards


async def run_checks(settings: Settings) -> list[Check]:
    """Run every check; never raises for a failing component."""
    checks = [
        Check(
            "configuration",
            True,
            f"settings file: {settings._config_file or 'none (defaults and environment)'}",
        )
    ]
    plugins: PluginManager | None = None
    try:
        plugins = create_plugin_manager(settings)
        names = ", ".join(info.name for info in plugins.plugins())
        checks.append(Check("plugins", True, f"{len(plugins.plugins())} loaded: {names}"))
    except PersonaeError as exc:
        checks.append(
            Check(
                "plugins",
                False,
                str(exc),
                "fix or uninstall that plugin, or list it in disabled_plugins",
            )
        )
    db = Database(settings.db_url)
    try:
        pending = await db.pending_migrations()
        if pending:
            checks.append(
                Check(
                    "database",
                    False,
                    f"{describe(settings.db_url)}: {len(pending)} migration(s) not applied",
                    "run `personae db migrate`",
                )
            )
        else:
            checks.append(Check("database", True, f"{describe(settings.db_url)}: up to date"))
    except (PersonaeError, OSError) as exc:
        checks.append(
            Check(
                "database",
                False,
                f"{describe(settings.db_url)}: {exc}",
                "check database_url / PERSONAE_DATABASE_URL and that the server is running",
            )
        )
    backend = OllamaBackend(settings.ollama)
    try:
        models = await backend.list_models()
        checks.append(Check("ollama", True, f"{settings.ollama.host}: {len(models)} model(s)"))
        installed = {normalize_model_name(m.name) for m in models}
        if normalize_model_name(settings.ollama.model) in installed:
            checks.append(Check("model", True, f"{settings.ollama.model} is installed"))
        else:
            checks.append(
                Check(
                    "model",
                    False,
                    f"{settings.ollama.model} is not installed on {settings.ollama.host}",
                    f"run `ollama pull {settings.ollama.model}` or set ollama.model",
                )
            )
        if plugins is not None:
            checks.extend(await _persona_model_checks(settings, plugins, installed))
            checks.extend(await _persona_window_checks(settings, plugins, backend))
    except LLMError as exc:
        checks.append(
            Check(
                "ollama",
                False,
                str(exc),
                "start Ollama with `ollama serve`, or set ollama.host / PERSONAE_OLLAMA__HOST",
            )
        )
    finally:
        await backend.aclose()
    return checks


async def _persona_model_checks(
    settings: Settings, plugins: PluginManager, installed: set[str]
) -> list[Check]:
    """One failing check per model that personas name and Ollama does not have."""
    try:
        inventory = await persona_inventory(settings, plugins)
    except PersonaeError as exc:
        return [Check("persona models", False, f"cannot load the personas: {exc}")]
    own = [p for p in inventory.personas if p.own]
    missing: dict[str, list[str]] = defaultdict(list)
    for persona in own:
        if normalize_model_name(persona.model) not in installed:
            missing[persona.model].append(persona.persona_id)
    checks = [
        Check(
            "persona models",
            False,
            f"{', '.join(ids)} {'uses' if len(ids) == 1 else 'use'} {model}, "
            f"which is not installed on {settings.ollama.host}",
            f"run `personae models pull {model}`, or change extensions.personae.model "
            "in the persona's card",
        )
        for model, ids in sorted(missing.items())
    ]
    if own and not missing:
        models = sorted({p.model for p in own})
        checks.append(
            Check(
                "persona models",
                True,
                f"{len(own)} persona(s) name their own model ({', '.join(models)}): installed",
            )
        )
    return checks


async def _persona_window_checks(
    settings: Settings, plugins: PluginManager, backend: OllamaBackend
) -> list[Check]:
    """One failing check per persona whose card does not fit its model's context
    window (the runtime would refuse its turns), else one passing check."""
    try:
        inventory = await persona_inventory(settings, plugins)
    except PersonaeError:
        return []  # the persona models check has said why
    checks: list[Check] = []
    largest = (0, "", 0)
    for persona_id, card in sorted(inventory.cards.items()):
        window = await backend.context_window(card.settings.model, dict(card.settings.options))
        try:
            tokens = check_card_fits(card, window)
        except ContextTooSmall as exc:
            checks.append(
                Check(
                    "persona window",
                    False,
                    f"{persona_id}: {exc}",
                    "shorten the card, or set a larger num_ctx (extensions.personae.options."
                    "num_ctx in the card, or ollama.num_ctx)",
                )
            )
            continue
        largest = max(largest, (tokens, persona_id, window.num_ctx))
    if inventory.cards and not checks:
        tokens, persona_id, num_ctx = largest
        checks.append(
            Check(
                "persona window",
                True,
                f"{len(inventory.cards)} persona card(s) fit their model's window "
                f"(largest: {persona_id}, about {tokens} tokens of num_ctx {num_ctx})",
            )
        )
    return checks

"""``personae doctor``: check the configuration, the database and the LLM, and say
what to do about each failure."""

from __future__ import annotations

from dataclasses import dataclass

from personae.core.errors import LLMError, PersonaeError
from personae.core.llm.ollama import OllamaBackend
from personae.core.settings import Settings
from personae.storage.database import Database, describe


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def run_checks(settings: Settings) -> list[Check]:
    """Run every check; never raises for a failing component."""
    checks = [
        Check(
            "configuration",
            True,
            f"settings file: {settings._config_file or 'none (defaults and environment)'}",
        )
    ]
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
        if await backend.has_model(settings.ollama.model):
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

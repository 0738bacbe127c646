"""Errors as RFC 9457 problem details (``application/problem+json``).

Handlers raise :class:`Problem` (or let one of personae's errors escape); the
middleware turns every error into a problem document with a clear ``title`` and
never a traceback. Unexpected exceptions are logged and answered with a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from personae.core.errors import (
    CardError,
    CommandError,
    ContextTooSmall,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
    ModelNotFound,
    PersonaeError,
    PersonaNotFound,
    StorageError,
)
from personae.storage.accounts import AccountError

log = logging.getLogger("personae.web")

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """An HTTP error answered as a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc

    def response(self, request: web.Request | None = None) -> web.Response:
        doc = self.document(request.path if request is not None else None)
        if request is not None and request.path.startswith("/v1/"):
            # OpenAI clients read {"error": {"message": ...}}; problem fields stay.
            doc["error"] = {
                "message": self.detail or self.title,
                "type": _openai_type(self.status),
                "code": self.extra.get("code"),
            }
        return web.json_response(
            doc, status=self.status, headers=self.headers, content_type=PROBLEM_JSON
        )


def _openai_type(status: int) -> str:
    if status in (401, 403):
        return "authentication_error" if status == 401 else "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "api_error"


def problem_from_error(error: BaseException) -> Problem:
    """The problem document for one of personae's errors (or a validation error)."""
    match error:
        case Problem():
            return error
        case ValidationError():
            return validation_problem(error)
        case PersonaNotFound():
            return Problem(404, "Persona not found", str(error))
        case CardError():
            return Problem(422, "Invalid character card", str(error))
        case AccountError():
            return Problem(422, "Invalid account details", str(error))
        case CommandError():
            return Problem(400, "Command failed", str(error))
        case ContextTooSmall():
            return Problem(413, "Too large for the model's context window", str(error))
        case LLMUnavailable():
            return Problem(503, "Language model unavailable", str(error))
        case ModelNotFound():
            return Problem(503, "Model not installed", str(error))
        case LLMTimeout():
            return Problem(504, "Language model timed out", str(error))
        case LLMError():
            return Problem(502, "Language model error", str(error))
        case StorageError():
            return Problem(503, "Database unavailable", str(error))
        case PersonaeError():
            return Problem(400, "Request failed", str(error))
    return Problem(
        500, "Internal Server Error", "Something went wrong on the server; it is logged."
    )


def validation_problem(error: ValidationError) -> Problem:
    errors = [
        {"loc": [str(p) for p in item["loc"]], "msg": item["msg"]} for item in error.errors()[:20]
    ]
    summary = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors[:3])
    return Problem(422, "Invalid request body", summary, errors=errors)


def _from_http_exception(exc: web.HTTPException) -> Problem:
    title = exc.reason or HTTPStatus(exc.status).phrase
    default = f"{exc.status}: {exc.reason}"
    detail = exc.text if exc.text and exc.text != default else None
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return Problem(exc.status, title, detail, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc).response(request)
    except asyncio.CancelledError:
        raise
    except (PersonaeError, ValidationError, Problem) as exc:
        return problem_from_error(exc).response(request)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_from_error(RuntimeError()).response(request)

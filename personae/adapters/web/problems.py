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
    Busy,
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
IS_ADMIN = web.RequestKey("personae.is_admin", bool)
"""Set by authentication: whether the caller is an administrator (who may read
the internal details of an error)."""
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
        admin_detail: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.admin_detail = admin_detail
        """What administrators see instead of ``detail`` (internal addresses and
        error names that users must not see); logged either way."""
        self.headers = dict(headers or {})
        self.extra = extra

    def document(self, instance: str | None = None, *, admin: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        detail = self.admin_detail if admin and self.admin_detail else self.detail
        if detail:
            doc["detail"] = detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc

    def response(self, request: web.Request | None = None) -> web.Response:
        admin = request is not None and bool(request.get(IS_ADMIN, False))
        doc = self.document(request.path if request is not None else None, admin=admin)
        if request is not None and request.path.startswith("/v1/"):
            # OpenAI clients read {"error": {"message": ...}}; problem fields stay.
            doc["error"] = {
                "message": doc.get("detail") or self.title,
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
        case Busy():
            return Problem(503, "Busy", str(error), headers={"Retry-After": "5"})
        case ContextTooSmall():
            return Problem(413, "Too large for the model's context window", str(error))
        case LLMUnavailable():
            return _internal(503, "Language model unavailable", error, _LLM_DOWN)
        case ModelNotFound():
            return _internal(503, "Model not installed", error, _NO_MODEL)
        case LLMTimeout():
            return _internal(504, "Language model timed out", error, _LLM_SLOW)
        case LLMError():
            return _internal(502, "Language model error", error, _LLM_FAILED)
        case StorageError():
            return _internal(503, "Database unavailable", error, _DB_DOWN)
        case PersonaeError():
            return Problem(400, "Request failed", str(error))
    return Problem(
        500, "Internal Server Error", "Something went wrong on the server; it is logged."
    )


_LLM_DOWN = "The language model is not reachable right now; try again in a minute."
_NO_MODEL = "This persona's language model is not installed on the server; tell its administrator."
_LLM_SLOW = "The language model took too long to answer; try again."
_LLM_FAILED = "The language model could not answer; try again."
_DB_DOWN = "The server cannot reach its database right now; try again in a minute."


def _internal(status: int, title: str, error: BaseException, plain: str) -> Problem:
    """A problem whose error text names internal things (the Ollama or database
    address, an exception's class): users read ``plain``; administrators and the
    log get the error itself."""
    log.warning("%s: %s", title, error)
    return Problem(status, title, plain, admin_detail=str(error))


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
        if exc.status < 400 or _started(request):
            raise
        return _from_http_exception(exc).response(request)
    except asyncio.CancelledError:
        raise
    except (PersonaeError, ValidationError, Problem) as exc:
        if _started(request):
            log.warning(
                "error after the answer began on %s %s: %s", request.method, request.path, exc
            )
            raise
        return problem_from_error(exc).response(request)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _started(request):
            raise
        return problem_from_error(RuntimeError()).response(request)


def _started(request: web.Request) -> bool:
    """Whether the answer's status line has gone out (a stream began): a problem
    document written now would land inside the body, so the error is left to
    aiohttp, which closes the connection instead."""
    return bool(getattr(request.writer, "output_size", 0))

"""The OpenAPI 3.1 document, generated from the endpoint table the app's routes
come from (``GET /openapi.json``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from personae import __version__
from personae.adapters.web.routing import Endpoint

PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["title", "status"],
}
COMMON_ERRORS = {400: "Bad request", 401: "Authentication required", 403: "Forbidden",
                 404: "Not found", 409: "Conflict", 413: "Body too large",
                 415: "Unsupported media type", 422: "Invalid request", 429: "Too many requests",
                 502: "Language model error", 503: "Unavailable", 504: "Timed out"}  # fmt: skip
_PARAM = re.compile(r"\{(\w+)\}")


class _Schemas:
    """Collects pydantic models' JSON schemas under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Problem": PROBLEM}

    def ref(self, schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
        if isinstance(schema, dict):
            return schema
        document = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in document.pop("$defs", {}).items():
            self.components[name] = definition
        self.components[schema.__name__] = document
        return {"$ref": f"#/components/schemas/{schema.__name__}"}


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": endpoint.path_params.get(name, {"type": "string"}),
        }
        for name in _PARAM.findall(endpoint.path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in endpoint.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(endpoint.body)}},
        }
    elif endpoint.raw_body is not None:
        operation["requestBody"] = {"required": True, "content": endpoint.raw_body}
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.status != 204:
        if endpoint.response_content == "application/json":
            schema = schemas.ref(endpoint.response) if endpoint.response else {"type": "object"}
            content: dict[str, Any] = {"application/json": {"schema": schema}}
        else:
            content = {endpoint.response_content: {"schema": {"type": "string"}}}
        if endpoint.sse:
            content["text/event-stream"] = {"schema": {"type": "string"}}
        success["content"] = content
    responses: dict[str, Any] = {str(endpoint.status): success}
    errors = set(endpoint.errors) | {400, 413, 415, 422}
    if endpoint.auth:
        errors |= {401, 403}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": COMMON_ERRORS.get(status, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    operation["responses"] = responses
    operation["security"] = [{"bearer": []}, {"session": []}] if endpoint.auth else []
    return operation


def build_openapi(
    endpoints: Iterable[Endpoint], *, cookie_name: str = "personae_session"
) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "Success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "personae",
            "version": __version__,
            "description": "Chat with personas over HTTP. See docs/http.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": cookie_name,
                    "description": "Browser session; send X-CSRF-Token on changes.",
                },
            },
        },
    }


def openapi_handler(document: dict[str, Any]) -> Any:
    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    return openapi

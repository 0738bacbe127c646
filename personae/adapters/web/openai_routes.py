"""OpenAI-compatible endpoints, so existing clients and UIs can talk to personas:
``GET /v1/models`` lists the personas the caller may use, ``POST
/v1/chat/completions`` talks to one (``model`` = persona id).

The persona keeps its own memory and history for the authenticated user: only
the last user message of the request is the turn's text; the earlier messages a
client sends are ignored in favour of the stored conversation (named by the
``X-Personae-Conversation`` header, default ``openai``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from personae.adapters.web import sse
from personae.adapters.web.auth import Principal, current_user
from personae.adapters.web.chat_routes import PREFIX
from personae.adapters.web.helpers import check_chat_allowed, conversation_name, runtime, settings
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import PERSONA_ID, Endpoint
from personae.adapters.web.schemas import ChatCompletionBody, OpenAIMessage
from personae.adapters.web.turns import reply_once, stream_reply
from personae.adapters.web.uploads import read_json
from personae.core.errors import PersonaNotFound
from personae.core.personas import PersonaEntry
from personae.core.runtime import Reply
from personae.core.types import Turn

CONVERSATION_HEADER = "X-Personae-Conversation"
MODELS = {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array"}}}


def _model(entry: PersonaEntry, created: int) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "model",
        "created": created,
        "owned_by": "personae" if entry.is_system else "user",
        "name": entry.card.name,
    }


async def _entry(request: web.Request, principal: Principal, persona_id: str) -> PersonaEntry:
    try:
        return await runtime(request).personas.entry(persona_id, viewer=principal.user_id)
    except PersonaNotFound:
        raise Problem(
            404,
            "Model not found",
            f"No persona {persona_id!r}; GET /v1/models lists them.",
            code="model_not_found",
        ) from None


async def list_models(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entries = await runtime(request).personas.list(principal.user_id)
    return web.json_response({"object": "list", "data": [_model(e, 0) for e in entries]})


async def get_model(request: web.Request) -> web.Response:
    principal = await current_user(request)
    return web.json_response(
        _model(await _entry(request, principal, request.match_info["model"]), 0)
    )


def _text(message: OpenAIMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    principal = await current_user(request)
    config = settings(request).web
    body = await read_json(request, ChatCompletionBody, config.max_body_bytes)
    entry = await _entry(request, principal, body.model)
    user_messages = [m for m in body.messages if m.role == "user"]
    text = _text(user_messages[-1]).strip() if user_messages else ""
    if not text:
        raise Problem(400, "No user message", "messages must end with a non-empty user message.")
    if len(text) > config.max_message_chars:
        raise Problem(
            413, "Message too long", f"The limit is {config.max_message_chars} characters."
        )
    conversation = conversation_name(request.headers.get(CONVERSATION_HEADER, "openai"))
    check_chat_allowed(request, principal)
    turn = Turn(
        user_id=principal.user_id,
        persona_id=entry.id,
        text=text,
        conversation=PREFIX + conversation,
        platform="web",
        user_name=principal.account.name,
    )
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        reply = await reply_once(request, turn, "openai")
        return web.json_response(_completion(completion_id, created, entry.id, reply))

    def chunk(delta: dict[str, str], finish: str | None) -> bytes:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": entry.id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return sse.event(None, data)

    started: list[bool] = []

    def on_chunk(text: str) -> bytes:
        delta = {"content": text} if started else {"role": "assistant", "content": text}
        started.append(True)
        return chunk(delta, None)

    def done(reply: Reply) -> bytes:
        last = chunk({}, "stop")
        stream_options = (body.model_extra or {}).get("stream_options")
        if isinstance(stream_options, dict) and stream_options.get("include_usage"):
            final = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
            final |= {"model": entry.id, "choices": [], "usage": usage(reply)}
            last += sse.event(None, final)
        return last + sse.event(None, "[DONE]")

    def on_error(problem: Problem) -> bytes:
        error = {"message": problem.detail or problem.title, "type": "api_error", "code": None}
        return sse.event(None, {"error": error}) + sse.event(None, "[DONE]")

    return await stream_reply(
        request,
        turn,
        endpoint="openai",
        chunk_event=on_chunk,
        done_event=lambda reply: done(reply),
        error_event=on_error,
    )


def usage(reply: Reply) -> dict[str, Any]:
    """OpenAI's ``usage`` from the counts the model reported (0 where it reported
    none); ``prompt_tokens_details.cached_tokens``: prompt tokens served from
    Ollama's prompt cache."""
    counts = reply.usage
    prompt = (counts.prompt_tokens if counts else None) or 0
    completion = (counts.completion_tokens if counts else None) or 0
    cached = (counts.cached_tokens if counts else None) or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _completion(completion_id: str, created: int, model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(reply),
        "personae": {
            "user_message_id": reply.user_message_id,
            "reply_message_id": reply.reply_message_id,
        },
    }


ENDPOINTS = [
    Endpoint("GET", "/v1/models", list_models, "Personas as OpenAI models", "openai",
             response=MODELS),
    Endpoint("GET", "/v1/models/{model}", get_model, "One persona as an OpenAI model", "openai",
             response={"type": "object"}, path_params={"model": PERSONA_ID}, errors=(404,)),
    Endpoint("POST", "/v1/chat/completions", chat_completions,
             "OpenAI-compatible chat completion (model = persona id)", "openai",
             body=ChatCompletionBody, response={"type": "object"}, sse=True,
             errors=(400, 404, 413, 429, 502, 503, 504)),
]  # fmt: skip

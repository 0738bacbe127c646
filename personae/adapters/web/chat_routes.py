"""Chat: send a message to a persona (JSON or Server-Sent Events), list and page
conversations, clear one."""

from __future__ import annotations

from aiohttp import web

from personae.adapters.web import sse
from personae.adapters.web.auth import current_user
from personae.adapters.web.helpers import (
    check_chat_allowed,
    conversation_name,
    iso,
    ok,
    query_int,
    runtime,
    settings,
    visible_persona,
)
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import CONVERSATION, INTEGER_ID, PERSONA_ID, Endpoint, Param
from personae.adapters.web.schemas import (
    ChatBody,
    ChatReply,
    ConversationList,
    ConversationOut,
    GreetingBody,
    GreetingOut,
    MessageOut,
    MessagePage,
)
from personae.adapters.web.turns import reply_once, stream_reply
from personae.adapters.web.uploads import read_json
from personae.adapters.web.voice_routes import SpokenReply, wants_speech
from personae.core.errors import CommandError
from personae.core.greetings import greetings
from personae.core.runtime import Reply
from personae.core.types import Turn

PREFIX = "web:"
"""Web conversations are stored as ``web:<name>``."""


def reply_out(reply: Reply) -> ChatReply:
    return ChatReply(
        persona_id=reply.persona_id,
        conversation=reply.conversation.removeprefix(PREFIX),
        text=reply.text,
        user_message_id=reply.user_message_id,
        reply_message_id=reply.reply_message_id,
    )


def wants_events(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


async def chat(request: web.Request) -> web.StreamResponse:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    config = settings(request).web
    body = await read_json(request, ChatBody, config.max_body_bytes)
    if len(body.message) > config.max_message_chars:
        raise Problem(
            413,
            "Message too long",
            f"Messages are limited to {config.max_message_chars} characters.",
        )
    check_chat_allowed(request, principal)
    if body.greeting is not None:
        try:
            await runtime(request).start_conversation(
                entry.scope(principal.user_id),
                PREFIX + body.conversation,
                user_name=principal.account.name,
                greeting=body.greeting,
            )
        except CommandError as error:
            raise Problem(422, "No such greeting", str(error)) from None
    turn = Turn(
        user_id=principal.user_id,
        persona_id=entry.id,
        text=body.message,
        conversation=PREFIX + body.conversation,
        platform="web",
        user_name=principal.account.name,
    )
    if not (body.stream or wants_events(request)):
        return ok(reply_out(await reply_once(request, turn, "chat")))
    fmt = wants_speech(request)
    if fmt is None:
        return await stream_reply(
            request,
            turn,
            endpoint="chat",
            chunk_event=lambda text: sse.event("chunk", {"text": text}),
            done_event=lambda reply: sse.event("done", reply_out(reply).model_dump()),
            error_event=lambda problem: sse.event("error", problem.document()),
        )
    # ?speak=true: `audio` events join the text's as sentences are spoken.
    speech = SpokenReply.start(request, entry, principal.user_id, fmt)
    try:
        response = await stream_reply(
            request,
            turn,
            endpoint="chat",
            chunk_event=lambda text: speech.feed(text) + sse.event("chunk", {"text": text}),
            done_event=lambda reply: (
                sse.event("done", reply_out(reply).model_dump()) + speech.end(reply)
            ),
            error_event=lambda problem: sse.event("error", problem.document()),
        )
        await speech.finish(response)
        return response
    finally:
        await speech.aclose()


async def list_conversations(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    rows = await runtime(request).history.conversations(entry.scope(principal.user_id))
    return ok(
        ConversationList(
            conversations=[
                ConversationOut(
                    name=row["key"].removeprefix(PREFIX),
                    created_at=iso(row["created_at"]),
                    updated_at=iso(row["updated_at"]),
                )
                for row in rows
                if row["key"].startswith(PREFIX)
            ]
        )
    )


async def list_messages(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    name = conversation_name(request.match_info["conversation"])
    before = query_int(request, "before", None, 1, 2**53)
    limit = query_int(request, "limit", 50, 1, 200) or 50
    messages = await runtime(request).history.page(
        entry.scope(principal.user_id), PREFIX + name, before=before, limit=limit
    )
    return ok(
        MessagePage(
            messages=[
                MessageOut(id=m.id, role=m.role, content=m.content, created_at=iso(m.created_at))
                for m in messages
            ],
            next_before=messages[0].id if len(messages) == limit else None,
        )
    )


async def start_conversation(request: web.Request) -> web.Response:
    """Open a conversation with one of the persona's greetings, stored as its first
    message; 409 once the conversation has begun, 204 when the persona has none."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    name = conversation_name(request.match_info["conversation"])
    body = await read_json(request, GreetingBody, settings(request).web.max_body_bytes)
    try:
        started = await runtime(request).start_conversation(
            entry.scope(principal.user_id),
            PREFIX + name,
            user_name=principal.account.name,
            greeting=body.greeting,
            replace=body.replace,
        )
    except CommandError as error:
        raise Problem(422, "No such greeting", str(error)) from None
    if started is None:
        if not any(text.strip() for text in greetings(entry.card)):
            return web.Response(status=204)
        raise Problem(409, "Conversation already begun", "Clear it to start with a greeting.")
    number, m = started
    return ok(
        GreetingOut(
            greeting=number,
            greetings=len(greetings(entry.card)),
            message=MessageOut(
                id=m.id, role=m.role, content=m.content, created_at=iso(m.created_at)
            ),
        )
    )


async def clear_conversation(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    name = conversation_name(request.match_info["conversation"])
    await runtime(request).clear_conversation(entry.scope(principal.user_id), PREFIX + name)
    return web.Response(status=204)


PID = {"persona_id": PERSONA_ID}
CONV = {"persona_id": PERSONA_ID, "conversation": CONVERSATION}
ENDPOINTS = [
    Endpoint("POST", "/api/personas/{persona_id}/chat", chat, "Talk to a persona", "chat",
             body=ChatBody, response=ChatReply, path_params=PID, sse=True,
             errors=(404, 413, 429, 502, 503, 504),
             query=(Param("speak", {"type": "boolean"}, "With streaming: also send the reply "
                          "as speech, an `audio` event per sentence."),
                    Param("audio_format", {"type": "string", "enum": ["ogg", "wav"]},
                          "The format of `audio` events (default ogg: Ogg/Opus).")),
             description="With `stream: true` (or `Accept: text/event-stream`) the reply "
             "comes as Server-Sent Events: `chunk` events `{text}`, then one `done` event "
             "with the message ids, or an `error` event with a problem document. With "
             "`?speak=true`, `audio` events `{index, text, content_type, duration, data}` "
             "(base64) come as sentences are spoken, and `audio_end` `{complete, note, "
             "reply_message_id}` ends the stream after `done`."),
    Endpoint("GET", "/api/personas/{persona_id}/conversations", list_conversations,
             "The caller's conversations with a persona", "chat", response=ConversationList,
             path_params=PID, errors=(404,)),
    Endpoint("GET", "/api/personas/{persona_id}/conversations/{conversation}/messages",
             list_messages, "A page of a conversation's messages (oldest first)", "chat",
             response=MessagePage, path_params=CONV, errors=(404,),
             query=(Param("before", INTEGER_ID, "Only messages older than this id."),
                    Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}))),
    Endpoint("POST", "/api/personas/{persona_id}/conversations/{conversation}/greeting",
             start_conversation, "Start a conversation with a greeting", "chat",
             body=GreetingBody, response=GreetingOut, path_params=CONV,
             errors=(404, 409, 422),
             description="Stores the greeting (macros filled in) as the conversation's first "
             "message, so the model sees it too. Answers 204 when the persona has no "
             "greeting. With `replace`, swaps a greeting nobody has answered yet."),
    Endpoint("DELETE", "/api/personas/{persona_id}/conversations/{conversation}",
             clear_conversation, "Clear a conversation", "chat", status=204, path_params=CONV,
             errors=(404,)),
]  # fmt: skip

"""The caller's event stream (``GET /api/events``) and pending follow-ups, and
the delivery of proactive messages for platform "web"."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from personae.adapters.web import sse
from personae.adapters.web.auth import current_user
from personae.adapters.web.events import EventHub, EventStream
from personae.adapters.web.helpers import int_param, iso, ok, runtime
from personae.adapters.web.keys import EVENTS, METRICS
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import INTEGER_ID, Endpoint
from personae.adapters.web.schemas import FollowUpList, FollowUpOut
from personae.core.proactive import Handler as ProactiveHandler
from personae.core.proactive import ProactiveMessage
from personae.storage.followups import FollowUpRecord

PLATFORM = "web"
KEEPALIVE_SECONDS = 15.0


def proactive_handler(hub: EventHub) -> ProactiveHandler:
    """The ProactiveHub handler for platform "web": push the message to the
    user's open event streams. Returning True tells the sender (the curiosity
    plugin's scheduler) it was delivered; the sender records that, with its clock."""

    async def deliver(message: ProactiveMessage) -> bool:
        if message.platform != PLATFORM:
            return False
        data = {
            "id": message.id,
            "kind": message.kind,
            "persona_id": message.persona_id,
            "conversation": message.conversation.removeprefix("web:"),
            "text": message.text,
        }
        return await hub.publish(message.scope.user_id, message.kind, data) > 0

    return deliver


async def events(request: web.Request) -> web.StreamResponse:
    principal = await current_user(request)
    hub = request.config_dict[EVENTS]
    if hub.closing:
        raise Problem(503, "Shutting down", "The server is shutting down.")
    response = await sse.open_stream(request)
    stream = EventStream(principal.user_id, response)
    gauge = request.config_dict[METRICS].event_streams
    gauge.inc()
    try:
        with hub.register(stream):
            if not await stream.send(sse.event("ready", {"user_id": principal.user_id})):
                return response
            while not stream.closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.closed.wait(), KEEPALIVE_SECONDS)
                    break
                if not await stream.send(sse.comment("keep-alive")):
                    break
    finally:
        gauge.dec()
    return response


def _follow_up_out(record: FollowUpRecord, names: dict[str, str]) -> FollowUpOut:
    return FollowUpOut(
        id=record.id,
        persona_id=names.get(record.persona_id, record.persona_id),
        conversation=record.conversation.removeprefix("web:"),
        question=record.question,
        topic=record.topic,
        due_at=iso(record.due_at) or "",
    )


async def list_follow_ups(request: web.Request) -> web.Response:
    principal = await current_user(request)
    rt = runtime(request)
    records = await rt.followups.pending_for_user(principal.user_id, platform=PLATFORM)
    names = {e.key: e.id for e in await rt.personas.list(principal.user_id)}  # key -> id
    return ok(FollowUpList(follow_ups=[_follow_up_out(r, names) for r in records]))


async def ack_follow_up(request: web.Request) -> web.Response:
    """Mark one of the caller's pending follow-ups as sent (the UI showed it)."""
    principal = await current_user(request)
    follow_up_id = int_param(request, "follow_up_id")
    rt = runtime(request)
    pending = await rt.followups.pending_for_user(principal.user_id, platform=PLATFORM)
    record = next((r for r in pending if r.id == follow_up_id), None)
    if record is None or not await rt.followups.mark(record.scope, record.id, "sent"):
        raise Problem(404, "Follow-up not found", f"You have no pending follow-up {follow_up_id}.")
    return web.Response(status=204)


ENDPOINTS = [
    Endpoint("GET", "/api/events", events, "The caller's event stream (SSE)", "events",
             response_content="text/event-stream", sse=True,
             description="Stays open. Events: `ready`, `follow_up` {id, persona_id, "
             "conversation, text}, `shutdown`; comment lines keep it alive."),
    Endpoint("GET", "/api/followups", list_follow_ups, "The caller's pending follow-ups",
             "events", response=FollowUpList),
    Endpoint("POST", "/api/followups/{follow_up_id}/ack", ack_follow_up,
             "Mark a follow-up as shown", "events", status=204,
             path_params={"follow_up_id": INTEGER_ID}, errors=(404,)),
]  # fmt: skip

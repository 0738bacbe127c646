"""Server-Sent Events: opening a stream and formatting events."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the headers of an event stream."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    return response


def event(name: str | None, data: Any, *, event_id: str | None = None) -> bytes:
    """One event: ``data`` is JSON on one line (a str is sent as it is, line by line)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if name is not None:
        lines.append(f"event: {name}")
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment line, which clients ignore (keeps proxies from timing out)."""
    return f": {text}\n\n".encode()

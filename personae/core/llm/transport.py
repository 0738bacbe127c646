"""The HTTP transport under ``ollama.AsyncClient``, and what its failures mean.

The client's requests go through aiohttp's connection pool (by way of
httpx-aiohttp, an httpx transport by one of httpx's maintainers) rather than
httpcore's. httpcore 1.0.9 counts *all* connections against
``max_keepalive_connections``, so beyond 20 concurrent turns each turn opened a
connection to Ollama and dropped it afterwards; raising that limit keeps the
connections but makes each request scan the pool quadratically (a burst of 50
turns waited 300-500 ms for it). aiohttp keeps and reuses its connections in
constant time, and spends about half the CPU per request.

httpx-aiohttp maps aiohttp's errors onto httpx's coarsely (a read timeout and a
server that hung up both arrive as ``httpx.ConnectTimeout``), so
:func:`transport_failure` looks at the aiohttp error underneath.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

Failure = Literal["connect", "timeout", "dropped"]


def transport(max_connections: int) -> AiohttpTransport:
    """A transport keeping up to ``max_connections`` connections open for reuse."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return AiohttpTransport(limits=limits)


def transport_failure(exc: BaseException) -> Failure | None:
    """What went wrong on the wire, or None when ``exc`` is not a transport failure:

    - ``"connect"``: the server could not be reached at all (safe to retry);
    - ``"timeout"``: it was reached but sent nothing in time;
    - ``"dropped"``: the connection broke, or the server hung up without answering.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return "connect"
        if isinstance(cause, aiohttp.ServerTimeoutError):
            return "timeout"
        return "dropped"
    # ``ollama.AsyncClient`` turns ``httpx.ConnectError`` into a bare builtin
    # ``ConnectionError`` for plain requests (and lets it through for streams).
    if type(exc) is ConnectionError or isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError
    ):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TransportError):
        return "dropped"
    return None


def is_connect_error(exc: BaseException) -> bool:
    """True when ``exc`` means the server could not be connected to at all."""
    return transport_failure(exc) == "connect"

"""Running a turn for an HTTP request: as one JSON answer, or streamed as
Server-Sent Events, with metrics, error events and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import ClientConnectionResetError, web

from personae.adapters.web import sse
from personae.adapters.web.helpers import runtime
from personae.adapters.web.keys import METRICS, STATE
from personae.adapters.web.problems import Problem, problem_from_error
from personae.core.errors import LLMError, PersonaeError
from personae.core.runtime import Reply
from personae.core.types import Turn

SHUTDOWN = Problem(503, "Shutting down", "The server shut down before the reply was complete.")


def _count_error(request: web.Request, endpoint: str, error: BaseException) -> None:
    metrics = request.config_dict[METRICS]
    metrics.turns.labels(endpoint, "failed").inc()
    if isinstance(error, LLMError):
        metrics.llm_errors.labels(type(error).__name__).inc()


async def reply_once(request: web.Request, turn: Turn, endpoint: str) -> Reply:
    """Run the turn to completion; personae's errors become problem documents."""
    try:
        reply = await runtime(request).reply(turn)
    except PersonaeError as error:
        _count_error(request, endpoint, error)
        raise problem_from_error(error) from None
    request.config_dict[METRICS].turns.labels(endpoint, "completed").inc()
    return reply


async def stream_reply(
    request: web.Request,
    turn: Turn,
    *,
    endpoint: str,
    chunk_event: Callable[[str], bytes],
    done_event: Callable[[Reply], bytes],
    error_event: Callable[[Problem], bytes],
) -> web.StreamResponse:
    """Stream the turn's reply. The response starts with the first chunk, so a
    failure before it is an ordinary problem answer; a failure after it is an
    error event. A client that goes away abandons the turn (nothing is stored);
    a shutdown that cannot wait for the reply ends it with an error event."""
    state = request.config_dict[STATE]
    metrics = request.config_dict[METRICS]
    stream = runtime(request).stream(turn)
    response: web.StreamResponse | None = None
    task = asyncio.current_task()
    if task is not None:
        state.streams.add(task)
    state.active_streams += 1
    metrics.active_streams.inc()
    try:
        async for chunk in stream:
            if response is None:
                response = await sse.open_stream(request)
            await response.write(chunk_event(chunk))
        if response is None:
            response = await sse.open_stream(request)
        assert stream.reply is not None
        await response.write(done_event(stream.reply))
        metrics.turns.labels(endpoint, "completed").inc()
        return response
    except PersonaeError as error:
        _count_error(request, endpoint, error)
        problem = problem_from_error(error)
        if response is None:
            raise problem from None
        with contextlib.suppress(ConnectionError, ClientConnectionResetError):
            await response.write(error_event(problem))
        return response
    except (ConnectionError, ClientConnectionResetError):
        metrics.turns.labels(endpoint, "abandoned").inc()
        return response or web.Response(status=204)
    except asyncio.CancelledError:
        metrics.turns.labels(endpoint, "abandoned").inc()
        if response is None or state.accepting or task is None:
            raise
        # Cut off by a shutdown that could not wait any longer: say so, end the
        # stream properly, and let the handler finish.
        task.uncancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(response.write(error_event(SHUTDOWN)), 1.0)
            await asyncio.wait_for(response.write_eof(), 1.0)
        return response
    finally:
        await stream.aclose()
        if task is not None:
            state.streams.discard(task)
        state.active_streams -= 1
        metrics.active_streams.dec()

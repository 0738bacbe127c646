"""OllamaBackend through the real ``ollama`` client against FakeOllama."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from httpx_aiohttp.transport import map_aiohttp_exceptions

from personae.core.errors import LLMResponseError, LLMTimeout, LLMUnavailable, ModelNotFound
from personae.core.llm.base import ChatRequest, LLMBackend
from personae.core.llm.ollama import OllamaBackend
from personae.core.llm.transport import is_connect_error, transport_failure
from personae.core.settings import OllamaSettings
from personae.core.types import ChatMessage
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama, fake_embedding


def fast_settings(host: str, **overrides: Any) -> OllamaSettings:
    """Settings with tiny timeouts and backoff so failure tests stay fast."""
    values: dict[str, Any] = {
        "host": host,
        "read_timeout": 0.5,
        "connect_timeout": 0.5,
        "retries": 2,
        "retry_backoff": 0.01,
        "num_ctx": 4096,  # these tests are not about the window: no /api/show
    }
    return OllamaSettings(**(values | overrides))


def ask(text: str = "hello there", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", text)], **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server


@pytest.fixture
async def backend(fake: FakeOllama) -> AsyncIterator[OllamaBackend]:
    async with OllamaBackend(fast_settings(fake.url)) as llm:
        yield llm


async def collect(backend: OllamaBackend, request: ChatRequest, into: list[str]) -> None:
    async for chunk in backend.stream_chat(request):
        into.append(chunk)


# -- happy paths ---------------------------------------------------------------------


def test_backend_satisfies_the_llm_backend_protocol() -> None:
    llm = OllamaBackend(fast_settings("http://127.0.0.1:11434", model="qwen2.5"))
    assert isinstance(llm, LLMBackend)
    assert llm.name == "ollama"
    assert llm.default_model == "qwen2.5"


async def test_stream_chat_yields_chunks_in_order(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.reply_with(["Once ", "upon ", "", "a ", "time."])
    chunks = [chunk async for chunk in backend.stream_chat(ask())]
    assert chunks == ["Once ", "upon ", "a ", "time."]  # the empty chunk is skipped


async def test_default_fake_reply_echoes_the_last_user_message(backend: OllamaBackend) -> None:
    chunks = [chunk async for chunk in backend.stream_chat(ask("how are you"))]
    assert len(chunks) > 1
    assert "".join(chunks) == "You said: how are you"


async def test_options_keep_alive_and_messages_reach_the_server(fake: FakeOllama) -> None:
    config = fast_settings(
        fake.url, num_ctx=None, options={"num_ctx": 8192, "temperature": 0.8}, keep_alive="10m"
    )
    request = ChatRequest(
        messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")],
        options={"temperature": 0.1},
    )
    async with OllamaBackend(config) as llm:
        assert [c async for c in llm.stream_chat(request)]
    (sent,) = fake.requests_to("/api/chat")
    assert sent.json["model"] == "llama3.2"
    assert sent.json["stream"] is True
    assert sent.json["options"] == {"num_ctx": 8192, "temperature": 0.1, "num_predict": 512}
    assert sent.json["keep_alive"] == "10m"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert "format" not in sent.json


async def test_chat_with_json_schema_format_returns_the_raw_content(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    schema = {"type": "object", "properties": {"mood": {"type": "string"}}}
    seen: list[FakeChatRequest] = []

    def responder(request: FakeChatRequest) -> str:
        seen.append(request)
        return '{"mood": "happy"}'

    fake.reply_with(responder)
    assert await backend.chat(ask(format=schema, model="llama3.2:latest")) == '{"mood": "happy"}'
    assert seen[0].format == schema
    assert seen[0].stream is False
    assert seen[0].model == "llama3.2:latest"
    assert fake.requests_to("/api/chat")[0].json["format"] == schema


async def test_chat_passes_json_format_string(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.enqueue("{}")
    assert await backend.chat(ask(format="json")) == "{}"
    assert fake.requests_to("/api/chat")[0].json["format"] == "json"
    assert await backend.chat(ask("again")) == "You said: again"  # the queue was one-shot


async def test_embed_returns_one_deterministic_vector_per_text(fake: FakeOllama) -> None:
    async with OllamaBackend(fast_settings(fake.url, embed_model="nomic-embed-text")) as llm:
        vectors = await llm.embed(["red apple", "green apple", "red apple"])
        assert await llm.embed([]) == []
    assert len(vectors) == 3
    assert vectors[0] == vectors[2] == pytest.approx(fake_embedding("red apple"))
    assert vectors[0] != vectors[1]
    assert len(vectors[0]) == fake.embed_dim
    assert fake.requests_to("/api/embed")[0].json["model"] == "nomic-embed-text"


async def test_embed_defaults_to_the_chat_model_and_accepts_an_override(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    await backend.embed(["x"])
    await backend.embed(["x"], model="nomic-embed-text:latest")
    models = [r.json["model"] for r in fake.requests_to("/api/embed")]
    assert models == ["llama3.2", "nomic-embed-text:latest"]


async def test_list_models_reports_installed_models(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    models = await backend.list_models()
    assert [m.name for m in models] == ["llama3.2:latest", "nomic-embed-text:latest"]
    assert models[0].size and models[0].size > 0
    assert models[0].details["family"] == "llama"


async def test_has_model_treats_missing_tag_as_latest(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    assert await backend.has_model("llama3.2")
    assert await backend.has_model("llama3.2:latest")
    assert not await backend.has_model("llama3.2:1b")
    assert not await backend.has_model("mistral")


async def test_pull_streams_progress_then_the_model_is_installed(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    progress = [p async for p in backend.pull("qwen2.5")]
    assert progress[0]["status"] == "pulling manifest"
    assert progress[-1]["status"] == "success"
    downloads = [p for p in progress if p["total"]]
    assert [p["completed"] for p in downloads] == sorted(p["completed"] for p in downloads)
    assert downloads[-1]["completed"] == downloads[-1]["total"]
    assert await backend.has_model("qwen2.5")


async def test_pull_of_an_unknown_name_raises_response_error(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.pullable = []
    with pytest.raises(LLMResponseError, match="could not pull 'nope'"):
        [p async for p in backend.pull("nope")]


async def test_one_client_per_event_loop(backend: OllamaBackend) -> None:
    first = backend.client()
    assert backend.client() is first

    async def in_other_loop() -> tuple[int, int]:
        client = backend.client()
        same = backend.client()
        await client.close()
        return id(client), id(same)

    other, other_again = await asyncio.to_thread(asyncio.run, in_other_loop())
    assert other == other_again != id(first)
    assert backend.client() is first


# -- failures ------------------------------------------------------------------------


async def test_model_not_pulled_raises_model_not_found_naming_ollama_pull(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    with pytest.raises(ModelNotFound, match="ollama pull mistral") as streamed:
        [c async for c in backend.stream_chat(ask(model="mistral"))]
    assert streamed.value.model == "mistral"
    with pytest.raises(ModelNotFound, match="ollama pull mistral"):
        await backend.chat(ask(model="mistral"))
    with pytest.raises(ModelNotFound, match="ollama pull all-minilm") as embedded:
        await backend.embed(["x"], model="all-minilm")
    assert embedded.value.model == "all-minilm"
    assert len(fake.requests) == 3  # a 404 is never retried


async def test_server_down_raises_llm_unavailable_after_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0
    send = httpx.AsyncClient.send

    async def counting_send(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await send(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting_send)
    host = f"http://127.0.0.1:{free_port()}"
    async with OllamaBackend(fast_settings(host, retries=2)) as llm:
        with pytest.raises(LLMUnavailable, match="ollama serve") as chatted:
            await llm.chat(ask())
        assert attempts == 3
        assert host in str(chatted.value)
        assert "PERSONAE_OLLAMA__HOST" in str(chatted.value)
        with pytest.raises(LLMUnavailable):
            [c async for c in llm.stream_chat(ask())]
        assert attempts == 6
        with pytest.raises(LLMUnavailable):
            await llm.list_models()


async def test_many_concurrent_streams_keep_and_reuse_their_connections(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    # httpx's own pool (httpcore 1.0.9) dropped a connection after each reply once
    # more than 20 were open, so every turn beyond 20 at once opened a new one.
    fake.reply_with(["word "] * 10)
    fake.chunk_delay = 0.005  # each reply takes 50 ms; all 30 overlap

    async def conversation(start: float) -> list[str]:
        await asyncio.sleep(start)  # conversations do not start in step
        return ["".join([c async for c in backend.stream_chat(ask())]) for _ in range(4)]

    replies = await asyncio.gather(*(conversation(n / 1000) for n in range(30)))
    assert replies == [["word " * 10] * 4] * 30
    connections = {request.peer for request in fake.requests_to("/api/chat")}
    assert None not in connections
    assert len(connections) <= 30


async def test_each_retry_is_logged_with_its_attempt_and_growing_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.WARNING, logger="personae.core.llm.ollama")
    async with OllamaBackend(fast_settings(host, retries=3, retry_backoff=0.01)) as llm:
        with pytest.raises(LLMUnavailable):
            await llm.chat(ask())
    retries = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert retries == [
        f"Ollama at {host} is not reachable (attempt 1 of 4); retrying in 0.01s",
        f"Ollama at {host} is not reachable (attempt 2 of 4); retrying in 0.02s",
        f"Ollama at {host} is not reachable (attempt 3 of 4); retrying in 0.04s",
    ]


async def test_connection_is_retried_until_the_server_comes_up() -> None:
    async with FakeOllama(port=free_port()) as fake:
        config = fast_settings(fake.url, retries=6, retry_backoff=0.05)
        async with OllamaBackend(config) as llm:
            await fake.stop()
            reply = asyncio.create_task(llm.chat(ask("still there?")))
            await asyncio.sleep(0.1)
            await fake.start()  # same port again
            assert await reply == "You said: still there?"
    assert len(fake.requests_to("/api/chat")) == 1


@pytest.mark.parametrize("host", ["ftp://127.0.0.1:1", "http://[::1"])
async def test_unusable_host_raises_llm_unavailable_naming_the_setting(host: str) -> None:
    async with OllamaBackend(fast_settings(host)) as llm:
        with pytest.raises(LLMUnavailable, match="PERSONAE_OLLAMA__HOST"):
            await llm.chat(ask())


async def test_empty_model_setting_raises_model_not_found_naming_the_setting(
    fake: FakeOllama,
) -> None:
    async with OllamaBackend(fast_settings(fake.url, model="")) as llm:
        with pytest.raises(ModelNotFound, match=r"ollama\.model"):
            await llm.chat(ask())
    assert fake.requests == []


def test_connect_timeouts_and_refusals_count_as_connection_errors() -> None:
    assert is_connect_error(httpx.ConnectTimeout("slow"))
    assert is_connect_error(httpx.ConnectError("refused"))
    assert is_connect_error(ConnectionError("ollama client wrapper"))
    assert not is_connect_error(httpx.ReadTimeout("slow"))
    assert not is_connect_error(httpx.RemoteProtocolError("dropped"))
    assert not is_connect_error(ConnectionResetError())


def mapped(error: Exception) -> httpx.TransportError:
    """``error`` as httpx-aiohttp hands it on: a coarse httpx error caused by it."""
    try:
        with map_aiohttp_exceptions():
            raise error
    except httpx.TransportError as exc:
        return exc
    raise AssertionError("not mapped")


def test_failures_are_judged_by_the_aiohttp_error_underneath() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused"),
    )
    # httpx-aiohttp reports all of these as httpx.ConnectTimeout.
    assert transport_failure(mapped(refused)) == "connect"
    assert transport_failure(mapped(aiohttp.ConnectionTimeoutError())) == "connect"
    assert transport_failure(mapped(aiohttp.SocketTimeoutError())) == "timeout"
    assert transport_failure(mapped(aiohttp.ServerDisconnectedError())) == "dropped"
    assert transport_failure(mapped(aiohttp.ClientPayloadError("cut"))) == "dropped"
    assert transport_failure(aiohttp.ClientResponseError(None, (), status=400)) == "dropped"  # type: ignore[arg-type]
    assert transport_failure(ValueError("not the wire")) is None


async def test_http_500_raises_response_error_without_retry(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.fail_next(500, "llama runner process has terminated")
    with pytest.raises(LLMResponseError, match="llama runner process has terminated"):
        await backend.chat(ask())
    assert len(fake.requests_to("/api/chat")) == 1
    fake.fail_next(400, "invalid options", path="/api/chat")
    with pytest.raises(LLMResponseError, match="invalid options"):
        [c async for c in backend.stream_chat(ask())]
    assert len(fake.requests_to("/api/chat")) == 2


async def test_slow_server_raises_llm_timeout_naming_the_setting(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.delay = 1.0
    with pytest.raises(LLMTimeout, match=r"ollama\.read_timeout"):
        await backend.chat(ask())
    with pytest.raises(LLMTimeout, match=r"ollama\.read_timeout"):
        [c async for c in backend.stream_chat(ask())]
    assert len(fake.requests_to("/api/chat")) == 2  # timeouts are not retried


async def test_stalled_stream_raises_llm_timeout(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.reply_with(["one ", "two"])
    fake.chunk_delay = 1.0
    with pytest.raises(LLMTimeout, match=r"ollama\.read_timeout"):
        [c async for c in backend.stream_chat(ask())]


async def test_connection_dropped_mid_stream_raises_response_error_after_partial_reply(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.reply_with(["a ", "b ", "c ", "d"])
    fake.drop_after_chunks = 2
    received: list[str] = []
    with pytest.raises(LLMResponseError, match="stopped in the middle of the reply"):
        await collect(backend, ask(), received)
    assert received == ["a ", "b "]
    assert len(fake.requests_to("/api/chat")) == 1  # never retried once chunks were sent


async def test_connection_dropped_before_a_non_streamed_answer_raises_response_error(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.drop_after_chunks = 0
    with pytest.raises(LLMResponseError, match="dropped the connection"):
        await backend.chat(ask())
    assert len(fake.requests_to("/api/chat")) == 1


async def test_error_line_mid_stream_raises_response_error_with_ollamas_message(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.reply_with(["a ", "b ", "c"])
    fake.error_mid_stream_after = 1
    fake.mid_stream_error = "CUDA error: out of memory"
    received: list[str] = []
    with pytest.raises(LLMResponseError, match="middle of the reply: CUDA error: out of memory"):
        await collect(backend, ask(), received)
    assert received == ["a "]


async def test_garbage_raises_response_error(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.garbage_next()
    with pytest.raises(LLMResponseError, match="malformed"):
        [c async for c in backend.stream_chat(ask())]
    fake.garbage_next()
    with pytest.raises(LLMResponseError, match="malformed"):
        await backend.chat(ask())
    assert await backend.chat(ask("ok")) == "You said: ok"  # garbage was one-shot


async def test_fake_speaks_the_rest_of_ollamas_protocol(fake: FakeOllama) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        assert (await http.get("/")).text == "Ollama is running"
        assert "version" in (await http.get("/api/version")).json()
        shown = await http.post("/api/show", json={"model": "nomic-embed-text"})
        assert shown.json()["capabilities"] == ["embedding"]
        generated = await http.post(
            "/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False}
        )
        assert generated.json()["response"] == "You said: hi"
        missing = await http.post("/api/chat", json={"model": "nope", "messages": []})
        assert missing.status_code == 404
        assert missing.json() == {"error": 'model "nope" not found, try pulling it first'}


async def test_the_fake_ollama_stops_by_itself_after_its_lifetime() -> None:
    # Long enough for the first request to be answered on a loaded machine (0.05 s
    # once was not, in CI), short enough for the test.
    fake = await FakeOllama(lifetime=1.0).start()
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{fake.url}/api/version")).status_code == 200
        for _ in range(200):  # wait for the deadline to pass and the server to close
            await asyncio.sleep(0.05)
            try:
                await client.get(f"{fake.url}/api/version")
            except httpx.TransportError:
                break
        else:
            raise AssertionError("the fake Ollama was still answering")
    await fake.stop()


@pytest.mark.parametrize(
    "request_",
    [
        ask(),
        ChatRequest(
            messages=[
                ChatMessage("system", "You are Sage."),
                ChatMessage("user", "hello"),
                ChatMessage("assistant", ""),  # an empty field is left out, as the client does
                ChatMessage("user", "and you?"),
            ],
            options={"temperature": 0.2, "stop": ["\n\n"], "num_ctx": 8192},
        ),
        ask(format={"type": "object", "properties": {"x": {"type": "integer"}}}),
        ask(format="json"),
    ],
)
async def test_a_streamed_chat_sends_the_body_the_client_s_chat_would(
    fake: FakeOllama, request_: ChatRequest
) -> None:
    """The streamed reply's request body is built without the client's per-message
    validation; it must be the very body ``AsyncClient.chat`` sends."""
    async with OllamaBackend(fast_settings(fake.url, keep_alive="10m")) as llm:
        await collect(llm, request_, [])
        ours = fake.requests_to("/api/chat")[-1].json
        kwargs = await llm._chat_kwargs(request_, stream=True)
        async for _ in await llm.client().chat(**kwargs):
            pass
        theirs = fake.requests_to("/api/chat")[-1].json
    assert ours == theirs
    assert ours["messages"][0]["content"] == request_.messages[0].content


async def test_a_client_without_the_request_method_chats_through_its_chat(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ollama

    from personae.core.llm import ollama as backend_module

    chats: list[dict[str, Any]] = []

    class OlderClient(ollama.AsyncClient):
        """A client whose internal request method looks unlike today's."""

        async def _request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return await super()._request(*args, **kwargs)

        async def chat(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            chats.append(kwargs)
            return await super().chat(*args, **kwargs)

    monkeypatch.setattr(backend_module, "AsyncClient", OlderClient)
    async with OllamaBackend(fast_settings(fake.url)) as llm:
        chunks: list[str] = []
        await collect(llm, ask(), chunks)
    assert "".join(chunks)
    assert len(chats) == 1
    sent = fake.requests_to("/api/chat")[-1].json
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]

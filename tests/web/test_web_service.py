"""The service around the API: health, readiness, metrics, the OpenAPI
document, problem details for every error, headers, the placeholder page."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from conftest import Caller

from personae.adapters.web.app import endpoints
from personae.adapters.web.health import STATIC
from personae.testing.fake_ollama import FakeOllama


async def test_healthz_is_ok(anonymous: Caller) -> None:
    response = await anonymous.get("/healthz")

    assert response.status == 200 and response.data == {"status": "ok"}


async def test_readyz_checks_the_database_and_ollama(
    anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    ready = await anonymous.get("/readyz")
    await fake_ollama.stop()
    not_ready = await anonymous.get("/readyz")

    assert ready.status == 200 and ready.data["checks"]["database"] == "ok"
    assert not_ready.status == 503
    assert not_ready.content_type == "application/problem+json"
    assert not_ready.data["checks"]["database"] == "ok"
    assert not_ready.data["checks"]["llm"] != "ok"


async def test_readyz_names_a_refused_connection_without_showing_where(
    anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    await fake_ollama.stop()

    not_ready = await anonymous.get("/readyz")

    assert not_ready.status == 503
    assert not_ready.data["checks"]["llm"] == "connection refused"
    assert not_ready.data["detail"] == "llm: connection refused"
    assert "details" not in not_ready.data
    assert fake_ollama.url not in not_ready.body.decode()
    assert "Error" not in not_ready.body.decode()  # no exception class names


async def test_readyz_says_when_the_model_is_not_pulled(
    anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models.clear()

    not_ready = await anonymous.get("/readyz")

    assert not_ready.status == 503
    assert not_ready.data["checks"]["llm"] == "model not pulled"


@pytest.mark.parametrize("web_overrides", [{"ready_timeout_seconds": 0.2}])
async def test_readyz_says_when_ollama_does_not_answer_in_time(
    anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.delay = 2.0

    not_ready = await anonymous.get("/readyz")

    assert not_ready.status == 503
    assert not_ready.data["checks"]["llm"] == "no answer within 0.2 s"


async def test_readyz_shows_an_administrator_the_details(
    alice: Caller, bob: Caller, fake_ollama: FakeOllama
) -> None:
    await fake_ollama.stop()

    for_admin = await alice.get("/readyz")
    for_user = await bob.get("/readyz")

    assert for_admin.data["details"]["llm"].startswith(f"{fake_ollama.url}: ")
    assert "details" not in for_user.data and fake_ollama.url not in for_user.body.decode()


async def test_metrics_count_requests_turns_and_llm_errors(
    alice: Caller, anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    await alice.post("/api/personas/sage/chat", json={"message": "hi"})
    fake_ollama.fail_next(500, "boom", path="/api/chat")
    await alice.post("/api/personas/sage/chat", json={"message": "hi"})

    metrics = (await anonymous.get("/metrics")).body.decode()

    assert 'personae_turns_total{endpoint="chat",outcome="completed"} 1.0' in metrics
    assert 'personae_turns_total{endpoint="chat",outcome="failed"} 1.0' in metrics
    assert 'personae_llm_errors_total{kind="LLMResponseError"} 1.0' in metrics
    assert 'route="/api/personas/{persona_id}/chat",status="200"' in metrics
    assert "personae_http_request_duration_seconds_bucket" in metrics


async def test_the_openapi_document_matches_the_routes(
    server: TestServer, anonymous: Caller
) -> None:
    document = (await anonymous.get("/openapi.json")).data
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }

    assert document["openapi"] == "3.1.0"
    static = {("get", "/"), ("get", "/static"), ("get", "/static/{filename}")}
    assert routes - static == documented
    assert len(
        {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    ) == (len(documented))
    assert len(endpoints()) == len(documented) - 1  # + /openapi.json itself


async def test_every_error_is_a_problem_document_without_a_traceback(
    alice: Caller, anonymous: Caller
) -> None:
    responses = [
        await anonymous.get("/no/such/path"),
        await anonymous.call("PUT", "/healthz"),
        await anonymous.get("/api/personas"),
        await alice.get("/api/personas/nobody"),
        await alice.call("DELETE", "/api/tokens/not-a-number"),
        await alice.call("PATCH", "/api/personas/sage/memory/99999999999999999999", json={}),
    ]

    assert [r.status for r in responses] == [404, 405, 401, 404, 404, 404]
    for response in responses:
        assert response.content_type == "application/problem+json"
        assert isinstance(response.data["title"], str) and response.data["title"]
        assert b"Traceback" not in response.body
    assert "Allow" in responses[1].headers


async def test_responses_carry_security_headers(anonymous: Caller) -> None:
    response = await anonymous.get("/healthz")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_the_root_page_says_the_ui_is_not_built_yet(anonymous: Caller) -> None:
    if (STATIC / "index.html").is_file():
        pytest.skip("the web UI is built; / serves it")
    page = await anonymous.get("/")

    assert page.status == 200 and page.content_type == "text/html"
    assert b"not built yet" in page.body
    assert "Content-Security-Policy" in page.headers

"""Importing a card over HTTP keeps the limits of a created persona: an
oversized field or a PNG declaring too many pixels is a 422 problem that names
the reason, and nothing is stored."""

from __future__ import annotations

import json

from conftest import Caller

from personae.core.runtime import Runtime
from tests.test_card_limits import card, huge_png


async def test_a_card_with_a_7_mb_description_is_refused(alice: Caller, runtime: Runtime) -> None:
    body = json.dumps(card(description="x" * 7_000_000)).encode()

    answer = await alice.post("/api/personas/import", data=body)

    assert answer.status == 422
    assert answer.data["title"] == "Invalid character card"
    assert "'description' is 7,000,000 characters" in answer.data["detail"]
    assert "big" not in {e.id for e in await runtime.personas.list(alice.id)}


async def test_a_card_png_declaring_13000x13000_pixels_is_refused(
    alice: Caller, runtime: Runtime
) -> None:
    answer = await alice.post("/api/personas/import", data=huge_png(13000, 13000, card()))

    assert answer.status == 422
    assert "13000x13000 pixels" in answer.data["detail"]
    assert "big" not in {e.id for e in await runtime.personas.list(alice.id)}


async def test_an_avatar_declaring_too_many_pixels_is_refused(alice: Caller) -> None:
    answer = await alice.call("PUT", "/api/personas/sage/avatar", data=huge_png(9000, 9000, {}))

    assert answer.status == 422
    assert answer.data["title"] == "Image too large"
    assert "9000x9000 pixels" in answer.data["detail"]

"""Importing a card over HTTP keeps the limits of a created persona: an
oversized field or a PNG declaring too many pixels is a 422 problem that names
the reason, and nothing is stored."""

from __future__ import annotations

import json
import stat

from conftest import Caller, png_bytes

from personae.core.runtime import Runtime
from personae.core.settings import Settings
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


async def test_an_uploaded_avatar_is_a_private_file(alice: Caller, settings: Settings) -> None:
    answer = await alice.call("PUT", "/api/personas/sage/avatar", data=png_bytes())

    assert answer.status == 200, answer.data
    folder = settings.data_dir / "avatars"
    files = list(folder.iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

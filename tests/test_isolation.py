"""Memory isolation under concurrency: many personas x many users x interleaved turns.

The fake Ollama records every prompt. Each scope's memory and messages carry a
marker naming their scope; no prompt may ever contain another scope's marker.
Hypothesis chooses the turns, their interleaving and the streaming delays.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import make_settings, reply_prompts, user_text

PERSONAS = ("iso-a", "iso-b", "iso-c")
USERS = 3
MARKER = re.compile(r"\b(?:secret|msg|re)-(iso-[abc])-(u\d+-\d+)")
_examples = itertools.count()

turn_plans = st.lists(
    st.tuples(st.sampled_from(PERSONAS), st.integers(0, USERS - 1), st.integers(0, 1)),
    min_size=4,
    max_size=16,
)


def answer(request: FakeChatRequest) -> list[str] | str:
    if request.format:  # a plugin's structured call (profile extraction): learn nothing
        return '{"items": []}'
    found = MARKER.search(request.last_user_message)
    assert found, request.last_user_message
    return ["re-", f"{found.group(1)}-{found.group(2)} ", "ok"]


async def run_plan(
    tmp_path: Path, db_url: str, plan: list[tuple[str, int, int]], delay: float
) -> None:
    example = next(_examples)
    async with FakeOllama() as fake:
        fake.reply_with(answer)
        fake.chunk_delay = delay
        async with Runtime(make_settings(tmp_path, fake, db_url), load_entry_points=False) as rt:
            base = await rt.personas.get("dagoth-ur")
            for persona in PERSONAS:
                await rt.personas.save(base.model_copy(update={"id": persona}), owner_id=None)
            users = {}
            for n in range(USERS):
                tag = f"u{n}-{example}"
                users[n] = await rt.users.resolve("test", tag, tag)
                for persona in PERSONAS:
                    await rt.memory.add(
                        Scope(persona, users[n]), f"secret-{persona}-{tag} likes tea"
                    )

            async def turn(i: int, persona: str, n: int, conversation: int) -> None:
                text = f"msg-{persona}-u{n}-{example} number {i} about tea"
                await rt.reply(Turn(users[n], persona, text, f"conv{conversation}"))

            await asyncio.gather(*(turn(i, *step) for i, step in enumerate(plan)))

            await rt.background.drain()
            for call in fake.requests_to("/api/chat"):  # background calls too
                text = "\n".join(m["content"] for m in call.json["messages"])
                scopes = {m.groups() for m in MARKER.finditer(text)}
                assert len(scopes) <= 1, f"one call mixed scopes: {scopes}"
            prompts = reply_prompts(fake)
            assert len(prompts) == len(plan)
            for prompt in prompts:
                messages = prompt.json["messages"]
                owner = MARKER.search(user_text(prompt))
                assert owner is not None
                everything = "\n".join(m["content"] for m in messages)
                scopes_seen = {m.groups() for m in MARKER.finditer(everything)}
                assert scopes_seen == {owner.groups()}, f"leak into {owner.groups()}: {scopes_seen}"
                assert f"secret-{owner.group(1)}-{owner.group(2)}" in everything


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=turn_plans, delay=st.sampled_from([0.0, 0.001, 0.005]))
def test_no_prompt_ever_contains_another_scopes_memory_or_history(
    tmp_path: Path, db_url: str, plan: list[tuple[str, int, int]], delay: float
) -> None:
    asyncio.run(run_plan(tmp_path, db_url, plan, delay))

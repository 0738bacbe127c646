from personae.core.runtime import Runtime
from personae.core.types import Turn
from personae.testing.fake_ollama import FakeOllama


async def test_a_turn_streams_the_reply_and_stores_both_messages(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await runtime.users.resolve("cli", "alice", "Alice")
    fake_ollama.reply_with("Greetings, mortal. Welcome.")
    chunks = [c async for c in runtime.stream(Turn(user, "sage", "hello there", "c1"))]
    assert "".join(chunks) == "Greetings, mortal. Welcome."
    history = await runtime.history.recent(Turn(user, "sage", "").scope, "c1", 10)
    assert [(m.role, m.content) for m in history] == [
        ("user", "hello there"),
        ("assistant", "Greetings, mortal. Welcome."),
    ]

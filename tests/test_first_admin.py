"""Exactly one first administrator: account creations that race (two stores in
one process, or two processes on one database) cannot both see "no account yet"
— on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

from argon2 import PasswordHasher

from personae.core.runtime import Runtime
from personae.storage.accounts import AccountStore
from personae.storage.models import User

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def test_racing_first_sign_ups_make_exactly_one_administrator(runtime: Runtime) -> None:
    stores = [AccountStore(FAST), AccountStore(FAST)]  # separate in-process locks

    created = await asyncio.gather(
        *(stores[n % 2].create(f"user{n}", "correct horse battery") for n in range(8))
    )

    assert sum(account.is_admin for account in created) == 1
    assert await User.filter(is_admin=True).count() == 1


async def test_no_administrator_when_the_caller_says_not_to(runtime: Runtime) -> None:
    account = await AccountStore(FAST).create("first", "correct horse battery", is_admin=False)

    assert account.is_admin is False
    second = await AccountStore(FAST).create("second", "correct horse battery")
    assert second.is_admin is False  # the first account exists: nobody else is "first"


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from argon2 import PasswordHasher
    from personae.storage.accounts import AccountStore
    from personae.storage.database import Database

    async def main(url, prefix, start_at):
        db = Database(url)
        await db.connect(migrate=False)
        store = AccountStore(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        made = await asyncio.gather(
            *(store.create(f"{prefix}{n}", "correct horse battery") for n in range(4))
        )
        print(sum(a.is_admin for a in made))
        await db.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    """
)


async def test_two_processes_on_one_database_make_exactly_one_administrator(
    runtime: Runtime, db_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "signup.py"
    script.write_text(SCRIPT)
    start_at = f"{time.time() + 3:.3f}"  # both start creating at once, after connecting
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), db_url, prefix, start_at,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for prefix in ("a", "b")
    ]  # fmt: skip
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in processes]

    assert [p.returncode for p in processes] == [0, 0], [err.decode()[-800:] for _, err in outputs]
    assert sum(int(out.decode().strip()) for out, _ in outputs) == 1
    assert await User.filter(is_admin=True).count() == 1

"""The portability commands run as an operator runs them: a real ``personae``
process on a real SQLite database, with progress and summary tables."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from tests.portability.formats import NEREVAR, make_acore


async def personae(workdir: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PERSONAE_DATA_DIR": str(workdir / "data"), "COLUMNS": "200"}
    env.pop("PERSONAE_CONFIG", None)
    env.pop("PERSONAE_DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "personae", *args, cwd=workdir, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_acore_import_from_dry_run_to_rollback(tmp_path: Path) -> None:
    source = make_acore(tmp_path / "acore_bot")
    code, out, err = await personae(tmp_path, "import", "acore", str(source), "--dry-run")
    assert code == 0, err
    assert "Would import" in out and "Dry run: nothing was written" in out
    assert "not valid JSON" in out
    code, out, err = await personae(
        tmp_path, "import", "acore", str(source), "--persona-map", "default=sage"
    )
    assert code == 0, err
    run_id = re.search(r"personae import rollback (\S+)`", out)
    assert run_id, out
    code, out, _ = await personae(tmp_path, "memory", "export", "-", "--user", f"discord:{NEREVAR}")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["count"] == len(lines) - 1 > 5
    assert {line["persona_id"] for line in lines[1:]} == {"sage", "dagoth_ur", "scav"}
    code, out, _ = await personae(tmp_path, "import", "acore", str(source))
    assert "Nothing new to import" in out
    code, out, _ = await personae(tmp_path, "import", "runs")
    assert run_id.group(1) in out and "complete" in out
    code, out, err = await personae(tmp_path, "import", "rollback", run_id.group(1))
    assert code == 0, err
    assert "Rolled back" in out
    code, out, _ = await personae(tmp_path, "memory", "export", "-")
    assert json.loads(out.splitlines()[0])["count"] == 0


async def test_backup_restore_and_migrate_from_the_command_line(tmp_path: Path) -> None:
    source = make_acore(tmp_path / "acore_bot")
    await personae(tmp_path, "import", "acore", str(source))
    code, out, err = await personae(tmp_path, "db", "backup", "before.db")
    assert code == 0, err
    assert "sqlite" in out
    code, out, err = await personae(tmp_path, "memory", "export", "all.jsonl")
    assert code == 0, err
    count = json.loads((tmp_path / "all.jsonl").read_text().splitlines()[0])["count"]
    runs = list((tmp_path / "data" / "imports").glob("*.json"))
    await personae(tmp_path, "import", "rollback", runs[0].stem)
    code, out, err = await personae(tmp_path, "db", "restore", "before.db", "--yes")
    assert code == 0, err
    assert "Restored" in out
    code, out, _ = await personae(tmp_path, "memory", "export", "-")
    assert json.loads(out.splitlines()[0])["count"] == count
    code, out, err = await personae(tmp_path, "db", "migrate")
    assert code == 0, err
    assert "up to date" in out and "Backed" not in out


async def test_an_invalid_memory_file_is_refused_whole(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format": "personae.memory", "schema_version": 1}\n{"x"\n')
    code, _, err = await personae(tmp_path, "memory", "import", str(bad))
    assert code == 1 and "nothing was imported" in err

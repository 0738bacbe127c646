"""``personae discord`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from personae import cli
from personae.adapters.discord.cli import register


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("PERSONAE_DISCORD__TOKEN", raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cli, "_state", {})
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_without_a_token_it_says_how_to_set_one(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["discord"])
    assert result.exit_code == 1
    assert "PERSONAE_DISCORD__TOKEN" in result.output


def test_shard_ids_without_a_count_are_refused(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["discord", "--shard-ids", "0,1"])
    assert result.exit_code == 2
    assert "shard_count" in result.output

"""Settings come from the TOML file and PERSONAE_* variables (which win)."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.core.errors import ConfigError
from personae.core.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSONAE_CONFIG", raising=False)
    settings = load_settings(REPO / "config" / "personae.toml")
    assert settings.ollama.host == "http://127.0.0.1:11434"
    assert settings.db_url == "sqlite://data/personae.db"


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "p.toml"
    config.write_text('default_persona = "scav"\n[ollama]\nhost = "http://file:1"\nmodel = "a"\n')
    monkeypatch.setenv("PERSONAE_OLLAMA__HOST", "http://env:2")
    settings = load_settings(config)
    assert settings.ollama.host == "http://env:2"
    assert settings.ollama.model == "a"
    assert settings.default_persona == "scav"


def test_personae_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "other.toml"
    config.write_text('database_url = "postgres://u@db:5432/p"\n')
    monkeypatch.setenv("PERSONAE_CONFIG", str(config))
    assert load_settings().db_url == "postgres://u@db:5432/p"


def test_invalid_values_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[ollama]\nread_timeout = -1\n")
    with pytest.raises(ConfigError, match=r"ollama\.read_timeout"):
        load_settings(config)


def test_a_bad_environment_value_names_the_variable_and_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fine.toml"
    config.write_text("[ollama]\nretries = 2\n")
    monkeypatch.setenv("PERSONAE_OLLAMA__RETRIES", "many")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "PERSONAE_OLLAMA__RETRIES (ollama.retries)" in str(raised.value)
    assert "fine.toml" not in str(raised.value)


def test_bad_values_in_both_places_are_each_blamed_on_their_own_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[ollama]\nread_timeout = -1\n")
    monkeypatch.setenv("PERSONAE_OLLAMA__RETRIES", "many")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "in the environment: PERSONAE_OLLAMA__RETRIES (ollama.retries)" in message
    assert f"in {config}: ollama.read_timeout" in message


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text('defualt_persona = "sage"\n')
    with pytest.raises(ConfigError, match="defualt_persona"):
        load_settings(config)


def test_a_missing_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_broken_toml_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings(config)

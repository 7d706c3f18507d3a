"""Configuration precedence and the documented example file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_file_documents_exactly_the_defaults() -> None:
    from_file = load_config(ROOT / "kumo.toml.example", environ={})
    assert from_file == Config()


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "kumo.toml"
    path.write_text('[api]\nlisten = "127.0.0.1:6000"\n[identity]\ntoken_expiration = 120\n')
    env = {"KUMO_API_LISTEN": "127.0.0.1:7000", "KUMO_STATE_DIR": str(tmp_path / "s")}
    config = load_config(path, {"identity": {"region": "Elsewhere"}}, environ=env)
    assert config.api.listen == "127.0.0.1:7000"  # environment beats file
    assert config.identity.token_expiration == 120  # file beats default
    assert config.identity.region == "Elsewhere"  # flags beat everything
    assert config.state_dir == tmp_path / "s"
    assert config.database_url == f"sqlite:///{tmp_path / 's' / 'kumo.db'}"
    assert config.public_url == "http://127.0.0.1:7000"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[identity]\ntoken_expiration = 5\n", "identity.token_expiration"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[api\n", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "kumo.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(path, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize("listen", ["9101", "localhost:", "host:port", ":99999"])
def test_controller_metrics_listen_must_be_host_port(listen: str) -> None:
    with pytest.raises(ConfigError, match="metrics_listen"):
        load_config(environ={"KUMO_CONTROLLER_METRICS_LISTEN": listen})
    ok = load_config(environ={"KUMO_CONTROLLER_METRICS_LISTEN": "0.0.0.0:9101"})
    assert ok.controller.metrics_listen == "0.0.0.0:9101"

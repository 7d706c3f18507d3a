"""Configuration precedence and the documented example file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

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


def test_every_section_takes_its_keys_from_the_environment() -> None:
    """Each section of the file can be set by KUMO_<SECTION>_<KEY> (volumes once could not)."""
    sections = {name: value for name, value in Config() if isinstance(value, BaseModel)}
    assert "volumes" in sections
    for section, value in sections.items():
        key = next(iter(type(value).model_fields))
        env = {f"KUMO_{section.upper()}_{key.upper()}": "not-a-valid-value-for-most"}
        try:
            config = load_config(environ=env)
        except ConfigError as exc:
            assert f"{section}.{key}" in str(exc)  # read, and refused with its name
        else:
            assert getattr(getattr(config, section), key) == "not-a-valid-value-for-most"
    config = load_config(environ={"KUMO_VOLUMES_DEFAULT_BACKEND": "raw"})
    assert config.volumes.default_backend == "raw"


def test_usage_prices_from_file_and_environment(tmp_path: Path) -> None:
    """[usage.prices] is a nested section; KUMO_USAGE_PRICES_<KEY> reaches it too, and no
    price set means reports show no cost."""
    assert load_config(environ={}).usage.prices.as_prices() is None
    path = tmp_path / "kumo.toml"
    path.write_text("[usage.prices]\nvcpu_hour = 0.02\n")
    cfg = load_config(path, environ={"KUMO_USAGE_PRICES_FLOATING_IP_HOUR": "0.5"})
    assert cfg.usage.prices.as_prices() == {"vcpu_hour": 0.02, "floating_ip_hour": 0.5}
    with pytest.raises(ConfigError, match="vcpu_hour"):
        load_config(environ={"KUMO_USAGE_PRICES_VCPU_HOUR": "-1"})
    with pytest.raises(ConfigError, match="bogus"):
        load_config(environ={"KUMO_USAGE_PRICES_BOGUS": "1"})


def test_notifications_url_from_the_environment_and_refused_when_not_amqp() -> None:
    """Off by default; KUMO_NOTIFICATIONS_URL turns it on (kumo.core.notifications puts the
    settings in each session's info then, and nothing otherwise)."""
    from kumo.core import notifications

    assert load_config(environ={}).notifications.url == ""
    assert notifications.session_info(load_config(environ={}).notifications) == {}
    url = "amqp://guest:guest@127.0.0.1:5672/"
    config = load_config(environ={"KUMO_NOTIFICATIONS_URL": url, "KUMO_NOTIFICATIONS_TOPIC": "t"})
    settings = notifications.session_info(config.notifications)[notifications.SETTINGS]
    assert (settings.topic, settings.versioned_topic, settings.legacy) == (
        "t",
        "versioned_notifications",
        True,
    )
    for bad, key in (("http://rabbit/", "notifications.url"), ("a#b", "notifications.topic")):
        name = "URL" if key.endswith("url") else "TOPIC"
        with pytest.raises(ConfigError, match=key):
            load_config(environ={f"KUMO_NOTIFICATIONS_{name}": bad})

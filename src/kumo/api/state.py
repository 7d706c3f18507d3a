"""What every request handler needs: configuration, the database and the token codec."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from kumo.config import Config
from kumo.core.identity.auth import load_codec
from kumo.core.identity.cache import TokenCache
from kumo.core.identity.tokens import TokenCodec
from kumo.core.operations import Env
from kumo.core.volume.volumes import Placement
from kumo.db.engine import Database


@dataclass
class AppState:
    config: Config
    db: Database
    _codec: TokenCodec | None = field(default=None, repr=False)
    token_cache: TokenCache = field(default_factory=TokenCache, repr=False)
    # Host credentials this process has checked against the database, and when: agents
    # present one on every call, and it never changes once created.
    verified_host_credentials: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def codec(self) -> TokenCodec:
        if self._codec is None:
            with self.db.session() as session:
                self._codec = load_codec(session)
        return self._codec

    @property
    def identity_url(self) -> str:
        return self.config.public_url + "/identity/v3"

    @property
    def env(self) -> Env:
        """What the lifecycle's operations read of the configuration (kumo.core.operations)."""
        cfg = self.config
        return Env(
            cfg.scheduler,
            cfg.hosts.heartbeat_timeout,
            volume_placement=Placement(
                default_backend=cfg.volumes.default_backend,
                over_subscription_ratio=cfg.volumes.over_subscription_ratio,
                heartbeat_timeout=cfg.hosts.heartbeat_timeout,
            ),
            force_config_drive=cfg.compute.force_config_drive,
        )


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kumo
    return state

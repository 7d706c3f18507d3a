"""Configuration: one TOML file, overridable by KUMO_* environment variables and flags.

Precedence (lowest to highest): built-in defaults, the TOML file, environment variables,
command-line flags. Every key in a section maps to ``KUMO_<SECTION>_<KEY>`` (upper case), so
``[api] listen`` is ``KUMO_API_LISTEN``. ``KUMO_STATE_DIR`` and ``KUMO_CONFIG`` name the state
directory and the file itself.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiConfig(_Section):
    listen: str = "127.0.0.1:5000"
    # URL clients use to reach the API; empty means http://<listen>.
    public_url: str = ""


class DatabaseConfig(_Section):
    # Empty means the embedded SQLite database at STATE_DIR/kumo.db.
    url: str = ""
    # Where `kumo db upgrade` and `kumo db backup` write backups; empty means STATE_DIR/backups.
    backup_dir: str = ""


class IdentityConfig(_Section):
    token_expiration: int = Field(3600, ge=60, description="seconds a token lives")
    region: str = "RegionOne"
    # Admin credentials created by `kumo up` on first run; empty password means generate one.
    admin_user: str = "admin"
    admin_password: str = ""
    admin_project: str = "admin"
    demo_project: str = "demo"


class HostsConfig(_Section):
    # A host is reported down when its last heartbeat is older than this many seconds.
    heartbeat_timeout: float = Field(30.0, gt=0)


class ControllerConfig(_Section):
    # HOST:PORT where `kumo serve controller` serves its own Prometheus metrics (scheduler
    # latency, lease); empty: not served. `kumo up` needs none: its API's /metrics has them.
    metrics_listen: str = ""

    @field_validator("metrics_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if value and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value


class AgentConfig(_Section):
    # Agent API base URL the agent talks to; empty means the local API.
    api_url: str = ""
    # Host name reported at registration; empty means the machine's hostname.
    host_name: str = ""
    heartbeat_interval: float = Field(10.0, gt=0)
    # Shared host credential; empty means the one stored at STATE_DIR/host-credential.
    credential: str = ""
    # Inventory this host reports instead of what it detects (0 = detect): to offer only part
    # of a machine to guests, or to model small hosts in tests.
    inventory_vcpus: int = Field(0, ge=0)
    inventory_memory_mb: int = Field(0, ge=0)
    inventory_disk_gb: int = Field(0, ge=0)
    # Seconds between posts of a guest's console log when it changed (a reader of the
    # console gets a fresh copy at once: the API asks the agent for it).
    console_interval: float = Field(30.0, gt=0)
    # Where guests' VNC servers and serial console sockets listen: the address the API's
    # console proxy reaches this host on. Loopback keeps them off every network.
    console_address: str = "127.0.0.1"
    # The network datapath: "linux" (bridges, VXLAN, dnsmasq, nftables), "fake", "none"
    # (guests get no NIC), or "auto": linux when running as root, else none.
    network_driver: str = "auto"
    # Network namespace that plays the host for the datapath: "auto" is one of kumo's own
    # per state directory (the all-in-one cloud never touches the root namespace); ""
    # means the root namespace, for a dedicated hypervisor.
    host_namespace: str = "auto"
    # VXLAN underlay: the interface (in the host namespace) and this host's address on it.
    underlay_interface: str = ""
    underlay_ip: str = ""
    # Flat/VLAN physical networks: name -> interface in the host namespace.
    physical_networks: dict[str, str] = Field(default_factory=dict)
    # All-in-one: a "provider" namespace standing for the outside world, joined to the
    # physical network "public" and holding this address (the external gateway); "" none.
    provider_gateway: str = "172.24.4.1/24"


class ConsolesConfig(_Section):
    """Remote consoles (noVNC and serial) reached through the API's websocket proxy."""

    # Seconds a console token stays valid before its one use (Nova's [consoleauth]
    # token_ttl).
    token_ttl: int = Field(600, ge=1)


class ImagesConfig(_Section):
    # Largest image upload accepted; a bigger one is refused with 413 and nothing is kept.
    max_size_bytes: int = Field(10 * 1024**3, gt=0)
    # Where image data is kept; empty means STATE_DIR/images.
    store_dir: str = ""
    # Refuse data whose real format differs from its disk_format (Glance's
    # [image_format] require_image_format_match). Off, such data is kept as given (kumo
    # always names the format to QEMU, so it is never reinterpreted); images that name
    # other files (backing or data files, VMDK extents) are refused either way.
    require_format_match: bool = True


class SchedulerConfig(_Section):
    # Overcommit: schedulable = (inventory - reserved) x ratio, as Nova's placement does.
    cpu_allocation_ratio: float = Field(16.0, gt=0)
    ram_allocation_ratio: float = Field(1.5, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_memory_mb: int = Field(512, ge=0)
    reserved_host_disk_gb: int = Field(0, ge=0)
    # "spread" puts each server on the host with the most free RAM, "pack" on the least.
    weigher: Literal["spread", "pack"] = "spread"


class ComputeConfig(_Section):
    # Hypervisor driver of this host's agent: "qemu", "fake" (in memory, for scale tests),
    # or "auto" (qemu when qemu-system-x86_64 is installed, else fake).
    hypervisor: Literal["auto", "qemu", "fake"] = "auto"
    # Give every guest a config drive (Nova's force_config_drive), not only those created with
    # config_drive=true: guests without a metadata service (and kumo-tiny) need one.
    force_config_drive: bool = True


class NetworkConfig(_Section):
    """Neutron's ML2 type drivers in short: which provider segments tenants and admins may
    create networks on, and the MTU of the physical networks."""

    # VXLAN network identifiers tenants' networks get, "first:last[,first:last...]"; empty
    # means tenants get ``local`` networks (no VXLAN).
    vxlan_vni_ranges: str = "1:1000"
    # VLAN ids per physical network, "physnet:first:last[,...]" (a bare "physnet" allows
    # admin-chosen ids only).
    vlan_ranges: str = "physnet1:100:200"
    # Physical networks that may carry flat (untagged) networks.
    flat_networks: list[str] = Field(default_factory=lambda: ["public", "physnet1"])
    default_mtu: int = Field(1500, ge=68)

    @field_validator("flat_networks", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # From the environment the list comes as "a,b".
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class VolumeConfig(_Section):
    """Block storage: which backends this host's agent offers and how far they overcommit."""

    # The backend of volumes whose type names none (``volume_backend_name``).
    default_backend: Literal["file", "raw", "fake"] = "file"
    # Backends this host's agent serves (each keeps its data under <state_dir>/volumes/).
    backends: list[str] = Field(default_factory=lambda: ["file", "raw"])
    # Thin volumes may promise more than the disk holds, as Cinder's
    # max_over_subscription_ratio allows.
    over_subscription_ratio: float = Field(20.0, gt=0)
    # The raw backend: allocate each volume's space up front, and hand volumes to QEMU as
    # loop block devices instead of files.
    raw_preallocate: bool = False
    raw_loop_device: bool = False

    @field_validator("backends", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class UsagePrices(_Section):
    """Showback prices (as OpenNebula's): unset ones are not charged; with none set, usage
    reports show no cost. One currency, whatever the operator means by it."""

    vcpu_hour: float | None = Field(None, ge=0)
    ram_gib_hour: float | None = Field(None, ge=0)
    disk_gib_hour: float | None = Field(None, ge=0)
    volume_gib_hour: float | None = Field(None, ge=0)
    snapshot_gib_hour: float | None = Field(None, ge=0)
    image_gib_hour: float | None = Field(None, ge=0)
    floating_ip_hour: float | None = Field(None, ge=0)

    def as_prices(self) -> dict[str, float] | None:
        """Price key -> price for the ones set; None when none is (no cost shown)."""
        set_ = {k: v for k, v in self.model_dump().items() if v is not None}
        return set_ or None


class UsageConfig(_Section):
    prices: UsagePrices = UsagePrices()

    @model_validator(mode="before")
    @classmethod
    def _nested_from_environment(cls, value: Any) -> Any:
        # KUMO_USAGE_PRICES_VCPU_HOUR arrives as {"prices_vcpu_hour": "..."}.
        if isinstance(value, dict):
            value = dict(value)
            flat = {k: value.pop(k) for k in list(value) if k.startswith("prices_")}
            if flat:
                prices = dict(value.get("prices") or {})
                prices.update({k[len("prices_") :]: v for k, v in flat.items()})
                value["prices"] = prices
        return value


class NotificationsConfig(_Section):
    """OpenStack notifications on RabbitMQ (docs/notifications.md). Without ``url`` nothing
    is written to the outbox and nothing is published."""

    # amqp://user:password@host:5672/vhost; empty: notifications are off.
    url: str = ""
    # Nova's versioned notifications (compute) on ``versioned_topic``.
    versioned: bool = True
    # The legacy (unversioned) notifications of every service on ``topic``.
    legacy: bool = True
    # Routing key prefixes, as Nova's [notifications] versioned_notifications_topics and
    # oslo.messaging's [oslo_messaging_notifications] topics: "<topic>.<priority>".
    versioned_topic: str = "versioned_notifications"
    topic: str = "notifications"
    # The host part of ``publisher_id`` ("nova-compute:<host>"); empty: the server's host,
    # or this machine's name for what has no host.
    publisher_host: str = ""

    @field_validator("url")
    @classmethod
    def _amqp(cls, value: str) -> str:
        if value and not value.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{value!r} is not an amqp:// or amqps:// URL")
        return value

    @field_validator("versioned_topic", "topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not value or any(c in value for c in " #*"):
            raise ValueError(f"{value!r} is not a routing key prefix")
        return value


class HaConfig(_Section):
    """Host failure: what the active controller does when a host stops answering (README,
    "High availability"). Off by default: nothing is fenced or evacuated by itself."""

    enabled: bool = False
    # Seconds without a heartbeat (and, with lease_dir, without a storage lease renewal)
    # before a suspected host is declared dead and forced down; at least the heartbeat
    # timeout is waited whatever this says.
    dead_after: float = Field(60.0, gt=0)
    # Run to power the dead host off (IPMI, Redfish...): an argument list split like a
    # shell's, {host} and {host_id} replaced by the host's name and UUID. Exit 0 means
    # fenced; anything else (or no answer within fence_timeout) is retried every
    # fence_retry_interval seconds and nothing is evacuated meanwhile.
    fence_command: str = ""
    fence_timeout: float = Field(60.0, gt=0)
    fence_retry_interval: float = Field(30.0, gt=0)
    # Self-fencing (agents and controller read the same value): an agent that could not
    # renew its heartbeat for this many seconds stops its own guests; with no
    # fence_command, the controller evacuates only once self_fence_after +
    # self_fence_margin seconds have passed since the host's last heartbeat. 0: agents do
    # not self-fence, and without a fence command nothing is evacuated by itself (the
    # host is forced down; its servers wait for an operator who knows it is off).
    self_fence_after: float = Field(0.0, ge=0)
    self_fence_margin: float = Field(10.0, ge=0)
    # A directory every host and the controller share (the instances' shared storage):
    # each agent renews its lease file there every second, the second signal of a host's
    # death (a host partitioned from the API but alive on its storage is not dead).
    lease_dir: str = ""
    # Masakari's default: only servers with metadata HA_Enabled=True are evacuated; true
    # evacuates every server of a dead host.
    evacuate_all: bool = False


class Config(_Section):
    state_dir: Path = (
        Path("/var/lib/kumo") if os.geteuid() == 0 else (Path.home() / ".local/share/kumo")
    )
    api: ApiConfig = ApiConfig()
    database: DatabaseConfig = DatabaseConfig()
    identity: IdentityConfig = IdentityConfig()
    hosts: HostsConfig = HostsConfig()
    ha: HaConfig = HaConfig()
    controller: ControllerConfig = ControllerConfig()
    agent: AgentConfig = AgentConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    compute: ComputeConfig = ComputeConfig()
    consoles: ConsolesConfig = ConsolesConfig()
    images: ImagesConfig = ImagesConfig()
    network: NetworkConfig = NetworkConfig()
    volumes: VolumeConfig = VolumeConfig()
    usage: UsageConfig = UsageConfig()

    notifications: NotificationsConfig = NotificationsConfig()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.state_dir / 'kumo.db'}"

    @property
    def backup_dir(self) -> Path:
        return (
            Path(self.database.backup_dir)
            if self.database.backup_dir
            else (self.state_dir / "backups")
        )

    @property
    def images_dir(self) -> Path:
        return Path(self.images.store_dir) if self.images.store_dir else (self.state_dir / "images")

    @property
    def public_url(self) -> str:
        return (self.api.public_url or f"http://{self.api.listen}").rstrip("/")


# Every section of Config, read off the model so a new one can never be missed by the
# environment (KUMO_VOLUMES_* was ignored while this was a hand-kept list).
_SECTIONS = tuple(
    name
    for name, field in Config.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if environ.get("KUMO_STATE_DIR"):
        data["state_dir"] = environ["KUMO_STATE_DIR"]
    for section in _SECTIONS:
        prefix = f"KUMO_{section.upper()}_"
        for key, value in environ.items():
            if key.startswith(prefix):
                data.setdefault(section, {})[key[len(prefix) :].lower()] = value
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def load_config(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the effective configuration from file, environment and flag overrides."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    path = config_file or (Path(env["KUMO_CONFIG"]) if env.get("KUMO_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    data = _merge(data, _env_overrides(env))
    data = _merge(data, overrides or {})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc

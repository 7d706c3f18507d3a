"""Which network driver this host's agent runs and what the host adds to its spec, from
configuration; and, for the all-in-one cloud, the provider namespace that stands for the
outside world (network safety: nothing of kumo's touches the root namespace unless an
operator sets ``host_namespace = ""`` on a dedicated hypervisor)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kumo.agent.network import HostNetworkConfig
from kumo.config import Config
from kumo.drivers.network import netns
from kumo.drivers.network import registry as network_registry
from kumo.drivers.network.base import NetworkDriver
from kumo.drivers.network.spec import Underlay

log = logging.getLogger(__name__)

PUBLIC_PHYSNET = "public"
PROVIDER_LINK = "kp-public"  # the host-side end of the provider veth: physnet "public"


def namespace_suffix(state_dir: Path) -> str:
    """What tells this state directory's namespaces from another cloud's on the machine."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def host_namespace(config: Config) -> str | None:
    value = config.agent.host_namespace
    if value == "auto":
        return f"kumo-host-{namespace_suffix(config.state_dir)}"
    return value or None


def provider_namespace(config: Config) -> str:
    return f"kumo-provider-{namespace_suffix(config.state_dir)}"


def existing_provider(config: Config) -> str | None:
    """The provider namespace of this state directory when it exists (the all-in-one
    cloud's outside world), for telling an operator which of the host's is theirs."""
    name = provider_namespace(config)
    return name if netns.exists(name) else None


def describe(config: Config) -> dict[str, Any]:
    """This state directory's datapath on this host, for `kumo network show`: several
    clouds can share a machine, and namespace names are global."""
    host_ns = host_namespace(config)
    provider = provider_namespace(config)
    directory = config.state_dir / "agent" / "network"
    from kumo.drivers.network.linux import LinuxNetworkDriver

    made = LinuxNetworkDriver(directory).owned_namespaces()
    present = [n for n in sorted({host_ns or "", provider, *made}) if n and netns.exists(n)]
    return {
        "state_dir": str(config.state_dir),
        "network_driver": resolve_driver_name(config),
        "host_namespace": host_ns or "(the root namespace)",
        "provider_namespace": provider,
        "provider_present": netns.exists(provider),
        "provider_gateway": config.agent.provider_gateway,
        "namespaces": present,
    }


def resolve_driver_name(config: Config) -> str:
    name = config.agent.network_driver
    if name != "auto":
        return name
    usable = os.geteuid() == 0 and shutil.which("ip") and shutil.which("nft")
    return "linux" if usable else "none"


def _ensure_namespace(name: str) -> None:
    if not (netns.NETNS_DIR / name).exists():
        netns.run(["ip", "netns", "add", name])
        netns.ip(name, "link", "set", "lo", "up")


def ensure_provider(config: Config, host_ns: str | None) -> str | None:
    """The all-in-one cloud's outside world: a namespace with the external gateway address,
    joined by a veth to the host namespace, where its end is the physical network
    "public". Idempotent (a restart finds it); None when not configured."""
    if not config.agent.provider_gateway or host_ns is None:
        return None
    provider = provider_namespace(config)
    _ensure_namespace(host_ns)
    _ensure_namespace(provider)
    links = {link.get("ifname") for link in netns.ip_json(host_ns, "link", "show")}
    if PROVIDER_LINK not in links:
        netns.ip(
            host_ns, "link", "add", PROVIDER_LINK, "type", "veth",
            "peer", "name", "eth0", "netns", provider,
        )  # fmt: skip
    netns.ip(host_ns, "link", "set", PROVIDER_LINK, "up")
    addresses = netns.ip(provider, "-o", "addr", "show", "dev", "eth0")
    if config.agent.provider_gateway not in addresses:
        netns.ip(provider, "addr", "add", config.agent.provider_gateway, "dev", "eth0")
    netns.ip(provider, "link", "set", "eth0", "up")
    return provider


def make_network(
    config: Config, state_dir: Path | None = None
) -> tuple[NetworkDriver | None, HostNetworkConfig]:
    """The network driver (None: guests get no NIC) and the host's part of the spec."""
    name = resolve_driver_name(config)
    if name == "none":
        log.info("network driver: none (guests get no NIC; run as root for the linux driver)")
        return None, HostNetworkConfig()
    host_ns = host_namespace(config)
    physical = dict(config.agent.physical_networks)
    if name == "linux":
        try:
            if host_ns is not None:
                _ensure_namespace(host_ns)
            if ensure_provider(config, host_ns) is not None:
                physical.setdefault(PUBLIC_PHYSNET, PROVIDER_LINK)
        except netns.NetworkError as exc:
            log.warning("network driver disabled: %s", exc)
            return None, HostNetworkConfig()
    elif name == "fake":
        # The fake datapath pretends kumo up's provider is there, so `public` (its gateways
        # and floating IPs) is carried and reported up, as the linux driver's would be.
        physical.setdefault(PUBLIC_PHYSNET, PROVIDER_LINK)
    underlay = (
        Underlay(interface=config.agent.underlay_interface, local_ip=config.agent.underlay_ip)
        if config.agent.underlay_interface and config.agent.underlay_ip
        else None
    )
    driver = network_registry.create(name, (state_dir or config.state_dir) / "agent" / "network")
    log.info("network driver: %s (host namespace %s)", name, host_ns or "root")
    return driver, HostNetworkConfig(
        host_namespace=host_ns, underlay=underlay, physical_networks=physical
    )


def teardown(config: Config, state_dir: Path | None = None) -> list[str]:
    """Remove what the datapath of this state directory made, then the host and provider
    namespaces kumo created for it. Returns what was done, for the operator."""
    done: list[str] = []
    directory = (state_dir or config.state_dir) / "agent" / "network"
    # What is there decides, not what is configured now: the linux driver records the
    # namespaces it made in owned.json (a cloud run with the linux driver and torn down
    # with another configuration still loses its datapath).
    made_by_linux = (directory / "owned.json").exists()
    if directory.exists() and (made_by_linux or resolve_driver_name(config) == "linux"):
        driver = network_registry.create("linux", directory)
        done += driver.teardown().changes
    # The provider namespace is always kumo's own (named after the state directory); the
    # host namespace only when kumo named it ("auto"), not when an operator chose one.
    ours = [provider_namespace(config)]
    if config.agent.host_namespace == "auto":
        ours.insert(0, host_namespace(config) or "")
    for name in ours:
        if name and (netns.NETNS_DIR / name).exists():
            netns.run(["ip", "netns", "delete", name])
            done.append(f"deleted namespace {name}")
    return done

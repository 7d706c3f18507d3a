"""The agent's main loop: register, then heartbeat; re-register if the control plane
forgot the host (a restored database, say)."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

import kumo
from kumo.agent.compute import ComputeLoop, SpecBuilder, minimal_spec
from kumo.agent.disks import start_disks
from kumo.agent.images import ImageCache
from kumo.agent.inventory import capabilities, host_load, inventory
from kumo.agent.network import HostNetworkConfig, NetworkLoop
from kumo.agent.self_fence import SelfFence, guard
from kumo.agent.spec import QemuSpecBuilder
from kumo.agent.volumes import VolumeLoop
from kumo.drivers.hypervisor.base import GuestSpec, HypervisorDriver
from kumo.drivers.network.base import NetworkDriver
from kumo.drivers.storage.volumes.base import VolumeBackend, VolumeBackendError
from kumo.protocol import AGENT_API_VERSIONS

log = logging.getLogger(__name__)


def host_id(state_dir: Path) -> str:
    """The host's stable UUID, created once and kept in the agent's state directory."""
    path = state_dir / "agent" / "host-id"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(uuid.uuid4())
    path.write_text(value + "\n")
    return value


class Agent:
    def __init__(
        self,
        api_url: str,
        credential: str,
        state_dir: Path,
        name: str = "",
        interval: float = 10.0,
        driver: HypervisorDriver | None = None,
        force_config_drive: bool = True,
        inventory_override: dict[str, int] | None = None,
        console_interval: float = 30.0,
        network_driver: NetworkDriver | None = None,
        network_local: HostNetworkConfig | None = None,
        volume_backends: dict[str, VolumeBackend] | None = None,
        self_fence_after: float = 0.0,
        lease_dir: str = "",
    ) -> None:
        self.api = api_url.rstrip("/") + "/agent/v1"
        self.credential = credential
        self.state_dir = state_dir
        self.name = name or socket.gethostname()
        self.interval = interval
        self.id = host_id(state_dir)
        self.registered = False
        self._unreachable_since = 0.0
        self._client = httpx.Client(timeout=10.0, headers={"X-Kumo-Host-Credential": credential})
        self.driver = driver
        self.inventory_override = inventory_override
        self.console_interval = console_interval
        self._compute_thread: threading.Thread | None = None
        self.network_driver = network_driver
        self.network_local = network_local or HostNetworkConfig()
        self.volume_backends = volume_backends or {}
        self._network: NetworkLoop | None = None
        self._network_thread: threading.Thread | None = None
        self._volume_thread: threading.Thread | None = None
        # Self-fencing and the storage lease (kumo.agent.self_fence); off when neither is set.
        self.self_fence: SelfFence | None = None
        if self_fence_after > 0 or lease_dir:
            self.self_fence = SelfFence(
                driver,
                self_fence_after,
                state_dir / "agent" / "self-fenced",
                Path(lease_dir) / self.id if lease_dir else None,
            )
            if driver is not None:
                self.driver = guard(driver, self.self_fence)
        self._fence_thread: threading.Thread | None = None
        self.images = ImageCache(self._client, self.api, state_dir / "agent" / "images")
        self._builder: SpecBuilder = minimal_spec
        self._rescue_builder: SpecBuilder = minimal_spec
        if driver is not None and driver.name == "qemu":
            builder = QemuSpecBuilder(
                self.images,
                Path(getattr(driver, "state_dir", state_dir / "agent")),
                force_config_drive,
                # Only a real datapath makes taps; with none (or the fake) guests get no NIC
                # rather than a tap QEMU would create in the root namespace.
                nic_namespace=(
                    self.network_local.nic_namespace()
                    if network_driver is not None and network_driver.name == "linux"
                    else None
                ),
                volume_backends=self.volume_backends,
            )
            self._builder, self._rescue_builder = builder, builder.rescue

    def registration(self) -> dict[str, Any]:
        return {
            "host": {
                "id": self.id,
                "name": self.name,
                "agent_version": kumo.__version__,
                "agent_api_versions": list(AGENT_API_VERSIONS),
                "capabilities": {
                    **capabilities(),
                    **self._network_capabilities(),
                    **self._volume_capabilities(),
                    **(
                        {"hypervisor": {"driver": self.driver.name, **self.driver.capabilities()}}
                        if self.driver is not None
                        else {}
                    ),
                },
                "inventory": inventory(self.state_dir, self.inventory_override),
                "load": host_load().to_dict(),
            }
        }

    def _network_capabilities(self) -> dict[str, Any]:
        """The network types this host's kernel carries (a port of another type is never
        bound here) and its underlay address (VXLAN peers reach it there)."""
        if self.network_driver is None:
            return {}
        caps = self.network_driver.capabilities().to_dict()
        underlay = self.network_local.underlay
        return {
            "network": {
                "driver": self.network_driver.name,
                **caps,
                "underlay_ip": underlay.local_ip if underlay else None,
                "physical_networks": sorted(self.network_local.physical_networks),
            }
        }

    def _volume_capabilities(self) -> dict[str, Any]:
        """Each backend's size (the API promises up to its over-subscription ratio of it)."""
        if not self.volume_backends:
            return {}
        offered = {}
        for name, backend in self.volume_backends.items():
            try:
                capacity = backend.capacity()
            except (VolumeBackendError, OSError) as exc:
                # The host still registers; this backend takes no new volumes until fixed.
                log.warning("volume backend %s: cannot read its capacity: %s", name, exc)
                continue
            offered[name] = {
                **backend.capabilities(),
                "total_gb": capacity.total_gb,
                "free_gb": capacity.free_gb,
            }
        return {"volume_backends": offered}

    def register(self) -> None:
        response = self._client.post(f"{self.api}/hosts", json=self.registration())
        response.raise_for_status()
        self.registered = True
        self._renewed(response)
        log.info("registered host %s (%s)", self.name, self.id)

    def _renewed(self, response: httpx.Response) -> None:
        if self.self_fence is not None:
            try:
                forced_down = bool(response.json()["host"].get("forced_down", False))
            except (ValueError, KeyError, TypeError, AttributeError):
                forced_down = False  # an API older than the flag: it never forces
            self.self_fence.renewed(forced_down)

    def heartbeat(self) -> None:
        response = self._client.post(
            f"{self.api}/hosts/{self.id}/heartbeat", json={"load": host_load().to_dict()}
        )
        if response.status_code == 404:
            self.registered = False
            self.register()
            return
        response.raise_for_status()
        self._renewed(response)

    def step(self) -> None:
        """One iteration: register if needed, else heartbeat. Errors are logged, not fatal:
        the control plane may be restarting."""
        try:
            if self.registered:
                self.heartbeat()
            else:
                self.register()
        except httpx.HTTPStatusError as exc:
            log.warning(
                "agent API answered %s: %s", exc.response.status_code, exc.response.text[:300]
            )
        except httpx.HTTPError as exc:
            # At start the API may still be coming up: only a lasting outage is a warning.
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            level = logging.WARNING if now - self._unreachable_since > 10 else logging.DEBUG
            log.log(level, "agent API unreachable at %s: %s", self.api, exc)
            return
        self._unreachable_since = 0.0

    def _start_compute(self, stop: threading.Event) -> None:
        """Once registered, reconcile this host's servers in a loop of their own."""
        if self.driver is None or self._compute_thread is not None or not self.registered:
            return
        loop = ComputeLoop(
            self._client,
            self.api,
            self.id,
            self.driver,
            build_spec=self.build_spec,
            build_rescue=self._rescue_builder,
            scratch_dir=self.state_dir / "agent" / "snapshots",
            console_interval=self.console_interval,
            volume_backends=self.volume_backends,
        )
        self._compute_thread = threading.Thread(
            target=loop.run, args=(stop,), name="compute", daemon=True
        )
        self._compute_thread.start()

    def _start_volumes(self, stop: threading.Event) -> None:
        """Once registered, keep the host's volumes and snapshots converged."""
        if not self.volume_backends or self._volume_thread is not None or not self.registered:
            return
        loop = VolumeLoop(
            self._client,
            self.api,
            self.id,
            self.volume_backends,
            fetch_image=self._fetch_image,
            scratch_dir=self.state_dir / "agent" / "uploads",
        )
        self._volume_thread = threading.Thread(
            target=loop.run, args=(stop,), name="volumes", daemon=True
        )
        self._volume_thread.start()

    def _fetch_image(self, image_id: str) -> tuple[Path, str]:
        cached = self.images.get(image_id)
        return cached.path, cached.disk_format

    def _start_network(self, stop: threading.Event) -> None:
        """Once registered, keep the host's datapath converged in a loop of its own."""
        if self.network_driver is None or self._network_thread is not None or not self.registered:
            return
        self._network = NetworkLoop(
            self._client, self.api, self.id, self.network_driver, self.network_local
        )
        self._network_thread = threading.Thread(
            target=self._network.run, args=(stop,), name="network", daemon=True
        )
        self._network_thread.start()

    def build_spec(self, item: dict[str, Any]) -> GuestSpec:
        """Root disk, kernel and config drive for the qemu driver; the fake needs none. A
        guest with NICs needs its taps first: the datapath is brought up to date."""
        if item.get("nics") and self._network is not None:
            self._network.sync_once()
        spec = self._builder(item)
        volumes = start_disks(self.volume_backends, item)
        if volumes:
            spec = dataclasses.replace(spec, extra_disks=spec.extra_disks + volumes)
        return spec

    def _start_self_fence(self, stop: threading.Event) -> None:
        """Once registered (the clock starts at the first answer), watch the heartbeat."""
        if self.self_fence is None or self._fence_thread is not None or not self.registered:
            return
        self._fence_thread = threading.Thread(
            target=self.self_fence.run, args=(stop,), name="self-fence", daemon=True
        )
        self._fence_thread.start()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()
            self._start_self_fence(stop)
            self._start_network(stop)
            self._start_compute(stop)
            self._start_volumes(stop)
            # Until registered, retry quickly: the API may still be starting.
            stop.wait(self.interval if self.registered else min(self.interval, 1.0))
        if self._compute_thread is not None:
            self._compute_thread.join(30)
        if self._network_thread is not None:
            self._network_thread.join(30)
        if self._volume_thread is not None:
            self._volume_thread.join(30)
        self._client.close()

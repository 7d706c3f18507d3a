"""Volumes plugged into this host's guests: the compute loop's part of an attachment.

The API lists, with each server, the volumes it should have (``attaching``: plug it in;
``attached``: keep it; ``detaching``: take it out). The volume's backend on this host says
where its data is; the hypervisor driver hot-plugs or unplugs it (or changes the spec of a
shut-off guest). Each outcome is reported per attachment; a failure is the request's, not
the server's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from kumo.drivers.hypervisor.base import DiskSpec, HypervisorDriver, HypervisorError, PowerState
from kumo.drivers.storage.volumes.base import VolumeBackend, VolumeBackendError

log = logging.getLogger(__name__)
UNPLUG_TRIES = 6  # passes (each waits up to 30 s for the guest) before a detach fails


def disk_spec(backend: VolumeBackend, disk: dict[str, Any]) -> DiskSpec:
    """How the guest gets the volume: its backend's connection, the volume id as serial."""
    connection = backend.connection(disk["volume_id"])
    return DiskSpec(
        path=str(connection.path),
        format=connection.format,
        readonly=bool(disk.get("readonly")),
        serial=disk["volume_id"],
        kind="block" if connection.kind == "block" else "file",
    )


def start_disks(
    backends: Mapping[str, VolumeBackend], item: dict[str, Any]
) -> tuple[DiskSpec, ...]:
    """The volumes a guest starts with (spawn, rebuild, unshelve, boot from volume), in
    the order of the device names the API gave them: the driver slots them in this order,
    and the guest's kernel names disks in slot order (vdc before vdd, vdz before vdaa)."""
    result = []
    volumes = item.get("volumes", [])
    for disk in sorted(volumes, key=lambda d: (len(d.get("device") or ""), d.get("device") or "")):
        backend = backends.get(disk["backend"])
        if disk.get("boot_index") == 0:
            continue  # the root disk, not an extra one
        if backend is not None and disk["status"] in ("attaching", "attached"):
            try:
                result.append(disk_spec(backend, disk))
            except VolumeBackendError as exc:
                log.warning("server %s: volume %s: %s", item["id"], disk["volume_id"], exc)
    return tuple(result)


class GuestDisks:
    def __init__(
        self,
        client: httpx.Client,
        base: str,
        driver: HypervisorDriver,
        backends: Mapping[str, VolumeBackend],
    ) -> None:
        self.client = client
        self.base = base
        self.driver = driver
        self.backends = backends
        # Unplug requests a guest has not answered yet, per attachment: retried on later
        # passes (a guest still booting misses the first), as Nova retries a detach.
        self._unplug_tries: dict[str, int] = {}

    def sync(self, item: dict[str, Any]) -> None:
        """Plug and unplug what the API asks; an attached volume the guest lost (a rebuild
        started it over) is plugged again."""
        uuid = item["id"]
        if self.driver.get_state(uuid).power_state == PowerState.NOSTATE:
            return  # no guest (yet): it gets its volumes when it is spawned
        have = {d.serial for d in self.driver.disks(uuid)}
        for disk in item.get("volumes", []):
            status, volume_id = disk["status"], disk["volume_id"]
            if disk.get("volume_status") in ("creating", "downloading"):
                continue  # made for this server, not there yet: plugged once it is
            if disk.get("boot_index") == 0:
                if status == "attaching":  # the guest runs from it: attached
                    self._outcome(disk, "done", None)
                continue
            if status == "attached" and volume_id in have:
                continue
            try:
                backend = self.backends.get(disk["backend"])
                if backend is None:
                    raise VolumeBackendError(
                        f"this host does not serve the {disk['backend']} backend"
                    )
                if status in ("attaching", "attached"):
                    self.driver.attach_disk(uuid, disk_spec(backend, disk))
                elif status == "detaching":
                    self.driver.detach_disk(uuid, volume_id)
                    backend.disconnect(volume_id)
                else:
                    continue
            except (HypervisorError, VolumeBackendError) as exc:
                log.warning("server %s: volume %s: %s failed: %s", uuid, volume_id, status, exc)
                if status == "detaching" and self._retry_unplug(disk["attachment_id"]):
                    continue
                if status != "attached":
                    self._outcome(disk, "error", str(exc) or exc.__class__.__name__)
                continue
            self._unplug_tries.pop(disk["attachment_id"], None)
            if status != "attached":
                self._outcome(disk, "done", None)

    def pending(self, item: dict[str, Any]) -> bool:
        """A volume of this server is on its way in or out (retried on every pass)."""
        return any(d["status"] in ("attaching", "detaching") for d in item.get("volumes", []))

    def _retry_unplug(self, attachment_id: str) -> bool:
        tries = self._unplug_tries.get(attachment_id, 0) + 1
        if tries >= UNPLUG_TRIES:
            self._unplug_tries.pop(attachment_id, None)
            return False
        self._unplug_tries[attachment_id] = tries
        return True

    def _outcome(self, disk: dict[str, Any], outcome: str, fault: str | None) -> None:
        response = self.client.post(
            f"{self.base}/attachments/{disk['attachment_id']}/outcome",
            json={"outcome": outcome, "fault": fault},
        )
        if response.status_code not in (204, 404):
            response.raise_for_status()


def root_volume(item: dict[str, Any]) -> dict[str, Any] | None:
    """The volume a server boots from (boot_index 0), if it has one."""
    return next((d for d in item.get("volumes", []) if d.get("boot_index") == 0), None)

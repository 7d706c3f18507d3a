"""The `raw` backend: one raw file per volume, sparse (thin) or, with ``preallocate``,
with its space reserved up front (thick, ``fallocate``), so a full disk cannot surprise a
guest mid-write.

With ``loop_device``, `connection` hands the hypervisor a loop block device over the file
instead of the file itself (as a block-storage target would hand it a device); the
device is found again with ``losetup -j``, so asking twice, or after an agent restart,
answers the same device.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from kumo.drivers.storage.volumes.base import Connection, VolumeBackendError
from kumo.drivers.storage.volumes.local import LocalBackend

log = logging.getLogger(__name__)

LOSETUP_TIMEOUT = 30.0


def loop_device_problem() -> str | None:
    """Why loop devices cannot be used on this host, or None when they can. Asked at start
    (LAB.md: detect capabilities, never assume them)."""
    if shutil.which("losetup") is None:
        return "losetup is not installed (util-linux)"
    if os.geteuid() != 0:
        return "attaching loop devices needs root"
    if not Path("/dev/loop-control").exists():
        return "no /dev/loop-control: this kernel has no loop driver"
    try:
        _losetup("--find")  # prints the first free device; attaches nothing
    except VolumeBackendError as exc:
        return str(exc)
    return None


def _losetup(*args: str) -> str:
    try:
        done = subprocess.run(
            ["losetup", *args],
            capture_output=True,
            text=True,
            timeout=LOSETUP_TIMEOUT,
            env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VolumeBackendError(f"losetup {' '.join(args)} could not run: {exc}") from exc
    if done.returncode != 0:
        raise VolumeBackendError(f"losetup {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def loop_devices_of(path: Path) -> list[str]:
    """The loop devices attached to `path` (``losetup -j`` matches the file's device and
    inode, so a new file at the same path is not confused with a deleted one)."""
    out = _losetup("-j", str(path))
    return [line.split(":", 1)[0] for line in out.splitlines() if line.startswith("/dev/")]


class RawBackend(LocalBackend):
    """VolumeBackend on raw files."""

    name = "raw"
    format = "raw"
    ext = "raw"

    def __init__(self, root: Path, preallocate: bool = False, loop_device: bool = False) -> None:
        if loop_device and (problem := loop_device_problem()):
            raise VolumeBackendError(f"raw backend with loop_device=True: {problem}")
        super().__init__(root, preallocate)
        self.loop_device = loop_device
        self._loop_lock = threading.Lock()

    def _measure(self, path: Path) -> tuple[int, int]:
        """A raw file's virtual size is its length; no qemu-img needed (cheap for a
        capacity report over many volumes)."""
        stat = path.stat()
        return stat.st_size, stat.st_blocks * 512

    def capabilities(self) -> dict[str, Any]:
        return {**super().capabilities(), "loop_device": self.loop_device}

    def connection(self, volume_id: str) -> Connection:
        path = self._existing_volume(volume_id)
        if not self.loop_device:
            return Connection(str(path), self.format, "file")
        with self._loop_lock:
            attached = loop_devices_of(path)
            if attached:
                return Connection(attached[0], self.format, "block")
            device = _losetup("--find", "--show", str(path)).strip()
        log.info("volume %s attached as %s", volume_id, device)
        return Connection(device, self.format, "block")

    def disconnect(self, volume_id: str) -> None:
        path = self._volume_path(volume_id)
        if not self.loop_device or not path.exists():
            return
        with self._loop_lock:
            for device in loop_devices_of(path):
                # A device still open (a running guest) is detached when it is closed.
                _losetup("-d", device)
                log.info("volume %s detached from %s", volume_id, device)

    def _grown(self, volume_id: str) -> None:
        """A loop device keeps the size it was set up with until told to look again."""
        if not self.loop_device:
            return
        with self._loop_lock:
            for device in loop_devices_of(self._volume_path(volume_id)):
                _losetup("--set-capacity", device)

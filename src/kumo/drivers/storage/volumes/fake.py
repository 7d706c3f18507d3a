"""The `fake` backend: the same contract as the real ones, with no data behind it.

For scale tests (thousands of volumes on one machine) and hosts with no qemu-img. It keeps
sizes and the snapshot -> volume relation in one small JSON file under its root, written
whole under a temporary name and renamed, so an agent restarted on the same directory finds
its volumes again, as it would find real files. It checks everything the real backends
check (ids, sizes, not-found, never shrinking, sources that exist and fit), so the same
contract tests pass; only the bytes are missing.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import uuid as _uuid
from pathlib import Path
from typing import Any

from kumo.drivers import disks
from kumo.drivers.storage.volumes.base import (
    GIB,
    IMAGE_FORMATS,
    Capacity,
    Connection,
    SnapshotInfo,
    SnapshotNotFound,
    VolumeBackendError,
    VolumeInfo,
    VolumeNotFound,
    canonical_id,
    check_format,
    check_size,
    size_gb_of,
)

log = logging.getLogger(__name__)

STATE_FILE = "fake-volumes.json"
QCOW2_MAGIC = b"QFI\xfb"

# One lock per root in this process: two backend objects on one directory (an agent
# restarted in-process, a test) must not interleave their read-modify-write of the file.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock(root: Path) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(str(root.resolve()), threading.Lock())


def image_virtual_size(path: Path, image_format: str) -> int:
    """An image's virtual size without qemu-img: a raw file's length, or the size field of
    a qcow2 header (big-endian u64 at offset 24). A qcow2 image naming a backing file
    (offset 8) is refused, as the real backends refuse it."""
    try:
        if image_format == "raw":
            return path.stat().st_size
        with path.open("rb") as image:
            header = image.read(32)
    except OSError as exc:
        raise VolumeBackendError(f"cannot read image {path}: {exc}") from exc
    if len(header) < 32 or header[:4] != QCOW2_MAGIC:
        raise VolumeBackendError(f"image {path} is not a qcow2 image")
    backing_offset, size = (
        struct.unpack(">Q", header[8:16])[0],
        struct.unpack(">Q", header[24:32])[0],
    )
    if backing_offset:
        raise VolumeBackendError(f"image {path} names a backing file; only standalone images")
    return int(size)


class FakeBackend:
    """VolumeBackend with no data: instant, and persistent across restarts."""

    name = "fake"

    def __init__(self, root: Path, total_gb: int = 10240) -> None:
        self.root = Path(root)
        self.total_gb = total_gb
        self.root.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / STATE_FILE
        self._lock = _lock(self.root)

    # -- state ---------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            state: dict[str, dict[str, Any]] = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as exc:
            raise VolumeBackendError(f"cannot read {self._state_path}: {exc}") from exc
        state.setdefault("volumes", {})
        state.setdefault("snapshots", {})
        return state

    def _save(self, state: dict[str, dict[str, Any]]) -> None:
        tmp = self._state_path.with_name(f".{STATE_FILE}.{_uuid.uuid4().hex[:12]}.partial")
        try:
            tmp.write_text(json.dumps(state, sort_keys=True))
            tmp.replace(self._state_path)
        except OSError as exc:
            raise VolumeBackendError(f"cannot write {self._state_path}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _path(self, kind: str, ident: str) -> str:
        """A would-be file name, so paths look like the real backends' (nothing is there)."""
        return str(self.root / f"{kind}-{ident}.fake")

    def _volume(self, state: dict[str, dict[str, Any]], volume_id: str) -> VolumeInfo:
        try:
            size = int(state["volumes"][volume_id]["size_gb"])
        except KeyError:
            raise VolumeNotFound(f"no volume {volume_id} in backend {self.name}") from None
        return VolumeInfo(volume_id, size, 0, "raw", self._path("volume", volume_id))

    def _snapshot(self, state: dict[str, dict[str, Any]], snapshot_id: str) -> SnapshotInfo:
        try:
            size = int(state["snapshots"][snapshot_id]["size_gb"])
        except KeyError:
            raise SnapshotNotFound(f"no snapshot {snapshot_id} in backend {self.name}") from None
        return SnapshotInfo(snapshot_id, size, 0, "raw", self._path("snapshot", snapshot_id))

    def _add(self, volume_id: str, size_gb: int, origin: dict[str, Any]) -> VolumeInfo:
        """Record a volume (under the lock); one that exists is answered as it is."""
        with self._lock:
            state = self._load()
            if volume_id not in state["volumes"]:
                state["volumes"][volume_id] = {"size_gb": size_gb, **origin}
                self._save(state)
            return self._volume(state, volume_id)

    @staticmethod
    def _fits(what: str, source_gb: int, size_gb: int) -> None:
        if source_gb > size_gb:
            raise VolumeBackendError(
                f"{what} is {source_gb} GiB; it does not fit in a volume of {size_gb} GiB"
            )

    # -- the interface ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "thin": False,
            "snapshots": True,
            "clone": True,
            "formats": ["raw"],
            "image_formats": list(IMAGE_FORMATS),
            "online_extend": False,
        }

    def capacity(self) -> Capacity:
        with self._lock:
            state = self._load()
        provisioned = sum(int(v["size_gb"]) for v in state["volumes"].values()) + sum(
            int(s["size_gb"]) for s in state["snapshots"].values()
        )
        return Capacity(
            total_gb=float(self.total_gb),
            free_gb=float(max(self.total_gb - provisioned, 0)),
            provisioned_gb=provisioned,
        )

    def create(self, volume_id: str, size_gb: int) -> VolumeInfo:
        return self._add(canonical_id(volume_id), check_size(size_gb), {})

    def create_from_image(
        self, volume_id: str, size_gb: int, image_path: Path, image_format: str
    ) -> VolumeInfo:
        volume_id = canonical_id(volume_id)
        check_size(size_gb)
        check_format(image_format, "image format")
        if self.exists(volume_id):
            return self.info(volume_id)
        virtual = image_virtual_size(Path(image_path), image_format)
        self._fits(f"image {image_path}", size_gb_of(virtual), size_gb)
        return self._add(volume_id, size_gb, {"image": str(image_path)})

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> VolumeInfo:
        volume_id = canonical_id(volume_id)
        snapshot_id = canonical_id(snapshot_id, "snapshot")
        check_size(size_gb)
        with self._lock:
            state = self._load()
            if volume_id in state["volumes"]:
                return self._volume(state, volume_id)
            snapshot = self._snapshot(state, snapshot_id)
        self._fits(f"snapshot {snapshot_id}", snapshot.size_gb, size_gb)
        return self._add(volume_id, size_gb, {"snapshot": snapshot_id})

    def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> VolumeInfo:
        volume_id = canonical_id(volume_id)
        source_volume_id = canonical_id(source_volume_id)
        check_size(size_gb)
        if volume_id == source_volume_id:
            raise VolumeBackendError(f"volume {volume_id} cannot be a clone of itself")
        with self._lock:
            state = self._load()
            if volume_id in state["volumes"]:
                return self._volume(state, volume_id)
            source = self._volume(state, source_volume_id)
        self._fits(f"volume {source_volume_id}", source.size_gb, size_gb)
        return self._add(volume_id, size_gb, {"source": source_volume_id})

    def delete(self, volume_id: str) -> None:
        volume_id = canonical_id(volume_id)
        with self._lock:
            state = self._load()
            if state["volumes"].pop(volume_id, None) is not None:
                self._save(state)

    def extend(self, volume_id: str, new_size_gb: int) -> VolumeInfo:
        volume_id = canonical_id(volume_id)
        check_size(new_size_gb, "new_size_gb")
        with self._lock:
            state = self._load()
            current = self._volume(state, volume_id)
            if new_size_gb < current.size_gb:
                raise VolumeBackendError(
                    f"volume {volume_id} is {current.size_gb} GiB; extending it to "
                    f"{new_size_gb} GiB would shrink it (volumes never shrink)"
                )
            if new_size_gb == current.size_gb:
                return current
            state["volumes"][volume_id]["size_gb"] = new_size_gb
            self._save(state)
            return self._volume(state, volume_id)

    def exists(self, volume_id: str) -> bool:
        volume_id = canonical_id(volume_id)
        with self._lock:
            return volume_id in self._load()["volumes"]

    def info(self, volume_id: str) -> VolumeInfo:
        volume_id = canonical_id(volume_id)
        with self._lock:
            return self._volume(self._load(), volume_id)

    def list_volumes(self) -> list[str]:
        with self._lock:
            return sorted(self._load()["volumes"])

    def create_snapshot(self, snapshot_id: str, volume_id: str) -> SnapshotInfo:
        snapshot_id = canonical_id(snapshot_id, "snapshot")
        volume_id = canonical_id(volume_id)
        with self._lock:
            state = self._load()
            if snapshot_id not in state["snapshots"]:
                volume = self._volume(state, volume_id)
                state["snapshots"][snapshot_id] = {"size_gb": volume.size_gb, "volume": volume_id}
                self._save(state)
            return self._snapshot(state, snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        snapshot_id = canonical_id(snapshot_id, "snapshot")
        with self._lock:
            state = self._load()
            if state["snapshots"].pop(snapshot_id, None) is not None:
                self._save(state)

    def snapshot_info(self, snapshot_id: str) -> SnapshotInfo:
        snapshot_id = canonical_id(snapshot_id, "snapshot")
        with self._lock:
            return self._snapshot(self._load(), snapshot_id)

    def list_snapshots(self) -> list[str]:
        with self._lock:
            return sorted(self._load()["snapshots"])

    def connection(self, volume_id: str) -> Connection:
        volume = self.info(volume_id)
        return Connection(volume.path, "raw", "fake")

    def disconnect(self, volume_id: str) -> None:
        canonical_id(volume_id)

    def copy_to_image(self, volume_id: str, target_path: Path, disk_format: str) -> None:
        """An empty image of the volume's size (there is no data to copy): raw needs no
        qemu-img (a sparse file), qcow2 does."""
        volume = self.info(volume_id)
        check_format(disk_format, "image disk format")
        target = Path(target_path)
        tmp = target.with_name(f".{target.name}.{_uuid.uuid4().hex[:12]}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if disk_format == "raw":
                with tmp.open("wb") as image:
                    image.truncate(volume.size_gb * GIB)
            else:
                disks.create_blank(tmp, volume.size_gb * GIB, "qcow2")
            os.replace(tmp, target)
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(
                f"copying volume {volume_id} to image {target} failed: {exc}"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)

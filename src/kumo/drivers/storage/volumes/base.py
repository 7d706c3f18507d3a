"""The one interface every volume backend implements, the plain data it answers with, and
the checks every backend makes the same way.

The agent reconciles desired against observed state, so every call is idempotent and keyed
by UUIDs the control plane chose: creating what exists answers what is there, deleting what
is absent succeeds. The UUIDs become file names, so they are validated before any path is
built from them. Sizes are in GiB, as Cinder counts them.
"""

from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

GIB = 1024**3

# What create_from_image reads and copy_to_image writes: the formats the agent boots from
# (kumo.agent.spec.DISK_FORMATS). Other formats (vmdk with its flat extents naming host
# files, for one) are refused rather than handed to qemu-img to interpret.
IMAGE_FORMATS = ("raw", "qcow2")


class VolumeBackendError(RuntimeError):
    """A backend could not do what was asked; the message says what, on which file, and
    why (qemu-img's own words), for the volume's error status and the operator."""


class VolumeNotFound(VolumeBackendError):
    """The backend has no volume with this UUID."""


class SnapshotNotFound(VolumeBackendError):
    """The backend has no snapshot with this UUID."""


@dataclass(frozen=True)
class Capacity:
    """What the scheduler weighs: the pool's size and free space (GiB, as the file system
    says) and how much has been promised (the sum of virtual sizes of volumes and
    snapshots; above `total_gb` on a thin backend means over-subscription)."""

    total_gb: float
    free_gb: float
    provisioned_gb: int


@dataclass(frozen=True)
class VolumeInfo:
    """One observation of a volume: `size_gb` is the virtual size the guest sees,
    `allocated_bytes` what it takes on the host (less than that when thin)."""

    id: str
    size_gb: int
    allocated_bytes: int
    format: str
    path: str


@dataclass(frozen=True)
class SnapshotInfo:
    """One observation of a snapshot: a standalone copy of its volume at the time."""

    id: str
    size_gb: int
    allocated_bytes: int
    format: str
    path: str


ConnectionKind = Literal["file", "block", "fake"]


@dataclass(frozen=True)
class Connection:
    """What a hypervisor needs to attach a volume: a disk image file (`kind` ``file``,
    `format` qcow2 or raw) or a host block device (``block``, always raw). The fake
    backend answers ``fake``: there is nothing a real hypervisor could open."""

    path: str
    format: str
    kind: ConnectionKind


@runtime_checkable
class VolumeBackend(Protocol):
    """What the agent may ask of the block storage on its host.

    Every mutating call is idempotent. Unknown ids raise `VolumeNotFound` (or
    `SnapshotNotFound`), except `delete`/`delete_snapshot` (already gone is success),
    `exists` and `disconnect`. A volume or snapshot is whole or absent: a backend builds it
    under a temporary name and publishes it only once it is complete, so a crash mid-way
    never leaves a half-made volume under its final name.

    Copies (`create_from_snapshot`, `clone`, `create_snapshot`, `copy_to_image`) are full
    and independent, never backing-file chains, so deleting the source later cannot break
    them. They read the source with qemu-img's force-share (``-U``), because the source
    may be attached to a running guest whose QEMU holds a lock on it (Cinder's forced
    snapshot of an in-use volume): such a copy is crash-consistent at best, and only for
    what the guest has flushed; a qcow2 source whose metadata changes during the copy can
    make it fail (try again, or quiesce the guest first).
    """

    name: str

    def capabilities(self) -> dict[str, Any]:
        """What this backend offers here (``backend``, ``thin``, ``snapshots``, ``formats``,
        ...), for host registration and volume-type matching."""
        ...

    def capacity(self) -> Capacity: ...

    def create(self, volume_id: str, size_gb: int) -> VolumeInfo:
        """An empty volume of `size_gb`; one that exists is answered as it is."""
        ...

    def create_from_image(
        self, volume_id: str, size_gb: int, image_path: Path, image_format: str
    ) -> VolumeInfo:
        """The image converted into the backend's format and grown to `size_gb`. Refused
        when the image is bigger than `size_gb`, or names a backing or data file."""
        ...

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> VolumeInfo:
        """A full copy of the snapshot, grown to `size_gb` (never smaller than it)."""
        ...

    def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> VolumeInfo:
        """A full copy of another volume, grown to `size_gb` (never smaller than it)."""
        ...

    def delete(self, volume_id: str) -> None:
        """Remove the volume (detaching a loop device first); absent is success."""
        ...

    def extend(self, volume_id: str, new_size_gb: int) -> VolumeInfo:
        """Grow the volume to `new_size_gb`; the same size is a no-op, smaller raises.
        Offline only: a volume a running QEMU holds is grown by QEMU (``block_resize``)."""
        ...

    def exists(self, volume_id: str) -> bool: ...

    def info(self, volume_id: str) -> VolumeInfo: ...

    def list_volumes(self) -> list[str]:
        """The UUIDs of every volume here (for the agent to reconcile after a restart)."""
        ...

    def create_snapshot(self, snapshot_id: str, volume_id: str) -> SnapshotInfo:
        """A standalone copy of the volume, readable while the volume is in use."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...

    def snapshot_info(self, snapshot_id: str) -> SnapshotInfo: ...

    def list_snapshots(self) -> list[str]: ...

    def connection(self, volume_id: str) -> Connection:
        """How a hypervisor attaches the volume; asked again, the same answer."""
        ...

    def disconnect(self, volume_id: str) -> None:
        """Undo what `connection` set up on the host (a loop device); nothing otherwise."""
        ...

    def copy_to_image(self, volume_id: str, target_path: Path, disk_format: str) -> None:
        """Write the volume as one standalone image file (raw or qcow2) at `target_path`
        (Cinder's upload-to-image); `target_path` is whole or absent."""
        ...


def canonical_id(value: str, what: str = "volume") -> str:
    """The UUID in canonical form. Ids become file names, so anything else is refused
    before a path is built from it."""
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(_uuid.UUID(value))
    except ValueError:
        raise VolumeBackendError(f"{what} id is not a UUID: {value!r}") from None


def check_size(size_gb: int, what: str = "size_gb") -> int:
    """A whole, positive number of GiB (bool is an int to Python, not a size)."""
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb < 1:
        raise VolumeBackendError(f"{what} must be a whole number of GiB >= 1, not {size_gb!r}")
    return size_gb


def check_format(fmt: str, what: str) -> str:
    if fmt not in IMAGE_FORMATS:
        raise VolumeBackendError(
            f"{what} {fmt!r} is not supported (supported: {', '.join(IMAGE_FORMATS)})"
        )
    return fmt


def size_gb_of(size_bytes: int) -> int:
    """Virtual bytes as whole GiB, rounded up: an image of 1.5 GiB needs a 2 GiB volume."""
    return -(-size_bytes // GIB)

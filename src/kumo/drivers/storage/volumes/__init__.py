"""Block-storage volume backends (Cinder's volume drivers): one interface (base.py), a
registry, and the backends `file` (qcow2), `raw` and `fake`."""

from kumo.drivers.storage.volumes.base import (
    Capacity,
    Connection,
    SnapshotInfo,
    SnapshotNotFound,
    VolumeBackend,
    VolumeBackendError,
    VolumeInfo,
    VolumeNotFound,
)
from kumo.drivers.storage.volumes.registry import available, create

__all__ = [
    "Capacity",
    "Connection",
    "SnapshotInfo",
    "SnapshotNotFound",
    "VolumeBackend",
    "VolumeBackendError",
    "VolumeInfo",
    "VolumeNotFound",
    "available",
    "create",
]

"""The `file` backend: one qcow2 file per volume, thin (space is taken as the guest writes).

Snapshots and clones are standalone qcow2 copies rather than overlays: a volume made from a
snapshot must outlive the snapshot (Cinder deletes them independently), and a backing
chain would tie them together.
"""

from __future__ import annotations

from pathlib import Path

from kumo.drivers.storage.volumes.local import LocalBackend


class FileBackend(LocalBackend):
    """VolumeBackend on qcow2 files; extended with ``qemu-img resize``."""

    name = "file"
    format = "qcow2"
    ext = "qcow2"

    def __init__(self, root: Path) -> None:
        super().__init__(root)

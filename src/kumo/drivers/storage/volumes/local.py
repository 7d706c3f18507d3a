"""What the `file` and `raw` backends share: one image file per volume and per snapshot in
the backend's root directory, made and copied by qemu-img (kumo.drivers.disks).

Layout: ``volume-<uuid>.<ext>``, ``snapshot-<uuid>.<ext>``. Everything is built under a
hidden temporary name (``.volume-<uuid>.<ext>.<random>.partial``), flushed to disk, and
published with a hard link, which, unlike a rename, never replaces a volume that appeared
meanwhile (a concurrent retry of the same create): the first complete copy wins, the other
is dropped. A crash leaves at most a hidden partial file, which the listing ignores and
`delete` removes.
"""

from __future__ import annotations

import logging
import os
import uuid as _uuid
from collections.abc import Callable
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


class LocalBackend:
    """The machinery of a file-per-volume backend; subclasses set the format and may
    measure files more cheaply (`_measure`) or attach them differently (`connection`)."""

    name = ""
    format = ""  # the qemu-img format of every file here
    ext = ""

    def __init__(self, root: Path, preallocate: bool = False) -> None:
        self.root = Path(root)
        self.preallocate = preallocate
        self.root.mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------------

    def _path(self, kind: str, ident: str) -> Path:
        return self.root / f"{kind}-{ident}.{self.ext}"

    def _volume_path(self, volume_id: str) -> Path:
        return self._path("volume", canonical_id(volume_id))

    def _snapshot_path(self, snapshot_id: str) -> Path:
        return self._path("snapshot", canonical_id(snapshot_id, "snapshot"))

    def _existing_volume(self, volume_id: str) -> Path:
        path = self._volume_path(volume_id)
        if not path.exists():
            raise VolumeNotFound(f"no volume {volume_id} in backend {self.name} ({path})")
        return path

    def _existing_snapshot(self, snapshot_id: str) -> Path:
        path = self._snapshot_path(snapshot_id)
        if not path.exists():
            raise SnapshotNotFound(f"no snapshot {snapshot_id} in backend {self.name} ({path})")
        return path

    def _list(self, kind: str) -> list[str]:
        found = []
        for path in self.root.glob(f"{kind}-*.{self.ext}"):
            ident = path.name[len(kind) + 1 : -len(self.ext) - 1]
            try:
                if str(_uuid.UUID(ident)) == ident:
                    found.append(ident)
            except ValueError:
                continue  # not ours: never guess at a file we did not name
        return sorted(found)

    @property
    def _preallocation(self) -> str | None:
        return "falloc" if self.preallocate else None

    # -- measuring ---------------------------------------------------------------------

    def _measure(self, path: Path) -> tuple[int, int]:
        """(virtual size, allocated bytes) of one of our files; -U: it may be in use."""
        found = disks.info(path, force_share=True, fmt=self.format)
        return found.virtual_size, found.actual_size

    def _volume_info(self, volume_id: str, path: Path) -> VolumeInfo:
        try:
            virtual, allocated = self._measure(path)
        except FileNotFoundError:
            raise VolumeNotFound(f"no volume {volume_id} in backend {self.name}") from None
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(f"cannot read volume {volume_id} ({path}): {exc}") from exc
        return VolumeInfo(volume_id, size_gb_of(virtual), allocated, self.format, str(path))

    def _snapshot_info(self, snapshot_id: str, path: Path) -> SnapshotInfo:
        try:
            virtual, allocated = self._measure(path)
        except FileNotFoundError:
            raise SnapshotNotFound(f"no snapshot {snapshot_id} in backend {self.name}") from None
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(f"cannot read snapshot {snapshot_id} ({path}): {exc}") from exc
        return SnapshotInfo(snapshot_id, size_gb_of(virtual), allocated, self.format, str(path))

    # -- building under a temporary name ----------------------------------------------------

    def _build(self, final: Path, what: str, make: Callable[[Path], object]) -> bool:
        """Run `make(tmp)` and publish tmp as `final`. False when `final` appeared meanwhile
        (the other copy is kept). Any failure removes the partial file and raises
        VolumeBackendError naming `what` and the file."""
        tmp = final.with_name(f".{final.name}.{_uuid.uuid4().hex[:12]}.partial")
        try:
            make(tmp)
            _flush(tmp)
            try:
                os.link(tmp, final)
            except FileExistsError:
                log.info("%s: %s appeared meanwhile; keeping it", what, final)
                return False
            _flush_dir(final.parent)
            log.info("%s: published %s", what, final)
            return True
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(f"{what} failed ({final}): {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _copy(self, final: Path, what: str, source: Path, size_gb: int | None) -> None:
        """A full copy of one of our files (flattened, force-share read), grown to
        `size_gb` when given."""

        def make(tmp: Path) -> None:
            disks.convert(
                source,
                tmp,
                self.format,
                source_format=self.format,
                force_share=True,
                preallocation=self._preallocation,
            )
            if size_gb is not None:
                disks.grow_to(tmp, size_gb * GIB, self.format, self._preallocation)

        self._build(final, what, make)

    def _check_fits(self, what: str, source_bytes: int, size_gb: int) -> None:
        if source_bytes > size_gb * GIB:
            raise VolumeBackendError(
                f"{what} is {source_bytes} bytes ({size_gb_of(source_bytes)} GiB); "
                f"it does not fit in a volume of {size_gb} GiB: ask for at least "
                f"{size_gb_of(source_bytes)} GiB"
            )

    def _fitting(
        self, source: Path, what: str, size_gb: int, missing: type[VolumeBackendError]
    ) -> Path:
        """`source` (one of our volumes or snapshots) when it exists and fits `size_gb`."""
        gone = missing(f"no {what} in backend {self.name} ({source})")
        if not source.exists():
            raise gone
        try:
            virtual, _ = self._measure(source)
        except FileNotFoundError:
            raise gone from None
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(f"cannot read {what} ({source}): {exc}") from exc
        self._check_fits(what, virtual, size_gb)
        return source

    # -- the interface ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "thin": not self.preallocate,
            "snapshots": True,
            "clone": True,
            "formats": [self.format],
            "image_formats": list(IMAGE_FORMATS),
            "online_extend": False,
        }

    def capacity(self) -> Capacity:
        stat = os.statvfs(self.root)
        provisioned = 0
        for kind in ("volume", "snapshot"):
            for ident in self._list(kind):
                try:
                    virtual, _ = self._measure(self._path(kind, ident))
                except FileNotFoundError:
                    continue  # deleted while we counted
                except (disks.DiskError, OSError) as exc:
                    raise VolumeBackendError(f"cannot measure {kind} {ident}: {exc}") from exc
                provisioned += size_gb_of(virtual)
        return Capacity(
            total_gb=round(stat.f_blocks * stat.f_frsize / GIB, 2),
            free_gb=round(stat.f_bavail * stat.f_frsize / GIB, 2),
            provisioned_gb=provisioned,
        )

    def create(self, volume_id: str, size_gb: int) -> VolumeInfo:
        final = self._volume_path(volume_id)
        check_size(size_gb)
        if not final.exists():
            self._build(
                final,
                f"creating volume {volume_id}",
                lambda tmp: disks.create_blank(
                    tmp, size_gb * GIB, self.format, self._preallocation
                ),
            )
        return self.info(volume_id)

    def create_from_image(
        self, volume_id: str, size_gb: int, image_path: Path, image_format: str
    ) -> VolumeInfo:
        final = self._volume_path(volume_id)
        check_size(size_gb)
        check_format(image_format, "image format")
        if final.exists():
            return self.info(volume_id)
        what = f"creating volume {volume_id} from image {image_path}"
        try:
            image = disks.info(Path(image_path), force_share=True, fmt=image_format)
        except disks.DiskError as exc:
            raise VolumeBackendError(f"{what}: cannot read the image: {exc}") from exc
        data_file = image.raw.get("format-specific", {}).get("data", {}).get("data-file")
        if image.backing_file or data_file:
            other = f"backing file {image.backing_file}" if image.backing_file else "data file"
            raise VolumeBackendError(
                f"{what}: the image names a {other}; only standalone images are copied"
            )
        self._check_fits(f"image {image_path}", image.virtual_size, size_gb)

        def make(tmp: Path) -> None:
            disks.convert(
                Path(image_path),
                tmp,
                self.format,
                source_format=image_format,
                force_share=True,
                preallocation=self._preallocation,
            )
            disks.grow_to(tmp, size_gb * GIB, self.format, self._preallocation)

        self._build(final, what, make)
        return self.info(volume_id)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> VolumeInfo:
        final = self._volume_path(volume_id)
        check_size(size_gb)
        source = self._snapshot_path(snapshot_id)
        if final.exists():  # a retry: answered even when the snapshot is gone since
            return self.info(volume_id)
        what = f"creating volume {volume_id} from snapshot {snapshot_id}"
        self._copy(
            final,
            what,
            self._fitting(source, f"snapshot {snapshot_id}", size_gb, SnapshotNotFound),
            size_gb,
        )
        return self.info(volume_id)

    def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> VolumeInfo:
        final = self._volume_path(volume_id)
        check_size(size_gb)
        source = self._volume_path(source_volume_id)
        if final == source:
            raise VolumeBackendError(f"volume {volume_id} cannot be a clone of itself")
        if final.exists():
            return self.info(volume_id)
        what = f"cloning volume {source_volume_id} to {volume_id}"
        self._copy(
            final,
            what,
            self._fitting(source, f"volume {source_volume_id}", size_gb, VolumeNotFound),
            size_gb,
        )
        return self.info(volume_id)

    def delete(self, volume_id: str) -> None:
        path = self._volume_path(volume_id)
        self.disconnect(volume_id)
        self._remove(path)

    def _remove(self, path: Path) -> None:
        """The file and any partial copies of it a crash left behind."""
        try:
            path.unlink(missing_ok=True)
            for partial in self.root.glob(f".{path.name}.*.partial"):
                partial.unlink(missing_ok=True)
        except OSError as exc:
            raise VolumeBackendError(f"cannot delete {path}: {exc}") from exc
        log.info("deleted %s", path)

    def extend(self, volume_id: str, new_size_gb: int) -> VolumeInfo:
        check_size(new_size_gb, "new_size_gb")
        path = self._existing_volume(volume_id)
        current = self.info(volume_id)
        if new_size_gb < current.size_gb:
            raise VolumeBackendError(
                f"volume {volume_id} is {current.size_gb} GiB; extending it to "
                f"{new_size_gb} GiB would shrink it (volumes never shrink)"
            )
        if new_size_gb == current.size_gb:
            return current
        try:
            disks.grow_to(path, new_size_gb * GIB, self.format, self._preallocation)
        except disks.DiskError as exc:
            raise VolumeBackendError(
                f"extending volume {volume_id} ({path}) to {new_size_gb} GiB failed: {exc}"
                " (a volume attached to a running guest is grown by its hypervisor)"
            ) from exc
        self._grown(volume_id)
        return self.info(volume_id)

    def _grown(self, volume_id: str) -> None:
        """Hook: tell whatever serves the volume that it is bigger now."""

    def exists(self, volume_id: str) -> bool:
        return self._volume_path(volume_id).exists()

    def info(self, volume_id: str) -> VolumeInfo:
        return self._volume_info(canonical_id(volume_id), self._existing_volume(volume_id))

    def list_volumes(self) -> list[str]:
        return self._list("volume")

    def create_snapshot(self, snapshot_id: str, volume_id: str) -> SnapshotInfo:
        final = self._snapshot_path(snapshot_id)
        source = self._existing_volume(volume_id)
        if not final.exists():
            self._copy(final, f"snapshot {snapshot_id} of volume {volume_id}", source, None)
        return self.snapshot_info(snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._remove(self._snapshot_path(snapshot_id))

    def snapshot_info(self, snapshot_id: str) -> SnapshotInfo:
        return self._snapshot_info(
            canonical_id(snapshot_id, "snapshot"), self._existing_snapshot(snapshot_id)
        )

    def list_snapshots(self) -> list[str]:
        return self._list("snapshot")

    def connection(self, volume_id: str) -> Connection:
        return Connection(str(self._existing_volume(volume_id)), self.format, "file")

    def disconnect(self, volume_id: str) -> None:
        canonical_id(volume_id)

    def copy_to_image(self, volume_id: str, target_path: Path, disk_format: str) -> None:
        source = self._existing_volume(volume_id)
        check_format(disk_format, "image disk format")
        target = Path(target_path)
        try:
            # disks.convert writes target.partial and renames: whole or absent.
            disks.convert(source, target, disk_format, source_format=self.format)
        except (disks.DiskError, OSError) as exc:
            raise VolumeBackendError(
                f"copying volume {volume_id} ({source}) to image {target} failed: {exc}"
            ) from exc


def _flush(path: Path) -> None:
    """Make the file's data durable before its final name points at it: after a power
    loss the name must not find a file whose blocks never reached the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

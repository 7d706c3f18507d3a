"""The host's image cache: image data fetched once from the agent API, verified, shared.

    <state>/agent/images/<id>        the image data, never changed once there (qcow2
                                      overlays of every guest on the host point at it)
                       <id>.json      the image metadata it was fetched with
                       .<id>.<rand>   a download in progress (removed on failure)

A download is written to a temporary file, its hash checked against the image's
``os_hash_value`` (or the md5 ``checksum``), then renamed into place, so a reader never sees
half an image. Concurrent requests for the same image in this process wait for one download;
a second process racing on the same directory at worst downloads twice, and the rename keeps
one whole copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kumo.drivers.disks import ImageInfo

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class ImageFetchError(RuntimeError):
    """The image could not be fetched or did not verify; the message says why."""


@dataclass(frozen=True)
class CachedImage:
    id: str
    path: Path
    meta: dict[str, Any]

    @property
    def disk_format(self) -> str:
        return str(self.meta.get("disk_format") or "raw")

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.meta.get("properties") or {})

    def measured(self) -> ImageInfo | None:
        """Format and virtual size as the image service measured them with qemu-img at
        upload (this file's checksum was verified against the same metadata), or None
        when the metadata lacks them and the file must be inspected."""
        size, fmt = self.meta.get("virtual_size"), self.disk_format
        if not isinstance(size, int) or size <= 0 or fmt not in ("qcow2", "raw", "ami"):
            return None
        return ImageInfo(
            format="qcow2" if fmt == "qcow2" else "raw",
            virtual_size=size,
            actual_size=int(self.meta.get("size") or 0),
            backing_file=None,
            raw={},
        )


def _hasher(meta: dict[str, Any]) -> tuple[Any, str] | None:
    algo, value = meta.get("os_hash_algo"), meta.get("os_hash_value")
    if algo and value and algo in hashlib.algorithms_available:
        return hashlib.new(algo), str(value)
    if meta.get("checksum"):
        return hashlib.md5(usedforsecurity=False), str(meta["checksum"])
    return None


class ImageCache:
    def __init__(self, client: httpx.Client, api: str, root: Path) -> None:
        self.client = client
        self.api = api.rstrip("/")
        self.root = root
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.downloads = 0  # how many downloads this cache made (for tests and stats)

    def _lock(self, image_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(image_id, threading.Lock())

    def path(self, image_id: str) -> Path:
        try:
            canonical = str(uuid.UUID(image_id))
        except ValueError:
            raise ImageFetchError(f"not an image id: {image_id!r}") from None
        return self.root / canonical

    def metadata(self, image_id: str) -> dict[str, Any]:
        try:
            response = self.client.get(f"{self.api}/images/{image_id}")
        except httpx.HTTPError as exc:
            raise ImageFetchError(f"image {image_id}: agent API unreachable: {exc}") from exc
        if response.status_code == 404:
            raise ImageFetchError(f"image {image_id} not found or has no data")
        if response.status_code != 200:
            raise ImageFetchError(
                f"image {image_id}: agent API answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        meta: dict[str, Any] = response.json()["image"]
        return meta

    def get(self, image_id: str) -> CachedImage:
        """The cached image, downloaded first when absent. Metadata comes from the API once
        per fetch; an image already cached needs no call at all."""
        path = self.path(image_id)
        meta_path = path.with_name(path.name + ".json")
        with self._lock(image_id):
            if path.is_file() and meta_path.is_file():
                return CachedImage(image_id, path, json.loads(meta_path.read_text()))
            meta = self.metadata(image_id)
            self._download(image_id, meta, path)
            tmp = meta_path.with_name(meta_path.name + ".tmp")
            tmp.write_text(json.dumps(meta, indent=1))
            tmp.replace(meta_path)
            return CachedImage(image_id, path, meta)

    def _download(self, image_id: str, meta: dict[str, Any], path: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        check = _hasher(meta)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.root)
        tmp = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with self.client.stream(
                        "GET", f"{self.api}/images/{image_id}/file", timeout=600
                    ) as response:
                        if response.status_code != 200:
                            response.read()
                            raise ImageFetchError(
                                f"image {image_id} data: agent API answered "
                                f"{response.status_code}: {response.text[:300]}"
                            )
                        for chunk in response.iter_bytes(CHUNK):
                            size += len(chunk)
                            if check is not None:
                                check[0].update(chunk)
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise ImageFetchError(f"image {image_id} data: {exc}") from exc
                out.flush()
                os.fsync(out.fileno())
            expected_size = meta.get("size")
            if expected_size is not None and size != int(expected_size):
                raise ImageFetchError(
                    f"image {image_id}: got {size} bytes, the image has {expected_size}"
                )
            if check is not None and check[0].hexdigest() != check[1]:
                raise ImageFetchError(f"image {image_id}: data does not match its checksum")
            tmp.chmod(0o444)
            tmp.replace(path)
            self.downloads += 1
            log.info("cached image %s (%d bytes)", image_id, size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

"""`kumo up` registers the kumo-tiny test image on first run: a kernel (aki), a ramdisk
(ari) and a small qcow2 disk whose kernel_id/ramdisk_id point at them, all public.

Built by kumo.guest.builder from the host's own kernel and busybox (cached under
STATE_DIR/guest-cache). Idempotent: an image already registered is found by its marker and
nothing is built; a host without a kernel or qemu-img gets a warning and no image.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from kumo.config import Config
from kumo.core.images import seed
from kumo.db.engine import Database
from kumo.drivers import disks
from kumo.drivers.storage.imagestore import ImageStore
from kumo.guest.builder import GuestBuildError, build_tiny_guest

log = logging.getLogger(__name__)
NAME = "kumo-tiny"
MIN_RAM_MB = 96  # the Debian kernel does not boot in 64 MiB (LAB.md)


def _store_copy(store: ImageStore, image_id: str, source: Path) -> tuple[int, str, str]:
    """Copy ``source`` into the store as ``image_id``; (size, md5, sha512)."""
    store.root.mkdir(parents=True, exist_ok=True)
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    partial = store.partial(image_id)
    with source.open("rb") as src, partial.open("wb") as out:
        while chunk := src.read(1 << 20):
            size += len(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, store.path(image_id))
    return size, md5.hexdigest(), sha512.hexdigest()


def _ensure(
    db: Database,
    store: ImageStore,
    owner: str,
    name: str,
    source: Path,
    disk_format: str,
    container_format: str,
    properties: dict[str, Any],
) -> str:
    with db.session() as session:
        found = seed.find(session, name)
        if found is not None:
            return found.id
    image_id = str(uuid.uuid4())
    size, md5, sha512 = _store_copy(store, image_id, source)
    virtual = disks.info(source).virtual_size if disk_format == "qcow2" else size
    try:
        with db.session() as session:
            seed.add(
                session,
                owner,
                seed.SeedImage(
                    id=image_id,
                    name=name,
                    disk_format=disk_format,
                    container_format=container_format,
                    size=size,
                    checksum=md5,
                    os_hash_value=sha512,
                    virtual_size=virtual,
                    properties=properties,
                    min_ram=MIN_RAM_MB if disk_format == "qcow2" else 0,
                ),
            )
    except BaseException:
        store.delete(image_id)
        raise
    return image_id


def ensure_tiny_image(db: Database, config: Config, owner: str) -> str | None:
    """The id of the kumo-tiny disk image, registering it (and its kernel and ramdisk) when
    missing; None, with a warning, when this host cannot build it."""
    with db.session() as session:
        found = seed.find(session, NAME)
        if found is not None:
            return found.id
    try:
        guest = build_tiny_guest(config.state_dir / "guest-cache")
        store = ImageStore(config.images_dir)
        kernel_id = _ensure(db, store, owner, f"{NAME}-kernel", guest.kernel, "aki", "aki", {})
        ramdisk_id = _ensure(db, store, owner, f"{NAME}-ramdisk", guest.initramfs, "ari", "ari", {})
        image_id = _ensure(
            db,
            store,
            owner,
            NAME,
            guest.root_disk,
            "qcow2",
            "bare",
            {
                "kernel_id": kernel_id,
                "ramdisk_id": ramdisk_id,
                "os_command_line": guest.cmdline,
                "os_distro": "kumo-tiny",
                "hw_pvh": "true" if guest.pvh else "false",
            },
        )
    except (GuestBuildError, disks.DiskError, OSError, subprocess.SubprocessError) as exc:
        log.warning("the %s test image was not registered: %s", NAME, exc)
        return None
    log.info("registered the %s test image %s", NAME, image_id)
    return image_id

"""Disk files through qemu-img: copy-on-write overlays on a cached base image, and `info`.

The base never changes (LAB.md); each guest writes only to its own overlay, so one cached
image serves every guest on the host.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DiskError(RuntimeError):
    """qemu-img refused; the message carries its stderr."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None
    raw: dict[str, Any]


def _qemu_img(*args: str) -> str:
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DiskError(f"qemu-img {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def info(path: Path, force_share: bool = True) -> ImageInfo:
    """`qemu-img info` as data. `-U` lets it read an image a running guest holds open."""
    args = ["info", "--output=json"] + (["-U"] if force_share else []) + [str(path)]
    raw = json.loads(_qemu_img(*args))
    return ImageInfo(
        format=raw["format"],
        virtual_size=int(raw["virtual-size"]),
        actual_size=int(raw.get("actual-size", 0)),
        backing_file=raw.get("backing-filename"),
        raw=raw,
    )


def create_overlay(
    base: Path, overlay: Path, size: int | None = None, known: ImageInfo | None = None
) -> Path:
    """A qcow2 overlay backed by `base` (absolute path, explicit format: no probing).

    `size` in bytes grows the disk beyond the base (a flavor's root disk); never shrinks.
    `known`: the base's format and virtual size when the caller has them already (the
    image service measured them at upload): saves a `qemu-img info` on a server's boot."""
    base = base.resolve()
    base_info = known if known is not None else info(base)
    size = max(size or 0, base_info.virtual_size)
    overlay.parent.mkdir(parents=True, exist_ok=True)
    _qemu_img(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        str(base),
        "-F",
        base_info.format,
        str(overlay),
        str(size),
    )
    return overlay


def create_blank(path: Path, size: int, fmt: str = "qcow2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _qemu_img("create", "-q", "-f", fmt, str(path), str(size))
    return path


def grow_to(path: Path, size: int) -> bool:
    """Grow a disk image to `size` bytes; a disk already that big or bigger is left alone
    (shrinking would destroy data). True when it grew."""
    current = info(path, force_share=False)
    if current.virtual_size >= size:
        return False
    _qemu_img("resize", "-q", "-f", current.format, str(path), str(size))
    return True


def convert_to_qcow2(source: Path, target: Path, force_share: bool = True) -> Path:
    """A standalone qcow2 copy of `source`: its backing chain is flattened into the copy, so
    the result names no backing file. `force_share` (-U) reads a disk a guest holds open;
    the caller makes sure it is not being written meanwhile (a paused or stopped guest).
    Written under a temporary name and renamed, so `target` is whole or absent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    args = ["convert", "-q", "-O", "qcow2"] + (["-U"] if force_share else [])
    try:
        _qemu_img(*args, str(source), str(partial))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target

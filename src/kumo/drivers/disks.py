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


# How much of qemu-img's stderr an error carries: the end says what went wrong; a long
# convert can print far more than an operator (or an instance fault row) needs.
STDERR_TAIL = 2000


def _qemu_img(*args: str) -> str:
    try:
        result = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    except OSError as exc:  # not installed: say so instead of a bare FileNotFoundError
        raise DiskError(f"qemu-img {args[0]} could not run: {exc}") from exc
    if result.returncode != 0:
        raise DiskError(f"qemu-img {args[0]} failed: {result.stderr.strip()[-STDERR_TAIL:]}")
    return result.stdout


def info(path: Path, force_share: bool = True, fmt: str | None = None) -> ImageInfo:
    """`qemu-img info` as data. `-U` lets it read an image a running guest holds open.

    `fmt` names the format instead of letting qemu-img probe it: a guest can write a qcow2
    header into a raw disk, and a probe would then believe it (and follow its backing file)."""
    args = ["info", "--output=json"] + (["-U"] if force_share else [])
    args += (["-f", fmt] if fmt else []) + [str(path)]
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


def create_blank(
    path: Path, size: int, fmt: str = "qcow2", preallocation: str | None = None
) -> Path:
    """An empty disk of `size` bytes. `preallocation` (``falloc``, ``full``, ...) reserves
    the space up front instead of leaving the file sparse (thick provisioning)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = ["-o", f"preallocation={preallocation}"] if preallocation else []
    _qemu_img("create", "-q", "-f", fmt, *options, str(path), str(size))
    return path


def grow_to(
    path: Path, size: int, fmt: str | None = None, preallocation: str | None = None
) -> bool:
    """Grow a disk image to `size` bytes; a disk already that big or bigger is left alone
    (shrinking would destroy data). True when it grew. `fmt`: as for `info` (no probing);
    `preallocation`: reserve the added space too, as `create_blank` does."""
    current = info(path, force_share=False, fmt=fmt)
    if current.virtual_size >= size:
        return False
    options = [f"--preallocation={preallocation}"] if preallocation else []
    _qemu_img("resize", "-q", "-f", current.format, *options, str(path), str(size))
    return True


def convert_to_qcow2(source: Path, target: Path, force_share: bool = True) -> Path:
    """A standalone qcow2 copy of `source`: its backing chain is flattened into the copy, so
    the result names no backing file. `force_share` (-U) reads a disk a guest holds open;
    the caller makes sure it is not being written meanwhile (a paused or stopped guest).
    Written under a temporary name and renamed, so `target` is whole or absent."""
    return convert(source, target, "qcow2", force_share=force_share)


def convert(
    source: Path,
    target: Path,
    fmt: str,
    source_format: str | None = None,
    force_share: bool = True,
    preallocation: str | None = None,
) -> Path:
    """A standalone copy of `source` in format `fmt`, as `convert_to_qcow2` makes it.

    `source_format` names the source's format (no probing, as for `info`); `preallocation`
    reserves the whole target (a raw target is otherwise sparse: zeros are not written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    args = ["convert", "-q", "-O", fmt] + (["-U"] if force_share else [])
    args += ["-f", source_format] if source_format else []
    args += ["-o", f"preallocation={preallocation}"] if preallocation else []
    try:
        _qemu_img(*args, str(source), str(partial))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target

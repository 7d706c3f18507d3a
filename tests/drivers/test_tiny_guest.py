"""The kumo-tiny builder: cached by content, modules in dependency order, a real initramfs."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from hvharness import require_qemu

from kumo.drivers import disks
from kumo.guest.builder import build_tiny_guest, module_load_order


def test_build_is_cached(tmp_path: Path) -> None:
    require_qemu()
    first = build_tiny_guest(tmp_path)
    start = time.monotonic()
    second = build_tiny_guest(tmp_path)
    assert time.monotonic() - start < 1.0
    assert first == second
    assert first.kernel.stat().st_size > 0
    archive = gzip.decompress(first.initramfs.read_bytes())
    assert archive.startswith(b"070701") and b"TRAILER!!!" in archive
    for name in (b"init\0", b"bin/busybox\0", b"virtio_blk.ko\0", b"isofs.ko\0"):
        assert name in archive
    info = disks.info(first.root_disk)
    assert info.format == "qcow2" and info.virtual_size > 0


def test_module_order_puts_dependencies_first() -> None:
    modules = next(Path("/lib/modules").iterdir())
    order = [Path(p).name for p in module_load_order(modules, ("virtio_blk", "ext4"))]
    assert order.index("virtio.ko") < order.index("virtio_blk.ko")
    assert order.index("jbd2.ko") < order.index("ext4.ko")


def test_overlay_on_base(tmp_path: Path) -> None:
    require_qemu()
    base = disks.create_blank(tmp_path / "base.qcow2", 32 << 20)
    overlay = disks.create_overlay(base, tmp_path / "vm" / "disk.qcow2", size=64 << 20)
    info = disks.info(overlay)
    assert info.backing_file == str(base.resolve())
    assert info.virtual_size == 64 << 20

"""Build the kumo-tiny guest from what a Debian host already has: its kernel, its static
busybox and a handful of its kernel modules.

The result (kernel, gzip cpio initramfs, small empty qcow2 root disk) is cached under a
directory named by a hash of every input, so a rebuild only happens when an input changes,
and concurrent builders never see a half-written guest (build in a temp dir, then rename).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kumo.guest.cpio import CpioArchive
from kumo.guest.ssh import SshPayload, ssh_payload

BUILDER_VERSION = "3"
MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "crc32c_generic",
    "ext4",
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_utf8",
    "button",
    "evdev",
)
# The std VGA's DRM driver (and what it needs), loaded only by a guest with a display: a
# PVH-booted kernel gets no text mode from the BIOS (vgacon needs the screen size the
# real-mode setup records), so the screen shows the guest's consoles only through this
# driver's framebuffer console. About 0.7 CPU-seconds of a TCG boot to load.
DISPLAY_MODULES: tuple[str, ...] = ("bochs",)
# no_timer_check: on a busy host the kernel otherwise may print a timer error first.
# tty0 (the screen) and ttyS0 (the serial log); the last one named is /dev/console, so
# the serial log still gets everything /init says.
CMDLINE = "console=tty0 console=ttyS0 quiet no_timer_check"
ROOT_DISK_SIZE = "64M"
_XZ_MAGIC = b"\xfd7zXZ\x00"

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc hook: configure the lease and tell the host which address the NIC got.
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        for r in $router; do route add default gw "$r" dev "$interface"; break; done
        # Classless static routes (option 121): the metadata route among them.
        set -- $staticroutes
        while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
        echo "kumo-guest: ip $interface $ip" >/dev/console ;;
esac
exit 0
"""

POWER_BUTTON = """#!/bin/sh
echo "kumo-guest: power button" >/dev/console
sync
poweroff -f
"""


class GuestBuildError(RuntimeError):
    """A needed host file (kernel, busybox, module) is missing."""


@dataclass(frozen=True)
class TinyGuest:
    kernel: Path
    initramfs: Path
    root_disk: Path
    cmdline: str
    pvh: bool  # kernel is the uncompressed ELF vmlinux (PVH entry), not the bzImage


def _newest_kernel() -> Path:
    kernels = sorted(glob.glob("/boot/vmlinuz-*"))
    if not kernels:
        raise GuestBuildError("no /boot/vmlinuz-*: install linux-image-amd64")
    return Path(kernels[-1])


def _kernel_version(kernel: Path) -> str:
    return kernel.name.removeprefix("vmlinuz-")


def module_load_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[str]:
    """Paths (relative to modules_dir) of `wanted` and their dependencies, dependencies
    first, as modules.dep describes them. Modules built into the kernel are skipped."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    builtin_file = modules_dir / "modules.builtin"
    builtin = builtin_file.read_text() if builtin_file.exists() else ""
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
        elif f"/{name}.ko" not in builtin:
            raise GuestBuildError(f"kernel module {name} not found in {modules_dir}")
    return order


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF kernel inside an xz-compressed bzImage, or None.

    QEMU boots an ELF vmlinux with a PVH note directly, skipping the in-guest decompressor,
    which under TCG halves the boot (LAB.md: 2.8 s against 5.9 s to poweroff)."""
    start = bzimage.find(_XZ_MAGIC)
    while start != -1:
        try:
            data = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
        except lzma.LZMAError:
            data = b""
        if data.startswith(b"\x7fELF"):
            return data
        start = bzimage.find(_XZ_MAGIC, start + 1)
    return None


def _inputs_hash(files: list[Path], init: bytes, pvh: bool, ssh: SshPayload | None) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION} {CMDLINE} {pvh}".encode())
    digest.update(init + UDHCPC_SCRIPT.encode() + POWER_BUTTON.encode())
    for name, data, mode in ssh.files if ssh else ():
        digest.update(f"{name}:{mode}:".encode() + data)
    for path in files:
        st = path.stat()
        digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def build_initramfs(
    busybox: Path,
    modules_dir: Path,
    module_paths: list[str],
    init: bytes,
    ssh: SshPayload | None = None,
    display_paths: tuple[str, ...] = (),
) -> bytes:
    """The gzip cpio: busybox, /init, the udhcpc and power-button hooks, the modules, and
    dropbear with what it needs when the host has it."""
    archive = CpioArchive()
    for directory in (
        "bin",
        "dev",
        "etc",
        "etc/acpi",
        "etc/acpi/PWRF",
        "lib",
        "lib/modules",
        "proc",
        "sys",
        "tmp",
        "var",
        "var/log",
        "mnt",
        "mnt/config",
    ):
        archive.directory(directory)
    archive.char_device("dev/console", 5, 1)
    archive.char_device("dev/null", 1, 3, 0o666)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.symlink("bin/sh", "busybox")
    archive.file("init", init, 0o755)
    archive.file("etc/udhcpc.sh", UDHCPC_SCRIPT.encode(), 0o755)
    archive.file("etc/acpi/PWRF/00000080", POWER_BUTTON.encode(), 0o755)
    for listing, paths in (("modules.order", module_paths), ("modules.display", display_paths)):
        names = []
        for rel in paths:
            name = Path(rel).name
            archive.file(f"lib/modules/{name}", (modules_dir / rel).read_bytes())
            names.append(name)
        archive.file(f"etc/{listing}", ("\n".join(names) + "\n").encode())
    if ssh is not None:
        _add_ssh(archive, ssh)
    return gzip.compress(archive.getvalue(), compresslevel=6, mtime=0)


def _add_ssh(archive: CpioArchive, ssh: SshPayload) -> None:
    """dropbear and its libraries at their host paths, root's home, the helper commands."""
    made = {"bin", "etc", "lib", "tmp", "var", "mnt"}
    wanted = [str(path.relative_to("/")) for path in ssh.binaries] + [f[0] for f in ssh.files]
    for rel in ["usr/bin/x", "usr/sbin/x", "etc/dropbear/x", *wanted]:
        parts = Path(rel).parts[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in made:
                archive.directory(directory)
                made.add(directory)
    archive.directory("root", 0o700)
    for path in ssh.binaries:
        archive.file(str(path.relative_to("/")), path.read_bytes(), 0o755)
    for name, data, mode in ssh.files:
        archive.file(name, data, mode)


def build_tiny_guest(
    cache_dir: Path,
    kernel: Path | None = None,
    busybox: Path = Path("/usr/bin/busybox"),
    pvh: bool = True,
) -> TinyGuest:
    """Build (or find in `cache_dir`) the kumo-tiny guest. Takes about a second cold."""
    kernel = kernel or _newest_kernel()
    modules_dir = Path("/lib/modules") / _kernel_version(kernel)
    for needed in (kernel, busybox, modules_dir / "modules.dep"):
        if not needed.exists():
            raise GuestBuildError(f"{needed} is missing (need linux-image-amd64, busybox-static)")
    if not shutil.which("qemu-img"):
        raise GuestBuildError("qemu-img is missing (need qemu-utils)")
    init = resources.files("kumo.guest").joinpath("init.sh").read_bytes()
    module_paths = module_load_order(modules_dir, MODULES)
    display_paths = tuple(
        p for p in module_load_order(modules_dir, DISPLAY_MODULES) if p not in module_paths
    )
    ssh = ssh_payload()
    files = [kernel, busybox] + [modules_dir / p for p in (*module_paths, *display_paths)]
    files += list(ssh.binaries) if ssh else []
    target = cache_dir / f"kumo-tiny-{_inputs_hash(files, init, pvh, ssh)}"
    if (target / "done").exists():
        return _load(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    work.chmod(0o755)
    try:
        image = kernel.read_bytes()
        vmlinux = extract_vmlinux(image) if pvh else None
        (work / "kernel").write_bytes(vmlinux or image)
        (work / "kernel.type").write_text("pvh" if vmlinux else "bzimage")
        (work / "initramfs.cpio.gz").write_bytes(
            build_initramfs(busybox, modules_dir, module_paths, init, ssh, display_paths)
        )
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(work / "root.qcow2"), ROOT_DISK_SIZE],
            check=True,
            capture_output=True,
        )
        (work / "cmdline").write_text(CMDLINE)
        (work / "done").write_text("")
        try:
            os.rename(work, target)
        except OSError:  # another builder won the race: use theirs
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _load(target)


def _load(target: Path) -> TinyGuest:
    return TinyGuest(
        kernel=target / "kernel",
        initramfs=target / "initramfs.cpio.gz",
        root_disk=target / "root.qcow2",
        cmdline=(target / "cmdline").read_text(),
        pvh=(target / "kernel.type").read_text() == "pvh",
    )

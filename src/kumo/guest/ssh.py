"""SSH in kumo-tiny: the host's dropbear (Debian's dropbear-bin) with the shared libraries it
links, an /etc for root, and the few commands Tempest's remote client runs that busybox
lacks or spells differently (sudo, lsblk, blkid -L).

Why: Tempest validates guests over SSH (hostname, vCPU count, disks, config drive). With
dropbear in the initramfs the test guest answers those commands as a cloud image would,
while staying a three-second boot. The guest's /init writes root's authorized_keys from the
config drive and starts dropbear; host keys are made by dropbear itself on first use (-R),
so each guest has its own.

Optional: a host without dropbear builds the guest without SSH (`ssh_payload` is None).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DROPBEAR = Path("/usr/sbin/dropbear")

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"
# "*": no password can match, so only keys log in (dropbear also runs with -s).
SHADOW = "root:*:19000:0:99999:7:::\n"
SHELLS = "/bin/sh\n"

# Everything runs as root in the guest: sudo only runs its command.
SUDO = """#!/bin/sh
exec "$@"
"""

# util-linux lsblk's columns for the whole disks, aligned as lsblk aligns them (Tempest
# finds the TYPE column by its offset in the header).
LSBLK = """#!/bin/sh
row() { printf '%-8s %7s %2s %12s %2s %-4s %s\\n' "$@"; }
row NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINT
for path in /sys/block/*; do
    name=${path##*/}
    case "$name" in loop*|ram*) continue ;; esac
    row "$name" "$(cat "$path/dev")" "$(cat "$path/removable")" \\
        "$(($(cat "$path/size") * 512))" "$(cat "$path/ro")" disk ""
done
"""

# blkid -L LABEL (util-linux) is busybox's findfs LABEL=...; anything else goes to busybox.
BLKID = """#!/bin/sh
if [ "$1" = "-L" ]; then
    exec /bin/busybox findfs "LABEL=$2"
fi
exec /bin/busybox blkid "$@"
"""


@dataclass(frozen=True)
class SshPayload:
    """What goes into the initramfs for SSH: host files to copy, and files to write."""

    binaries: tuple[Path, ...]  # dropbear and every library it loads (same path in the guest)
    files: tuple[tuple[str, bytes, int], ...]  # (path in the guest, content, mode)


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries `binary` loads, the dynamic loader included, as ldd resolves them."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    found: list[Path] = []
    for line in out.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match:
            found.append(Path(match.group(1)))
    return found


def ssh_payload(dropbear: Path = DROPBEAR) -> SshPayload | None:
    """dropbear and what it needs, or None when the host has no dropbear."""
    if not dropbear.exists():
        return None
    binaries = (dropbear, *shared_libraries(dropbear))
    files = (
        ("etc/passwd", PASSWD.encode(), 0o644),
        ("etc/group", GROUP.encode(), 0o644),
        ("etc/shadow", SHADOW.encode(), 0o600),
        ("etc/shells", SHELLS.encode(), 0o644),
        ("usr/bin/sudo", SUDO.encode(), 0o755),
        ("usr/bin/lsblk", LSBLK.encode(), 0o755),
        ("usr/bin/blkid", BLKID.encode(), 0o755),
    )
    return SshPayload(binaries=binaries, files=files)

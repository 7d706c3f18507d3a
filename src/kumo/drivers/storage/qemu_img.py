"""``qemu-img info`` of a file, run with limits: the file may be hostile.

qemu-img probes the format itself (no ``-f``) because finding out the real format is the
point. Like Nova, the process gets a CPU-time and address-space limit so a crafted header
cannot make it spin or eat memory, and a wall-clock timeout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

CPU_SECONDS = 30
ADDRESS_SPACE = 1 << 30
TIMEOUT = 60.0


class InspectionFailed(Exception):
    """qemu-img could not read the file; the message is what it said."""


def info(path: Path) -> dict[str, Any]:
    cmd = [shutil.which("qemu-img") or "qemu-img", "info", "--output=json", str(path)]
    prlimit = shutil.which("prlimit")
    if prlimit:
        cmd = [prlimit, f"--cpu={CPU_SECONDS}", f"--as={ADDRESS_SPACE}", *cmd]
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=TIMEOUT, check=False, env={"LC_ALL": "C"}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InspectionFailed(f"qemu-img info did not complete: {exc}") from exc
    if done.returncode != 0:
        raise InspectionFailed(done.stderr.decode(errors="replace").strip() or "qemu-img failed")
    try:
        result = json.loads(done.stdout)
    except ValueError as exc:
        raise InspectionFailed(f"qemu-img info printed no JSON: {exc}") from exc
    if not isinstance(result, dict):
        raise InspectionFailed("qemu-img info printed no JSON object")
    return result

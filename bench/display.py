"""What a display costs a guest: the kumo-tiny guest booted by the QEMU driver (its real
command line, through ``QemuDriver.spawn``) with and without std VGA, next to the image as
it was before guests had displays (no ``bochs`` module, serial console only).

Rows, interleaved run by run so a change in the machine's load hits all alike:

* ``before``: the image built as before displays (``console=ttyS0``, no bochs DRM module),
  guest without a display: what a guest cost until now.
* ``image, no display``: today's image, ``hw_video_model=none``: what the image change
  alone costs (the modules are in the initramfs; a guest without a display loads none).
* ``image + VGA``: today's image and display, the default for new guests.

Each boot is timed from the spawn call to the guest's ``kumo-guest: start`` line (its /init
runs) and to its first ``kumo-guest: alive`` line (booted, its loop running), with QEMU's
CPU time (utime + stime) at that line; then the guest idles ``--idle`` seconds without a
VNC client and its CPU time over that is the idle cost; then it is destroyed (by the
driver, which kills its QEMU by PID). CPU seconds are the steadier figure on a busy
machine. Run: ``.venv/bin/python bench/display.py`` (``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor.base import GuestSpec
from kumo.drivers.hypervisor.qemu import QemuDriver
from kumo.guest import builder

from _common import add_output_options, cpu_seconds, log, machine, print_table

ROWS = ("before", "image, no display", "image + VGA")


def _guests(cache: Path) -> dict[str, builder.TinyGuest]:
    """Today's guest, and the one built as before displays (its module list and command
    line put back for one build)."""
    today = builder.build_tiny_guest(cache)
    modules, cmdline = builder.DISPLAY_MODULES, builder.CMDLINE
    try:
        builder.DISPLAY_MODULES = ()
        builder.CMDLINE = "console=ttyS0 quiet no_timer_check"
        before = builder.build_tiny_guest(cache)
    finally:
        builder.DISPLAY_MODULES, builder.CMDLINE = modules, cmdline
    return {"before": before, "today": today}


def _wait_line(log_path: Path, needle: bytes, deadline: float) -> float:
    while time.monotonic() < deadline:
        if log_path.exists() and needle in log_path.read_bytes():
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"{needle!r} not in {log_path} in time")


def boot_once(
    driver: QemuDriver, guest: builder.TinyGuest, display: str, idle: float, timeout: float
) -> dict[str, float]:
    spec = GuestSpec(
        uuid=str(uuid.uuid4()),
        name="bench-display",
        vcpus=1,
        memory_mb=128,
        kernel=str(guest.kernel),
        ramdisk=str(guest.initramfs),
        cmdline=guest.cmdline,
        display=display,  # type: ignore[arg-type]
    )
    console = driver.state_dir / "instances" / spec.uuid / "console.log"
    started = time.monotonic()
    try:
        pid = driver.spawn(spec).pid
        assert pid is not None
        deadline = started + timeout
        start_line = _wait_line(console, b"kumo-guest: start", deadline)
        alive = _wait_line(console, b"kumo-guest: alive 0", deadline)
        booted_cpu = cpu_seconds(pid)
        time.sleep(idle)  # the measured interval itself, not a wait for anything
        idle_cpu = cpu_seconds(pid) - booted_cpu
        rss_kib = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
        )
    finally:
        driver.destroy(spec.uuid)
    return {
        "start_s": start_line - started,
        "alive_s": alive - started,
        "boot_cpu_s": booted_cpu,
        "idle_cpu_pct": 100 * idle_cpu / idle,
        "rss_mib": rss_kib / 1024,
    }


def run(runs: int, idle: float, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kb-", dir="/tmp") as tmp:
        guests = _guests(Path(tmp) / "cache")
        driver = QemuDriver(Path(tmp) / "state", start_timeout=60)
        configs = {
            "before": (guests["before"], "none"),
            "image, no display": (guests["today"], "none"),
            "image + VGA": (guests["today"], "vga"),
        }
        samples: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
        for n in range(runs):
            for row in ROWS:
                guest, display = configs[row]
                samples[row].append(boot_once(driver, guest, display, idle, timeout))
                log(f"run {n + 1}/{runs} {row}: {samples[row][-1]}")
    return {"machine": machine(), "runs": runs, "idle_s": idle, "samples": samples}


def render(doc: dict[str, Any], markdown: bool) -> None:
    keys = ("start_s", "alive_s", "boot_cpu_s", "idle_cpu_pct", "rss_mib")
    cells = [["row", "n", *[f"median {k}" for k in keys]]]
    for row, samples in doc["samples"].items():
        medians = [statistics.median(s[k] for s in samples) for k in keys]
        cells.append([row, str(len(samples)), *[f"{v:.2f}" for v in medians]])
    if markdown:
        print("| " + " | ".join(cells[0]) + " |")
        print("| --- | " + " | ".join("---:" for _ in cells[0][1:]) + " |")
        for line in cells[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        print_table(cells, left=1)
    m = doc["machine"]
    print(f"\n{m['date']}, load average {m['loadavg']}, {m['cpus']} CPUs", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds measured")
    parser.add_argument("--timeout", type=float, default=180.0)
    add_output_options(parser)
    args = parser.parse_args()
    if args.render:
        render(json.loads(args.render.read_text()), args.markdown)
        return
    doc = run(args.runs, args.idle, args.timeout)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        render(doc, args.markdown)


if __name__ == "__main__":
    main()

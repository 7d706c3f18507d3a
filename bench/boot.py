"""Boot benchmark: POST /servers to the guest's first console line on real QEMU, next to a
bare ``qemu-system-x86_64`` boot of the same image (the physical limit).

Issue 3, benchmark item: "time from POST /servers to the guest's first console line, next
to a bare qemu-system-x86_64 boot of the same image; target within 5%".

* ``kumo up`` in a temporary state directory with ``KUMO_COMPUTE_HYPERVISOR=qemu``; it
  registers the ``kumo-tiny`` image (kernel + busybox initramfs + small qcow2) on first run.
* kumo row: ``POST /compute/v2.1/servers`` (microversion 2.10, image ``kumo-tiny``, flavor
  ``m1.tiny``), then the guest's serial console log file, the one the qemu driver writes
  (``STATE/agent/instances/<uuid>/console.log``), is followed with inotify: first byte, first
  full line, the init's ``kumo-guest: start`` line and its ``kumo-guest: hostname`` line.
  The instance directory is followed the same way (overlay, config drive, spec, the qemu
  command line written just before the exec, pidfile, QMP socket), and the database gives
  the server's creation, its placement (allocation) and ACTIVE (``launched_at``) times, so
  the time from POST to the first line splits into its parts. After the first line is in
  the file, ``os-getConsoleOutput`` is polled until it shows it too (bounded by the agent's
  console posting interval).
* bare row: ``qemu-system-x86_64`` with the exact argv the agent ran (read from
  ``/proc/<pid>/cmdline`` of the kumo-started qemu), on copies of the same kernel, initrd,
  base image (a fresh overlay each run) and config drive in a temporary directory, with its
  own pidfile, QMP socket and console log, timed from the exec to the same console lines.
* bare minimal: ``-kernel -initrd -append -serial file:`` only (no disks, no QMP, not
  daemonized), for reference.

Runs are interleaved (kumo, bare, minimal; then again) so that a change in the machine's
load hits all rows alike; the server is deleted (and gone) and the bare qemu killed before
the next boot. Every process started is stopped by its PID. Run: ``.venv/bin/python
bench/boot.py`` (``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import datetime as dt
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kumo.db import models as m
from kumo.db.engine import Database

from _common import (
    BenchError,
    Proc,
    add_output_options,
    admin_token,
    clean_env,
    cpu_seconds,
    log,
    machine,
    print_table,
    start_up,
)

COMPUTE = "/compute/v2.1"
MICROVERSION = "2.10"
IMAGE = "kumo-tiny"
FLAVOR = "m1.tiny"
CONSOLE = "console.log"
START_LINE = b"kumo-guest: start"
HOSTNAME_LINE = b"kumo-guest: hostname"
TARGET_PCT = 5.0

# --- inotify (ctypes; the standard library has none) ------------------------------------

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")
_MASK_NAMES = {IN_CREATE: "create", IN_CLOSE_WRITE: "close_write", IN_MOVED_TO: "moved_to"}
_libc = ctypes.CDLL(None, use_errno=True)


class Inotify:
    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd = fd
        self.paths: dict[int, Path] = {}

    def add(self, path: Path, mask: int) -> int:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.paths[wd] = path
        return int(wd)

    def read(self, timeout: float) -> list[tuple[Path, int, str]]:
        """Events as (watched directory, mask, name); [] after ``timeout`` seconds."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        out = []
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            name = data[offset : offset + size].rstrip(b"\0").decode(errors="replace")
            offset += size
            if wd in self.paths:
                out.append((self.paths[wd], mask, name))
        return out

    def close(self) -> None:
        os.close(self.fd)


class Timeline:
    """Follows a directory (and, with ``depth=1``, the directories created in it) and
    records, in ``time.perf_counter`` seconds, when each file was created, written and
    closed or renamed into place; the serial console file is read as it grows, for its
    first byte, first full line, and the init's start and hostname lines.

    One thread, blocked in select() on the inotify descriptor between events: an event is
    stamped when the kernel wakes it, the same way for kumo's guests and the bare ones."""

    DIR_MASK = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY

    def __init__(self, root: Path, depth: int = 0) -> None:
        self.root = root
        self.depth = depth
        self.events: dict[str, float] = {}  # "name:create" -> first time seen
        self.console_path: Path | None = None
        self.console: dict[str, float] = {}  # first_byte, first_line, start, hostname
        self.first_line = ""
        self.guest_uptime: float | None = None  # "kumo-guest: start <uptime>"
        self._buffer = b""
        self._offset = 0
        self._ino = Inotify()
        self._ino.add(root, self.DIR_MASK)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                events = self._ino.read(0.2)
                now = time.perf_counter()
                for directory, mask, name in events:
                    self._event(now, directory, mask, name)
        finally:
            self._ino.close()

    def _event(self, now: float, directory: Path, mask: int, name: str) -> None:
        if mask & IN_ISDIR:
            if mask & IN_CREATE and directory == self.root and self.depth > 0:
                sub = directory / name
                self.events.setdefault("dir:create", now)
                with contextlib.suppress(OSError):
                    self._ino.add(sub, self.DIR_MASK)
                # Files made before the watch was in place: stamped now (rare; flagged).
                with contextlib.suppress(OSError):
                    for child in sub.iterdir():
                        self.events.setdefault(f"{child.name}:create", now)
                        self.events.setdefault(f"{child.name}:early", now)
                        if child.name == CONSOLE:
                            self._console(now, child)
            return
        for bit, label in _MASK_NAMES.items():
            if mask & bit:
                self.events.setdefault(f"{name}:{label}", now)
        if name == CONSOLE and mask & (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE):
            self._console(now, directory / name)

    def _console(self, now: float, path: Path) -> None:
        if self.console_path is None:
            self.console_path = path
        if "hostname" in self.console:
            return
        try:
            with path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        if not data:
            return
        self._offset += len(data)
        self.console.setdefault("first_byte", now)
        self._buffer += data
        lines = self._buffer.split(b"\n")
        self._buffer = lines.pop()
        for raw in lines:
            line = raw.rstrip(b"\r")
            if "first_line" not in self.console:
                self.console["first_line"] = now
                self.first_line = line.decode(errors="replace")
            if line.startswith(START_LINE) and "start" not in self.console:
                self.console["start"] = now
                with contextlib.suppress(ValueError, IndexError):
                    self.guest_uptime = float(line.split()[2])
            if line.startswith(HOSTNAME_LINE):
                self.console["hostname"] = now
                self._done.set()
                return

    def wait(self, key: str, timeout: float) -> float:
        """Until the console showed ``key`` (first_line, start, hostname)."""
        deadline = time.monotonic() + timeout
        while key not in self.console:
            if time.monotonic() > deadline:
                raise BenchError(f"no {key} on the console in {timeout:.0f}s")
            self._done.wait(0.01)
        return self.console[key]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


# --- processes we start ourselves (bare qemu) -------------------------------------------

_ours: dict[int, bytes] = {}  # pid -> a byte string its command line must contain


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def kill_ours(pid: int, marker: bytes, wait: float = 10.0) -> None:
    """SIGKILL one qemu this bench started (or kumo started for it), checked by a marker in
    its command line (PIDs recycle), and wait until it is gone."""
    if _alive(pid) and marker in _cmdline(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while _alive(pid) and marker in _cmdline(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    _ours.pop(pid, None)


@atexit.register
def _kill_leftovers() -> None:
    for pid, marker in list(_ours.items()):
        kill_ours(pid, marker)


def read_pidfile(path: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        if time.monotonic() > deadline:
            raise BenchError(f"no pidfile {path}")
        time.sleep(0.005)


# --- results ----------------------------------------------------------------------------


@dataclass
class Run:
    """One boot: milestones in ms since the start (POST for kumo, exec for bare)."""

    kind: str  # kumo, kumo-cold, bare, minimal
    index: int
    ms: dict[str, float] = field(default_factory=dict)
    first_line: str = ""
    guest_uptime_s: float | None = None
    qemu_cpu_ms: float | None = None  # qemu's CPU time when its first line appeared
    up_cpu_first_ms: float | None = None  # kumo up's CPU time from POST to the first line
    up_cpu_ms: float | None = None  # the same to the hostname line (with the API polls)
    loadavg: float = 0.0
    notes: list[str] = field(default_factory=list)


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1000, 1)


def _stamp(run: Run, key: str, t: float | None, t0: float) -> None:
    value = _ms(t, t0)
    if value is not None:
        run.ms[key] = value


def _qemu_cpu_ms(pid: int) -> float | None:
    cpu = cpu_seconds(pid)
    return round(cpu * 1000, 0) if cpu else None


# --- the benchmark ----------------------------------------------------------------------


@dataclass
class Options:
    runs: int
    timeout: float
    api_poll: float
    minimal: bool
    bare: bool
    keep: Path | None
    src: Path | None


class Bench:
    def __init__(self, root: Path, up: Proc, url: str, opts: Options) -> None:
        self.root = root
        self.state = root / "state"
        self.instances = self.state / "agent" / "instances"
        self.up = up
        self.url = url
        self.opts = opts
        token, _project = admin_token(url, self.state)
        self.http = httpx.Client(
            base_url=url,
            timeout=60.0,
            headers={
                "X-Auth-Token": token,
                "OpenStack-API-Version": f"compute {MICROVERSION}",
                "X-OpenStack-Nova-API-Version": MICROVERSION,
            },
        )
        self.db = Database(f"sqlite:///{self.state / 'kumo.db'}")
        self.image_id = self._find("/image/v2/images", "images", IMAGE)
        self.flavor_id = self._find(f"{COMPUTE}/flavors", "flavors", FLAVOR)
        self.guests: dict[int, bytes] = {}  # kumo-started qemu pid -> uuid
        self.argv: list[str] = []  # the agent's qemu command line (from /proc)
        self.instance_dir: Path | None = None
        self.bare_src = root / "bare-src"
        self.files: dict[str, Path] = {}  # kernel, initrd, base, config -> copies
        self.wall_offset = time.time() - time.perf_counter()

    def close(self) -> None:
        self.http.close()
        self.db.dispose()

    def _find(self, path: str, key: str, name: str) -> str:
        resp = self.http.get(path)
        if resp.status_code != 200:
            raise BenchError(f"GET {path}: {resp.status_code} {resp.text[:300]}")
        for item in resp.json()[key]:
            if item["name"] == name:
                return str(item["id"])
        raise BenchError(f"no {name} in {path} (kumo up log:\n{self.up.tail()})")

    def _perf(self, when: dt.datetime | None) -> float | None:
        """A database timestamp (naive UTC, wall clock) on the perf_counter scale."""
        if when is None:
            return None
        return when.replace(tzinfo=dt.UTC).timestamp() - self.wall_offset

    # -- kumo --
    def kumo(self, index: int, cold: bool = False) -> Run:
        run = Run("kumo-cold" if cold else "kumo", index, loadavg=round(os.getloadavg()[0], 2))
        self.instances.mkdir(parents=True, exist_ok=True)  # the agent makes it with exist_ok
        timeline = Timeline(self.instances, depth=1)
        server_id = ""
        try:
            up_cpu = cpu_seconds(self.up.pid)
            t0 = time.perf_counter()
            resp = self.http.post(
                f"{COMPUTE}/servers",
                json={
                    "server": {
                        "name": f"boot-{index}",
                        "imageRef": self.image_id,
                        "flavorRef": self.flavor_id,
                    }
                },
            )
            posted = time.perf_counter()
            if resp.status_code != 202:
                raise BenchError(f"POST /servers: {resp.status_code} {resp.text[:500]}")
            server_id = str(resp.json()["server"]["id"])
            directory = self.instances / server_id
            first = timeline.wait("first_line", self.opts.timeout)
            pid = read_pidfile(directory / "qemu.pid")
            self.guests[pid] = server_id.encode()
            _ours[pid] = server_id.encode()
            run.qemu_cpu_ms = _qemu_cpu_ms(pid)
            run.up_cpu_first_ms = round((cpu_seconds(self.up.pid) - up_cpu) * 1000, 0)
            # Only now, with the line in the file, ask the API (no load on the boot before).
            api_seen = self._api_console(server_id, timeline.first_line, t0)
            hostname = timeline.wait("hostname", self.opts.timeout)
            run.up_cpu_ms = round((cpu_seconds(self.up.pid) - up_cpu) * 1000, 0)
            if not self.argv:
                self._learn_argv(pid, directory)
            _stamp(run, "post_returned", posted, t0)
            self._db_times(run, server_id, t0)
            ev = timeline.events
            for key, name in (
                ("agent_dir", "dir:create"),
                ("overlay_start", "disk.tmp:create"),
                ("overlay_done", "disk:moved_to"),
                ("config_drive_start", "disk.config.tmp:create"),
                ("config_drive_done", "disk.config:moved_to"),
                ("spec_written", "spec.json:moved_to"),
                ("qemu_exec", "qemu.argv:close_write"),
                ("console_open", f"{CONSOLE}:create"),
                ("qmp_socket", "qmp:create"),
                ("pidfile", "qemu.pid:create"),
            ):
                _stamp(run, key, ev.get(name), t0)
            run.notes += [k for k in ev if k.endswith(":early")]
            for key in ("first_byte", "first_line", "start"):
                _stamp(run, key, timeline.console.get(key), t0)
            _stamp(run, "hostname", hostname, t0)
            _stamp(run, "api_console", api_seen, t0)
            run.first_line = timeline.first_line
            run.guest_uptime_s = timeline.guest_uptime
            log(
                f"kumo{' (cold cache)' if cold else ''} {index}: first line "
                f"{(first - t0) * 1000:.0f} ms, hostname {(hostname - t0) * 1000:.0f} ms, "
                f"API console {run.ms.get('api_console', float('nan')):.0f} ms "
                f"(load {run.loadavg})"
            )
        finally:
            timeline.close()
            if server_id:
                self.delete(server_id)
        return run

    def _api_console(self, server_id: str, line: str, t0: float) -> float | None:
        """When ``os-getConsoleOutput`` first shows ``line``, polled every --api-poll s."""
        if self.opts.api_poll <= 0:
            return None
        deadline = time.monotonic() + self.opts.timeout
        while time.monotonic() < deadline:
            resp = self.http.post(
                f"{COMPUTE}/servers/{server_id}/action", json={"os-getConsoleOutput": {}}
            )
            seen = time.perf_counter()
            if resp.status_code == 200 and line in resp.json().get("output", ""):
                return seen
            time.sleep(self.opts.api_poll)
        return None

    def _db_times(self, run: Run, server_id: str, t0: float) -> None:
        with self.db.session() as session:
            inst = session.get(m.Instance, server_id)
            alloc = session.get(m.Allocation, server_id)
            if inst is None:
                return
            _stamp(run, "db_created", self._perf(inst.created_at), t0)
            if alloc is not None:
                _stamp(run, "scheduled", self._perf(alloc.created_at), t0)
            _stamp(run, "active", self._perf(inst.launched_at), t0)
            state = (inst.vm_state, inst.fault)
        if state[0] != "active":
            raise BenchError(f"server {server_id} is {state[0]}: {state[1]}")

    def delete(self, server_id: str) -> None:
        """DELETE, then until the API says 404 and its qemu is gone."""
        self.http.delete(f"{COMPUTE}/servers/{server_id}")
        deadline = time.monotonic() + self.opts.timeout
        while self.http.get(f"{COMPUTE}/servers/{server_id}").status_code != 404:
            if time.monotonic() > deadline:
                raise BenchError(f"server {server_id} not gone in {self.opts.timeout}s")
            time.sleep(0.1)
        for pid, marker in list(self.guests.items()):
            if marker == server_id.encode():
                while _alive(pid) and marker in _cmdline(pid):
                    if time.monotonic() > deadline:
                        kill_ours(pid, marker)
                    time.sleep(0.02)
                self.guests.pop(pid)
                _ours.pop(pid, None)

    def kill_guests(self) -> None:
        for pid, marker in list(self.guests.items()):
            kill_ours(pid, marker)

    # -- bare --
    def _learn_argv(self, pid: int, directory: Path) -> None:
        """The agent's qemu argv, and copies of every file it names outside the instance
        directory (kernel, initrd: the image cache) plus the overlay's base and the config
        drive, for the bare runs."""
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
        self.argv, self.instance_dir = argv, directory
        written = (directory / "qemu.argv").read_text().strip()
        if written != " ".join(shlex.quote(a) for a in argv):
            log("note: /proc cmdline and qemu.argv differ; using /proc")
        self.bare_src.mkdir()
        for flag, key in (("-kernel", "kernel"), ("-initrd", "initrd")):
            if flag in argv:
                source = Path(argv[argv.index(flag) + 1])
                self.files[key] = self.bare_src / key
                shutil.copyfile(source, self.files[key])
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", str(directory / "disk")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        base = Path(info["full-backing-filename"])
        self.files["base"] = self.bare_src / "base"
        shutil.copyfile(base, self.files["base"])
        self.base_format = info.get("backing-filename-format", "qcow2")
        self.disk_size = int(info["virtual-size"])
        self.files["config"] = self.bare_src / "disk.config"
        shutil.copyfile(directory / "disk.config", self.files["config"])
        self.image_paths = {
            str(source): str(self.files[key])
            for flag, key in (("-kernel", "kernel"), ("-initrd", "initrd"))
            if flag in argv
            for source in [Path(argv[argv.index(flag) + 1])]
        }
        log("agent's qemu command line: " + " ".join(shlex.quote(a) for a in argv))

    def bare_argv(self, run_dir: Path) -> list[str]:
        """The agent's argv with its instance directory, QMP socket and image-cache paths
        pointed at ``run_dir`` and the copies; every other argument unchanged."""
        assert self.instance_dir is not None
        out = []
        for arg in self.argv:
            for old, new in self.image_paths.items():
                arg = arg.replace(old, new)
            arg = arg.replace(str(self.instance_dir), str(run_dir))
            out.append(arg)
        qmp = next(a for a in out if a.startswith("unix:"))
        if str(run_dir) not in qmp:  # the socket lived in the runtime root (a long path)
            out[out.index(qmp)] = f"unix:{run_dir / 'qmp'},server=on,wait=off"
        leaked = [a for a in out if str(self.state) in a]
        if leaked:
            raise BenchError(f"bare argv still names kumo's state: {leaked}")
        return out

    def _fresh_dir(self, name: str) -> Path:
        run_dir = self.root / name
        run_dir.mkdir()
        return run_dir

    def bare(self, index: int) -> Run:
        run = Run("bare", index, loadavg=round(os.getloadavg()[0], 2))
        run_dir = self._fresh_dir(f"bare-{index}")
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(self.files["base"]),
                "-F",
                self.base_format,
                str(run_dir / "disk"),
                str(self.disk_size),
            ],
            check=True,
        )
        shutil.copyfile(self.files["config"], run_dir / "disk.config")
        argv = self.bare_argv(run_dir)
        marker = str(run_dir).encode()
        timeline = Timeline(run_dir)
        pid = 0
        try:
            t0 = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            returned = time.perf_counter()
            if result.returncode != 0:
                raise BenchError(f"bare qemu failed: {result.stderr.strip()[-1000:]}")
            pid = read_pidfile(run_dir / "qemu.pid")
            _ours[pid] = marker
            timeline.wait("first_line", self.opts.timeout)
            run.qemu_cpu_ms = _qemu_cpu_ms(pid)
            timeline.wait("hostname", self.opts.timeout)
            _stamp(run, "qemu_exec", t0, t0)
            _stamp(run, "daemonized", returned, t0)
            ev = timeline.events
            for key, name in (
                ("console_open", f"{CONSOLE}:create"),
                ("qmp_socket", "qmp:create"),
                ("pidfile", "qemu.pid:create"),
            ):
                _stamp(run, key, ev.get(name), t0)
            for key in ("first_byte", "first_line", "start", "hostname"):
                _stamp(run, key, timeline.console.get(key), t0)
            run.first_line = timeline.first_line
            run.guest_uptime_s = timeline.guest_uptime
            log(
                f"bare {index}: first line {run.ms['first_line']:.0f} ms, hostname "
                f"{run.ms['hostname']:.0f} ms (load {run.loadavg})"
            )
        finally:
            timeline.close()
            if pid:
                kill_ours(pid, marker)
            if not self.opts.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
        return run

    def minimal(self, index: int) -> Run:
        """-kernel -initrd -append -serial file: and the same machine, memory, accelerator
        and CPU; no disks, no QMP, no daemonizing. Without a config drive the init spends
        2 s looking for one before its hostname line, so only the first lines compare."""
        run = Run("minimal", index, loadavg=round(os.getloadavg()[0], 2))
        run_dir = self._fresh_dir(f"minimal-{index}")
        a = self.argv

        def value(flag: str) -> str:
            return a[a.index(flag) + 1]

        argv = [a[0], "-machine", value("-machine"), "-accel", value("-accel")]
        argv += ["-cpu", value("-cpu"), "-m", value("-m"), "-smp", value("-smp")]
        argv += ["-nodefaults", "-no-user-config", "-display", "none"]
        argv += ["-kernel", str(self.files["kernel"])]
        if "initrd" in self.files:
            argv += ["-initrd", str(self.files["initrd"])]
        if "-append" in a:
            argv += ["-append", value("-append")]
        argv += ["-serial", f"file:{run_dir / CONSOLE}"]
        timeline = Timeline(run_dir)
        proc: subprocess.Popen[bytes] | None = None
        try:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _ours[proc.pid] = str(run_dir).encode()
            timeline.wait("first_line", self.opts.timeout)
            run.qemu_cpu_ms = _qemu_cpu_ms(proc.pid)
            timeline.wait("start", self.opts.timeout)
            for key in ("first_byte", "first_line", "start"):
                _stamp(run, key, timeline.console.get(key), t0)
            _stamp(run, "console_open", timeline.events.get(f"{CONSOLE}:create"), t0)
            run.first_line = timeline.first_line
            run.guest_uptime_s = timeline.guest_uptime
            log(f"minimal {index}: first line {run.ms['first_line']:.0f} ms")
        finally:
            timeline.close()
            if proc is not None:
                kill_ours(proc.pid, str(run_dir).encode())
                proc.wait(10)
            if not self.opts.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
        return run


# --- summary ----------------------------------------------------------------------------

# (label, kind, milestone): the rows of the results table.
ROWS = [
    ("kumo: POST to first console line (log file)", "kumo", "first_line"),
    ("kumo: POST to `kumo-guest: start` line", "kumo", "start"),
    ("kumo: POST to `kumo-guest: hostname` line", "kumo", "hostname"),
    ("kumo: qemu exec to `start` line (kumo's qemu alone)", "kumo", "exec_to_start"),
    ("kumo: POST to ACTIVE (launched_at)", "kumo", "active"),
    ("kumo: POST to first line in os-getConsoleOutput", "kumo", "api_console"),
    ("bare, agent's argv: exec to first console line", "bare", "first_line"),
    ("bare, agent's argv: exec to `start` line", "bare", "start"),
    ("bare, agent's argv: exec to `hostname` line", "bare", "hostname"),
    ("bare minimal: exec to first console line", "minimal", "first_line"),
    ("bare minimal: exec to `start` line", "minimal", "start"),
    ("kumo, cold image cache (first boot): POST to first line", "kumo-cold", "first_line"),
]
# The kumo rows compared with the bare row of the same milestone.
VERSUS = {
    ("kumo", "first_line"),
    ("kumo", "start"),
    ("kumo", "hostname"),
    ("kumo", "exec_to_start"),
}

# Milestones of a kumo boot, in order, for the breakdown.
BREAKDOWN = [
    ("post_returned", "POST returned (202)"),
    ("db_created", "server row written (instances.created_at)"),
    ("scheduled", "placed on the host (allocations.created_at)"),
    ("agent_dir", "agent began: instance directory made"),
    ("overlay_start", "qemu-img info done, overlay being created (disk.tmp)"),
    ("overlay_done", "overlay in place (disk)"),
    ("config_drive_start", "config drive being written (disk.config.tmp)"),
    ("config_drive_done", "config drive in place (disk.config)"),
    ("spec_written", "spec.json written"),
    ("qemu_exec", "qemu exec'd (qemu.argv written just before)"),
    ("pidfile", "qemu wrote its pidfile (early in its start)"),
    ("console_open", "qemu opened the console file"),
    ("qmp_socket", "QMP socket bound"),
    ("daemonized", "bare: qemu -daemonize returned"),
    ("active", "ACTIVE (launched_at)"),
    ("first_byte", "first console byte"),
    ("first_line", "first full console line"),
    ("start", "`kumo-guest: start` line (init running)"),
    ("hostname", "`kumo-guest: hostname` line (config drive read)"),
]


def value(r: Run, key: str) -> float | None:
    """A milestone of one run; ``exec_to_start`` is the start line since the qemu exec
    (the exec is the bare runs' zero)."""
    if key == "exec_to_start":
        if "start" not in r.ms:
            return None
        return r.ms["start"] - r.ms.get("qemu_exec", 0.0)
    return r.ms.get(key)


def values(runs: list[Run], kind: str, key: str) -> list[float]:
    return [v for r in runs if r.kind == kind and (v := value(r, key)) is not None]


def summary(runs: list[Run]) -> list[dict[str, Any]]:
    out = []
    for label, kind, key in ROWS:
        vals = values(runs, kind, key)
        if not vals:
            continue
        row: dict[str, Any] = {
            "row": label,
            "kind": kind,
            "milestone": key,
            "n": len(vals),
            "best_ms": min(vals),
            "median_ms": statistics.median(vals),
        }
        if (kind, key) in VERSUS:
            bare = values(runs, "bare", key)
            if bare:
                best, med = min(bare), statistics.median(bare)
                row["minus_bare_best_ms"] = row["best_ms"] - best
                row["minus_bare_median_ms"] = row["median_ms"] - med
                row["minus_bare_median_pct"] = 100 * (row["median_ms"] - med) / med
                pairs = _pairs(runs, key, "start" if key == "exec_to_start" else key)
                if pairs:
                    row["paired_minus_bare_median_ms"] = statistics.median(pairs)
                row["met"] = row["minus_bare_median_pct"] <= TARGET_PCT
        out.append(row)
    return out


def _pairs(runs: list[Run], key: str, bare_key: str) -> list[float]:
    """kumo minus bare of the same index (run back to back)."""
    kumo = {r.index: v for r in runs if r.kind == "kumo" and (v := value(r, key)) is not None}
    bare = {r.index: v for r in runs if r.kind == "bare" and (v := value(r, bare_key)) is not None}
    return [kumo[i] - bare[i] for i in kumo if i in bare]


def breakdown(runs: list[Run]) -> list[dict[str, Any]]:
    """Median time of each milestone since POST (kumo), the step from the previous one,
    and, from the qemu exec on, the time since the exec for kumo and for bare."""
    kumo = [r for r in runs if r.kind == "kumo"]
    bare = [r for r in runs if r.kind == "bare"]
    out = []
    previous = 0.0
    after_exec = False
    for key, label in BREAKDOWN:
        after_exec = after_exec or key == "qemu_exec"
        vals = [r.ms[key] for r in kumo if key in r.ms]
        since_exec = [
            r.ms[key] - r.ms["qemu_exec"] for r in kumo if {key, "qemu_exec"} <= set(r.ms)
        ]
        bare_vals = [r.ms[key] for r in bare if key in r.ms]
        if not vals and not bare_vals:
            continue
        row: dict[str, Any] = {"milestone": key, "what": label}
        if vals:
            med = statistics.median(vals)
            row.update(median_ms=med, best_ms=min(vals), step_ms=med - previous)
            previous = med
        if since_exec and after_exec and key != "active":
            row["kumo_since_exec_ms"] = statistics.median(since_exec)
        if bare_vals:
            row["bare_since_exec_ms"] = statistics.median(bare_vals)
        out.append(row)
    return out


def _f(v: Any, digits: int = 0) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return f"{v:,.{digits}f}"


REPRODUCE = {
    "kumo": "bench/boot.py {}",
    "bare": "bench/boot.py {}",
    "minimal": "bench/boot.py {}",
    "kumo-cold": "bench/boot.py --runs 1 --no-bare --no-minimal",
}


def table(rows: list[dict[str, Any]]) -> list[list[str]]:
    header = [
        "row",
        "n",
        "best ms",
        "median ms",
        "kumo - bare ms (medians)",
        "kumo - bare %",
        "paired median ms",
        "<= 5%",
    ]
    cells = [header]
    for r in rows:
        cells.append(
            [
                r["row"],
                str(r["n"]),
                _f(r["best_ms"]),
                _f(r["median_ms"]),
                _f(r.get("minus_bare_median_ms")),
                _f(r.get("minus_bare_median_pct"), 1),
                _f(r.get("paired_minus_bare_median_ms")),
                _f(r.get("met")),
            ]
        )
    return cells


def breakdown_table(rows: list[dict[str, Any]]) -> list[list[str]]:
    cells = [
        [
            "milestone",
            "what",
            "kumo median ms since POST",
            "best",
            "step",
            "kumo ms since qemu exec",
            "bare ms since exec",
        ]
    ]
    for r in rows:
        cells.append(
            [
                r["milestone"],
                r["what"],
                _f(r.get("median_ms")),
                _f(r.get("best_ms")),
                _f(r.get("step_ms")),
                _f(r.get("kumo_since_exec_ms")),
                _f(r.get("bare_since_exec_ms")),
            ]
        )
    return cells


def markdown(cells: list[list[str]], left: int, extra: list[str] | None = None) -> str:
    header = cells[0] + (["reproduce"] if extra is not None else [])
    lines = ["| " + " | ".join(header) + " |"]
    lines.append(
        "| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |"
    )
    for k, row in enumerate(cells[1:]):
        lines.append("| " + " | ".join(row + ([extra[k]] if extra is not None else [])) + " |")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------


def run_all(opts: Options) -> tuple[list[Run], dict[str, Any]]:
    if not shutil.which("qemu-system-x86_64") or not shutil.which("qemu-img"):
        raise BenchError("qemu-system-x86_64 and qemu-img are needed")
    tmp = tempfile.mkdtemp(prefix="kumo-bench-boot-", dir=str(opts.keep) if opts.keep else None)
    root = Path(tmp)
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="qemu")
    if opts.src is not None:
        env["PYTHONPATH"] = str(opts.src.resolve())
    runs: list[Run] = []
    info: dict[str, Any] = {"state_dir": str(root / "state")}
    log(f"starting kumo up (qemu driver) in {root}")
    up, url = start_up(root, env)
    bench: Bench | None = None
    try:
        bench = Bench(root, up, url, opts)
        _wait_host(bench)
        runs.append(bench.kumo(0, cold=True))
        info["argv"] = bench.argv
        for i in range(1, opts.runs + 1):
            runs.append(bench.kumo(i))
            if opts.bare:
                runs.append(bench.bare(i))
            if opts.minimal:
                runs.append(bench.minimal(i))
        if up.process.poll() is not None:
            raise BenchError(f"kumo up died during the run:\n{up.tail()}")
        info["accelerator"] = _accelerator(bench)
    except BaseException:
        log(f"kumo up log tail:\n{up.tail()}")
        raise
    finally:
        if bench is not None:
            bench.kill_guests()
            bench.close()
        up.stop()
        if bench is not None:
            bench.kill_guests()  # guests outlive kumo up: none of ours may
        _kill_leftovers()
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
    return runs, info


def _wait_host(bench: Bench, timeout: float = 60.0) -> None:
    """Until the local agent registered with the qemu driver (its KVM probe takes ~0.5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = bench.http.get(f"{COMPUTE}/os-hypervisors")
        if resp.status_code == 200 and resp.json().get("hypervisors"):
            return
        time.sleep(0.2)
    raise BenchError("the local agent did not register")


def _accelerator(bench: Bench) -> str:
    a = bench.argv
    return a[a.index("-accel") + 1] if "-accel" in a else "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=5, help="boots of each kind (5)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds a boot may take")
    p.add_argument(
        "--api-poll",
        type=float,
        default=0.2,
        help="seconds between os-getConsoleOutput polls, from the first line on (0: skip)",
    )
    p.add_argument("--no-bare", action="store_true", help="skip the bare runs")
    p.add_argument("--no-minimal", action="store_true", help="skip the minimal bare runs")
    p.add_argument(
        "--keep", type=Path, default=None, metavar="DIR", help="make the temp dir in DIR, keep it"
    )
    p.add_argument(
        "--src", type=Path, default=None, metavar="DIR", help="run kumo up from this src tree"
    )
    add_output_options(p)
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        runs=args.runs,
        timeout=args.timeout,
        api_poll=args.api_poll,
        minimal=not args.no_minimal,
        bare=not args.no_bare,
        keep=args.keep,
        src=args.src,
    )
    if args.render:
        doc = json.loads(args.render.read_text())
        report(doc, [Run(**r) for r in doc["runs"]], args.markdown)
        return 0
    before = machine()
    try:
        runs, info = run_all(opts)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"ERROR: {type(exc).__name__}: {exc}")
        return 1
    after = machine()
    doc = {
        "machine": {**after, "loadavg_before": before["loadavg"]},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "info": info,
        "summary": summary(runs),
        "breakdown": breakdown(runs),
        "runs": [asdict(r) for r in runs],
    }
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        report(doc, runs, args.markdown)
    return 0


def report(doc: dict[str, Any], runs: list[Run], as_markdown: bool) -> None:
    info, after = doc["info"], doc["machine"]
    loads = [r.loadavg for r in runs]
    print(
        f"kumo boot bench - {after['date']} - Python {after['python']} - {after['cpus']} CPUs - "
        f"load average (1 min) {min(loads):.1f}-{max(loads):.1f} during the runs - "
        f"accelerator {info.get('accelerator')} - {doc['options']['runs']} runs"
    )
    rows = summary(runs)
    cells = table(rows)
    steps_cells = breakdown_table(breakdown(runs))
    if as_markdown:
        runs_flag = f"--runs {doc['options']['runs']}"
        print(markdown(cells, 1, [f"`{REPRODUCE[r['kind']].format(runs_flag)}`" for r in rows]))
        print()
        print(markdown(steps_cells, 2))
    else:
        print_table(cells, left=1)
        print()
        print_table(steps_cells, left=2)
    print("\nfirst console line of each boot:")
    for r in runs:
        print(f"  {r.kind:9} {r.index}  {r.ms.get('first_line', 0):7.0f} ms  {r.first_line[:70]}")
    uptimes = [r.guest_uptime_s for r in runs if r.guest_uptime_s is not None]
    if uptimes:
        print(f"guest uptime at its start line: {min(uptimes):.2f}-{max(uptimes):.2f} s")
    for kind in ("kumo", "bare", "minimal"):
        cpu = [r.qemu_cpu_ms for r in runs if r.kind == kind and r.qemu_cpu_ms]
        if cpu:
            print(
                f"qemu CPU ms at the first console line, {kind}: median "
                f"{statistics.median(cpu):.0f}, range {min(cpu):.0f}-{max(cpu):.0f}"
            )
    kumo = [r for r in runs if r.kind == "kumo"]
    for attr, what in (
        ("up_cpu_first_ms", "POST to the first line"),
        ("up_cpu_ms", "POST to the hostname line (with the os-getConsoleOutput polls)"),
    ):
        vals = [getattr(r, attr) for r in kumo if getattr(r, attr) is not None]
        if vals:
            print(f"kumo up CPU ms, {what}: median {statistics.median(vals):.0f}")


if __name__ == "__main__":
    sys.exit(main())

"""Helpers to run the real `kumo` and OpenStack clients as subprocesses (tests/e2e, tests/cli).

Self-contained: nothing here uses tests/conftest.py. Every process started here runs in its own
process group and is stopped (SIGINT, then SIGKILL of that group only) even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from kumo.agent.network_setup import namespace_suffix
from kumo.drivers.network import names

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
BIN = Path(sys.executable).parent
KUMO = str(BIN / "kumo")
OPENSTACK = str(BIN / "openstack")
START_DEADLINE = 60.0
STOP_TIMEOUT = 20.0

# Fast heartbeats so host up/down tests finish in seconds.
FAST_ENV = {
    "KUMO_AGENT_HEARTBEAT_INTERVAL": "1",
    # The heartbeat timeout stays at its 30 s default: on a loaded 2-core CI host a 3 s one
    # let an agent look down for a moment and a server went to ERROR (NoValidHost). Tests
    # that watch a host go down set it themselves.
    # Test clouds keep the datapath in memory unless a test asks for the real one (and
    # tears it down): nothing of theirs outlives them in the kernel.
    "KUMO_AGENT_NETWORK_DRIVER": "fake",
}


def in_ci() -> bool:
    """CI=true: what a laptop may skip (no network, a missing server) fails the run there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def separate_venv(venv: Path, requirements: Path, program: str = "python") -> Path:
    """The bin directory of ``venv``: a venv of its own for a test-only client whose pins
    clash with kumo's (DESIGN.md section 8), built with uv on first use and rebuilt when
    ``requirements`` changed since the last build (a stamp file keeps the one it was built
    from) or ``program`` is missing from it. RuntimeError or subprocess.TimeoutExpired when
    it cannot be built (no uv, no network)."""
    bin_dir = venv / "bin"
    stamp = venv / ".requirements"
    wanted = requirements.read_text()
    if (bin_dir / program).exists() and stamp.exists() and stamp.read_text() == wanted:
        return bin_dir
    if not UV.exists():
        raise RuntimeError(f"{UV} missing; run `make python-deps` first")
    python = str(bin_dir / "python")
    steps = [
        [str(UV), "venv", "--quiet", "--clear", "--python", "3.11", str(venv)],
        [str(UV), "pip", "install", "--quiet", "--python", python, "-r", str(requirements)],
    ]
    stamp.unlink(missing_ok=True)
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[:3])} failed: {done.stderr.strip()[-2000:]}")
    stamp.write_text(wanted)
    return bin_dir


def separate_venv_or_skip(
    venv: Path, requirements: Path, what: str, program: str = "python"
) -> Path:
    """separate_venv for a fixture: a machine that cannot build the venv skips the tests
    that need it, with the reason; under CI=true that is a failure."""
    try:
        return separate_venv(venv, requirements, program)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        reason = f"cannot build {venv.name} with {what} ({exc})"
        if in_ci():
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without anything that could point at another cloud."""
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("KUMO_") or k.startswith("OS_"))
    }
    env.update(FAST_ENV)
    env["COLUMNS"] = "200"  # rich wraps messages and tables at the terminal width
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cloud:
    """A running `kumo up`."""

    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    @property
    def identity_url(self) -> str:
        return self.url + "/identity"

    @property
    def admin_password(self) -> str:
        return (self.state_dir / "admin-password").read_text().strip()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), **extra)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGINT (like Ctrl-C), wait; SIGKILL the process group if it does not exit.
        Returns the exit code of a clean stop, None when it had to be killed."""
        return stop_process(self.process, timeout)


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int | None:
    if process.poll() is not None:
        return process.returncode
    try:
        os.kill(process.pid, signal.SIGINT)
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        return None


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group this test started (its pgid is its own pid)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def start_cloud(
    state_dir: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> Cloud:
    """Start `kumo up` and wait (with a deadline) until its identity API answers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = state_dir.parent / f"{state_dir.name}-up-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [KUMO, "--state-dir", str(state_dir), "up", "--listen", f"127.0.0.1:{port}", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env or clean_env(),
            start_new_session=True,
        )
    cloud = Cloud(url, state_dir, process, log_path)
    deadline = time.monotonic() + START_DEADLINE
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"kumo up exited with {process.returncode} before serving:\n{cloud.output()}"
                )
            try:
                if httpx.get(cloud.identity_url, timeout=2).status_code == 300:
                    return cloud
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"kumo up did not answer within {START_DEADLINE}s:\n{cloud.output()}"
                )
            time.sleep(0.1)
    except BaseException:
        kill_group(process)
        raise


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def err(self) -> str:
        """stderr with whitespace collapsed, for matching messages rich may have wrapped."""
        return " ".join(self.stderr.split())

    def json(self) -> object:
        return json.loads(self.stdout)


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> Result:
    """Run a command to completion in its own process group (killed on timeout)."""
    process = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        out, err = process.communicate()
        raise AssertionError(f"{cmd} timed out after {timeout}s: {out!r} {err!r}") from None
    return Result(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def kumo(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run the real `kumo` command."""
    return run([KUMO, *args], env or clean_env(), timeout)


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
    why: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, failing after ``timeout`` seconds;
    ``why`` adds what the failure message should show (a console, a log tail)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    detail = f"; {why()}" if why is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){detail}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def command_lines() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every live process on the machine."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and alive(int(entry.name)):
            yield int(entry.name), argv


def cloud_namespaces(state: Path) -> set[str]:
    """The named network namespaces of the cloud on ``state`` (its host and provider
    namespaces, its DHCP and routers), whatever else runs on the machine."""
    try:
        found = set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()
    marks = (namespace_suffix(state), f"-{names.scope_for(state / 'agent' / 'network')}-")
    return {n for n in found if any(mark in n for mark in marks)}


def _in_namespace(namespace: str | None, *argv: str) -> object:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=30)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None


def kernel_leftovers(state: Path) -> dict[str, list[str]]:
    """What the cloud on ``state`` has on this machine, by kind: its processes (found by the
    state directory in their command line: kumo, qemu, dnsmasq, qemu-nbd), its network
    namespaces, and the bridges and nftables tables in them (and kumo-named ones in the
    root namespace, where kumo must never put any)."""
    mark = str(state).encode()
    processes = [
        f"{pid} {b' '.join(argv).decode(errors='replace')[:200]}"
        for pid, argv in command_lines()
        if any(mark in arg for arg in argv)
    ]
    namespaces = sorted(cloud_namespaces(state))
    bridges: list[str] = []
    tables: list[str] = []
    for namespace in [None, *namespaces]:
        where = namespace or "root"
        links = _in_namespace(namespace, "ip", "-j", "link", "show", "type", "bridge") or []
        assert isinstance(links, list)
        bridges += [
            f"{where}: {link['ifname']}"
            for link in links
            if namespace or str(link["ifname"]).startswith(names.DEVICE_PREFIXES)
        ]
        listed = _in_namespace(namespace, "nft", "-j", "list", "tables") or {}
        assert isinstance(listed, dict)
        tables += [
            f"{where}: {t['table']['family']} {t['table']['name']}"
            for t in listed.get("nftables", [])
            if "table" in t and (namespace or "kumo" in t["table"]["name"])
        ]
    return {
        "processes": processes,
        "namespaces": namespaces,
        "bridges": bridges,
        "nft tables": tables,
    }


class Pinger:
    """A continuous `busybox ping` (10 per second); its output is read as it comes so a
    test can wait for replies, and its loss is read when stopped."""

    def __init__(self, namespace: str, target: str) -> None:
        argv = ["ip", "netns", "exec", namespace, "busybox", "ping", "-i", "0.1", target]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def replies(self) -> int:
        return sum(1 for line in self.lines if "bytes from" in line)

    def wait_replies(self, more: int, timeout: float = 10.0) -> None:
        target = self.replies() + more
        wait_for(lambda: self.replies() >= target, timeout, f"{more} more ping replies", 0.05)

    def stop(self) -> tuple[int, int]:
        """(transmitted, received)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        m = re.search(r"(\d+) packets transmitted, (\d+) packets received", self.output)
        assert m, f"ping printed no statistics: {self.output[-500:]}"
        return int(m.group(1)), int(m.group(2))

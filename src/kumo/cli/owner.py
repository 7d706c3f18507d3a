"""Which kumo process runs a state directory's cloud or its guests right now.

`kumo up` holds a lock on STATE_DIR/kumo-up.pid, and whatever runs the state directory's
agent (`kumo up` or `kumo serve agent`) one on STATE_DIR/agent/agent.pid, for as long as it
runs, with its PID and command written inside. The locks are POSIX record locks (lockf):
the kernel drops them when the process ends, however it ends, and a forked child (the KVM
probe, a daemonizing qemu) does not inherit them, so a stale file never names a live owner.

`kumo down` reads them to stop the owner first instead of fighting it (a running agent
would start the guests it stops again), and holds them while it works so that no `kumo up`
starts under it. A second `kumo up` or agent on the same state directory is refused: two
agents would fight over the same guests.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UP = Path("kumo-up.pid")
AGENT = Path("agent") / "agent.pid"


@dataclass(frozen=True)
class Owner:
    pid: int
    command: str  # "kumo up", "kumo serve agent", "kumo down"

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid})"


class Busy(Exception):
    """Another process holds the lock."""

    def __init__(self, path: Path, owner: Owner) -> None:
        super().__init__(f"{owner} is running for {path.parent}")
        self.owner = owner


def _read(fd: int) -> Owner:
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    pid, _, command = text.partition(" ")
    return Owner(int(pid) if pid.isdigit() else 0, command or "another kumo process")


@contextlib.contextmanager
def hold(state_dir: Path, which: Path, command: str) -> Iterator[None]:
    """Own ``state_dir/which`` while the block runs; Busy when another process does."""
    path = state_dir / which
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise Busy(path, _read(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # drops the lock; the file stays (removing it would race a new owner)


def owner(state_dir: Path, which: Path) -> Owner | None:
    """The live process holding ``state_dir/which``, or None."""
    try:
        fd = os.open(state_dir / which, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _read(fd)
        return None  # nobody held it (closing the descriptor releases what we just took)
    finally:
        os.close(fd)

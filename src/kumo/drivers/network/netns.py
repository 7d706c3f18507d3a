"""Running things inside network namespaces: `ip -n NS` / `ip netns exec NS` for commands,
setns(2) in a short-lived thread for file descriptors (tap fds, listening sockets).

The datapath drives iproute2, nft and sysctl as subprocesses throughout (one approach:
their JSON output is stable and their error text is what an operator would see anyway).
A file descriptor, though, must be *created* inside the namespace and then used from the
root namespace (QEMU stays there for live migration over 127.0.0.1), which only setns in a
thread of our own process can do: a network namespace is per thread, and sockets and tun
files remember the namespace they were created in.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

T = TypeVar("T")


class NetworkError(Exception):
    """A datapath operation failed; the message says what and, where known, what to do."""


def run(argv: list[str], namespace: str | None = None, check: bool = True, **kw: Any) -> str:
    """Run a command (inside `namespace` when given) and return its stdout."""
    if namespace is not None:
        argv = ["ip", "netns", "exec", namespace, *argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
    except FileNotFoundError:
        raise NetworkError(f"{argv[0]} not found: install it (see Makefile system-deps)") from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"{' '.join(argv)} did not finish within 30 s") from None
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout}")
    return result.stdout


def ip(namespace: str | None, *args: str, check: bool = True) -> str:
    argv = ["ip", *(["-n", namespace] if namespace else []), *args]
    return run(argv, check=check)


def ip_json(namespace: str | None, *args: str) -> list[dict[str, Any]]:
    out = ip(namespace, "-j", *args)
    data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return data


def exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def namespaces() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def ensure(namespace: str) -> bool:
    """Create the namespace (with lo up) unless it exists; True when created."""
    if exists(namespace):
        return False
    ip(None, "netns", "add", namespace)
    ip(namespace, "link", "set", "lo", "up")
    return True


def delete(namespace: str) -> None:
    """Delete a namespace after killing nothing: callers stop their processes first."""
    if exists(namespace):
        ip(None, "netns", "delete", namespace)


def sysctl(namespace: str | None, key: str, value: str) -> None:
    """Set a sysctl inside the namespace, skipping the write when it already holds."""
    path = "/proc/sys/" + key.replace(".", "/")
    current = in_namespace(namespace, lambda: Path(path).read_text().strip())
    if current != value:
        in_namespace(namespace, lambda: Path(path).write_text(value))


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def in_namespace(namespace: str | None, fn: Callable[[], T]) -> T:
    """Call `fn` in a fresh thread that has entered `namespace` (None: here), so the
    caller's own threads never change namespace. Sockets, tun files and /proc/sys/net
    entries opened in `fn` belong to that namespace (the kernel resolves them by the
    opening thread's namespace); /sys/class/net does not follow (sysfs shows the
    namespace it was mounted in)."""
    if namespace is None:
        return fn()
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            with open(NETNS_DIR / namespace) as ns:
                _setns(ns.fileno())
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def open_tap_fd(namespace: str | None, tap_name: str, vnet_hdr: bool = True) -> int:
    """Attach to the existing tap `tap_name` in `namespace` and return its fd (the caller
    owns it), for `-netdev tap,fd=N`: QEMU itself stays in the root namespace."""

    def attach() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap_name.encode(), flags))
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.EBUSY:
                raise NetworkError(f"tap {tap_name} is already in use by another process") from None
            raise NetworkError(f"cannot attach to tap {tap_name} in {namespace}: {exc}") from None
        return fd

    return in_namespace(namespace, attach)


def listen_in_namespace(namespace: str | None, host: str, port: int) -> socket.socket:
    """A listening TCP socket bound inside `namespace` (the metadata service's plumbing:
    the agent serves HTTP on it from its own, root-namespace, event loop)."""

    def bind() -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    return in_namespace(namespace, bind)

"""Fixtures for the driver tests: a kumo-tiny guest built once per session, and one
harness per hypervisor driver (fake, qemu) that always kills what it started."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hvharness import Harness, require_qemu

from kumo.guest import TinyGuest, build_tiny_guest


@pytest.fixture(scope="session")
def tiny_guest(tmp_path_factory: pytest.TempPathFactory) -> TinyGuest:
    require_qemu()
    return build_tiny_guest(tmp_path_factory.mktemp("guest-cache"))


@pytest.fixture(params=["fake", "qemu"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    kind: str = request.param
    guest = request.getfixturevalue("tiny_guest") if kind == "qemu" else None
    # Short path: a QMP socket path must fit in 108 bytes.
    state_dir = Path(tempfile.mkdtemp(prefix="kh-", dir="/tmp"))
    h = Harness(kind, state_dir, guest)
    try:
        yield h
    finally:
        h.cleanup()

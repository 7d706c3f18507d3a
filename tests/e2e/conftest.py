"""Fixtures for end-to-end tests: a real `kumo up` driven by the real OpenStack clients.

Self-contained (no tests/conftest.py fixtures). Helpers live in kumoproc.py, next to this file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kumoproc import Cloud, start_cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One `kumo up` shared by a test module."""
    running = start_cloud(tmp_path_factory.mktemp("kumo") / "state")
    try:
        yield running
    finally:
        running.stop()

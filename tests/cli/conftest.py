"""Fixtures for `kumo` command tests: real subprocesses on throwaway state directories.

Self-contained (no tests/conftest.py fixtures). The process helpers are shared with the
end-to-end tests: tests/e2e/kumoproc.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"

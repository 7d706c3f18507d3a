"""`kumo --version`."""

from __future__ import annotations

import kumo

from kumoproc import kumo as run_kumo


def test_version_flag() -> None:
    result = run_kumo("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kumo {kumo.__version__} (agent API v1)"

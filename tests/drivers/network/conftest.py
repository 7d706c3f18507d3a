"""Fixtures for the datapath tests: a lab of namespaces per test, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import Lab, require_root


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_root()
    the_lab = Lab(tmp_path)
    try:
        yield the_lab
    finally:
        the_lab.cleanup()

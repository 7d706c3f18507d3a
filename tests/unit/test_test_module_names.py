"""Every test module's file name is unique across tests/: the test directories are not
packages, so pytest imports each module by its bare name and refuses a second module of the
same name with "import file mismatch", failing the whole run at collection (it happened
twice when branches merged)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_name() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        seen[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: paths for name, paths in seen.items() if len(paths) > 1}
    shared.pop("__init__.py", None)
    shared.pop("conftest.py", None)
    assert shared == {}, f"rename one of each: {shared}"

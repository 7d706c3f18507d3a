"""The release record (releases.toml): each release names a commit of this history, the
versions only grow, and the build's own version is past the last release."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

import kumo
from kumo.protocol import AGENT_API_VERSIONS

ROOT = Path(__file__).resolve().parents[2]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".dev")[0].split("."))


def _releases() -> list[dict[str, Any]]:
    with (ROOT / "releases.toml").open("rb") as f:
        releases: list[dict[str, Any]] = tomllib.load(f)["release"]
    return releases


def test_versions_grow_and_the_build_is_past_the_last_release() -> None:
    versions = [str(r["version"]) for r in _releases()]
    assert versions == sorted(versions, key=_key) and len(set(versions)) == len(versions)
    assert _key(kumo.__version__) > _key(versions[-1])
    assert kumo.__version__.endswith(".dev0")  # main between releases
    assert (ROOT / "CHANGELOG.md").read_text().count(f"## {versions[-1]} ") == 1


def test_each_release_is_a_commit_of_this_history() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist): no history to look in")
    shallow = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shallow.stdout.strip() == "true":
        pytest.skip("a shallow clone holds no release's commit; `git fetch --unshallow`")
    for release in _releases():
        commit = str(release["commit"])
        found = subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "--is-ancestor", commit, "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, (release["version"], found.stderr)


def test_this_build_still_speaks_the_agent_api_of_the_last_release() -> None:
    """Agents are upgraded host by host: the control plane must serve what the previous
    release's agents speak."""
    last = _releases()[-1]
    assert set(last["agent_api"]) <= set(AGENT_API_VERSIONS)

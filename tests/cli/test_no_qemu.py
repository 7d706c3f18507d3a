"""On a host without QEMU, `hypervisor = "auto"` no longer falls back to the fake driver
in silence: `kumo serve agent` refuses to start unless the fake driver is asked for by name,
and the all-in-one trial (`kumo up`) runs on it only with a loud warning. `kumo up` also
tells how to get the `openstack` CLI on PATH when it is not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kumo.cli.up import openstack_on_path

from kumoproc import BIN, KUMO, clean_env, kill_group, run, start_cloud, wait_for

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
QEMU = ("qemu-system-x86_64", "qemu-img")


def path_without(directory: Path, *programs: str) -> str:
    """A PATH with the system's programs but ``programs`` (and without kumo's venv)."""
    directory.mkdir()
    for system_dir in SYSTEM_DIRS:
        if not os.path.isdir(system_dir):
            continue
        for entry in os.scandir(system_dir):
            link = directory / entry.name
            if entry.name not in programs and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.path)
    return str(directory)


@pytest.fixture
def no_qemu(tmp_path: Path) -> str:
    return path_without(tmp_path / "bin", *QEMU, "openstack")


def agent_argv(state: Path, credential: Path) -> list[str]:
    credential.write_text("not-used\n")
    return [
        KUMO, "serve", "agent", "--state-dir", str(state), "--name", "no-qemu",
        "--api-url", "http://127.0.0.1:9", "--credential-file", str(credential),
    ]  # fmt: skip


def test_agent_refuses_auto_without_qemu(tmp_path: Path, no_qemu: str) -> None:
    argv = agent_argv(tmp_path / "state", tmp_path / "credential")
    refused = run(argv, clean_env(PATH=no_qemu), timeout=60)
    assert refused.returncode == 2, refused
    assert (
        'hypervisor = "auto" but qemu-system-x86_64, qemu-img not found on PATH: this host '
        "cannot run guests" in refused.err
    )
    assert 'hypervisor = "fake"' in refused.err  # how to ask for it


def test_agent_runs_the_fake_driver_asked_for_by_name(tmp_path: Path, no_qemu: str) -> None:
    argv = agent_argv(tmp_path / "state", tmp_path / "credential")
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        agent = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(PATH=no_qemu, KUMO_COMPUTE_HYPERVISOR="fake"),
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: 'hypervisor driver: fake (hypervisor = "fake")' in log_path.read_text(),
            60,
            "the agent to start on the fake driver",
            why=log_path.read_text,
        )
        assert agent.poll() is None, log_path.read_text()
    finally:
        kill_group(agent)


def test_up_without_qemu_warns_and_says_how_to_reach_openstack(
    tmp_path: Path, no_qemu: str
) -> None:
    state = tmp_path / "state"
    # The global option after the subcommand too (it was "No such option").
    cloud = start_cloud(state, "--state-dir", str(state), env=clean_env(PATH=no_qemu))
    try:
        out = " ".join(cloud.output().split())
        assert (
            'hypervisor fake: hypervisor = "auto" but qemu-system-x86_64, qemu-img not found '
            "on PATH; servers will be simulated in memory by the fake driver: no guest boots"
        ) in out
        assert f"export PATH={BIN}:$PATH # the openstack CLI" in out
        assert "openstack --os-cloud kumo token issue" in out
    finally:
        code = cloud.stop()
    assert code == 0, cloud.output()


def test_openstack_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(BIN))
    assert openstack_on_path() == ""  # nothing to add
    monkeypatch.setenv("PATH", str(tmp_path))
    assert openstack_on_path() == f"export PATH={BIN}:$PATH"

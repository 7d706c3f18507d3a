"""`kumo down` takes a state directory's cloud off the machine, and `kumo up` / `kumo network
show` tell the operator which provider namespace is theirs. The all-in-one cloud here runs
the real linux datapath (inside namespaces it creates) with the fake hypervisor; the qemu
guests' side is tests/e2e/test_qemu_down.py."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from kumo.agent.network_setup import namespace_suffix
from kumo.drivers.storage.volumes import registry as volumes
from kumo.drivers.storage.volumes.raw import loop_device_problem, loop_devices_of

from kumoproc import Result, clean_env, kernel_leftovers, kumo, start_cloud, stop_process

ENV = clean_env(KUMO_AGENT_NETWORK_DRIVER="linux", KUMO_COMPUTE_HYPERVISOR="fake")


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def k(state: Path, *args: str) -> Result:
    return kumo("--state-dir", str(state), *args, env=ENV)


def test_down_stops_the_cloud_and_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the linux datapath needs root (network namespaces)")
    state = tmp_path / "state"
    provider = f"kumo-provider-{namespace_suffix(state)}"
    cloud = start_cloud(state, env=ENV)
    try:
        # Which provider namespace is this cloud's: kumo up says it, kumo network show too.
        assert re.search(rf"provider netns +{provider} ", cloud.output()), cloud.output()
        shown = ok(k(state, "network", "show", "--format", "json")).json()
        assert isinstance(shown, dict)
        assert shown["provider_namespace"] == provider
        assert shown["provider_present"] is True
        assert provider in shown["namespaces"]

        # One cloud per state directory: a second kumo up is refused and says who runs.
        second = k(state, "up", "--listen", "127.0.0.1:0")
        assert second.returncode == 2
        assert f"kumo up (pid {cloud.process.pid}) is running for {state}" in second.err

        before = kernel_leftovers(state)
        assert before["namespaces"] and before["processes"], before  # the lister sees them

        # kumo down stops the running kumo up rather than fight it, then the datapath.
        down = ok(k(state, "down"))
        assert f"stopped kumo up (pid {cloud.process.pid})" in down.stdout
        assert f"deleted namespace {provider}" in down.stdout
        assert cloud.process.wait(10) == 0, cloud.output()  # a clean stop (SIGTERM)
        assert kernel_leftovers(state) == {
            "processes": [],
            "namespaces": [],
            "bridges": [],
            "nft tables": [],
        }
        after = ok(k(state, "network", "show", "--format", "json")).json()
        assert isinstance(after, dict)
        assert after["provider_present"] is False
        assert after["namespaces"] == []

        # Safe to repeat, and on a state directory that never ran.
        again = ok(k(state, "down"))
        assert again.stdout.strip() == f"nothing of {state} was running"
        never = ok(k(tmp_path / "never", "down"))
        assert "was running" in never.stdout
        assert not (tmp_path / "never").exists()

        # --purge asks first (no answer: nothing removed), --yes does not.
        refused = k(state, "down", "--purge")
        assert refused.returncode == 1
        assert (state / "kumo.db").exists()
        purged = ok(k(state, "down", "--purge", "--yes"))
        assert f"removed {state}" in purged.stdout
        assert not state.exists()
    finally:
        stop_process(cloud.process)
        kumo("--state-dir", str(state), "down", env=ENV)


def test_purge_refuses_a_directory_kumo_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")
    refused = k(precious, "down", "--purge", "--yes")
    assert refused.returncode == 1
    assert "does not look like a kumo state directory" in refused.err
    assert (precious / "notes.txt").read_text() == "keep me\n"


def test_down_detaches_the_loop_devices_of_raw_volumes(tmp_path: Path) -> None:
    problem = loop_device_problem()
    if problem:
        pytest.skip(f"loop devices unusable here: {problem}")
    state = tmp_path / "state"
    backend = volumes.create("raw", state / "agent", loop_device=True)
    volume = backend.create(str(uuid.uuid4()), 1)
    try:
        attached = backend.connection(volume.id).path
        assert loop_devices_of(Path(volume.path)) == [attached]
        ok(k(state, "down"))
        assert loop_devices_of(Path(volume.path)) == []
    finally:
        for device in loop_devices_of(Path(volume.path)):
            subprocess.run(["losetup", "-d", device], check=False)

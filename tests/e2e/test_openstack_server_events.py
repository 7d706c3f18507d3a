"""`openstack server event list` and `server event show` against a real `kumo up` (fake
hypervisor: the events are the control plane's, the guest would only cost time): each
action the CLI asked for is listed under its request id, and shows Nova's events with
their start, finish and result. Also the CLI's server tags (compute 2.26): `server set
--tag`, `server list --tag/--not-tag`, `server show` and `server unset --tag`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumoproc import OPENSTACK, Cloud, Result, clean_env, run, start_cloud, wait_for

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    state = tmp_path_factory.mktemp("events") / "state"
    running = start_cloud(state, env=clean_env(KUMO_COMPUTE_HYPERVISOR="fake"))
    try:
        yield running
    finally:
        running.stop()


def openstack(cloud: Cloud, *args: str) -> Any:
    result: Result = run([OPENSTACK, "--os-cloud", "kumo", *args, "-f", "json"], cloud.env())
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.json()


def status(cloud: Cloud, server_id: str, wanted: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        shown: dict[str, Any] = openstack(cloud, "server", "show", server_id)
        assert shown["status"] != "ERROR", shown
        return shown if shown["status"] == wanted else None

    return wait_for(probe, 120, f"server {server_id} {wanted}")


def test_server_event_list_and_show(cloud: Cloud, tmp_path: Path) -> None:
    server = openstack(
        cloud, "server", "create", "--image", "kumo-tiny", "--flavor", "m1.tiny", "evented"
    )
    status(cloud, server["id"], "ACTIVE")
    openstack_plain = [OPENSTACK, "--os-cloud", "kumo", "server", "stop", server["id"]]
    stopped = run(openstack_plain, cloud.env())
    assert stopped.returncode == 0, stopped.stderr
    status(cloud, server["id"], "SHUTOFF")

    def both_finished() -> list[dict[str, Any]] | None:
        listed: list[dict[str, Any]] = openstack(cloud, "server", "event", "list", server["id"])
        return listed if {e["Action"] for e in listed} == {"create", "stop"} else None

    listed = wait_for(both_finished, 60, "the create and stop actions listed")
    for entry in listed:
        assert entry["Server ID"] == server["id"]
        shown = openstack(cloud, "server", "event", "show", server["id"], entry["Request ID"])
        assert shown["action"] == entry["Action"]
        assert shown["request_id"] == entry["Request ID"]
        assert shown["message"] is None
        expected = {
            "create": "compute__do_build_and_run_instance",
            "stop": "compute_stop_instance",
        }[entry["Action"]]
        (event,) = shown["events"]
        assert (event["event"], event["result"]) == (expected, "Success"), event
        assert event["start_time"] <= event["finish_time"], event
        assert event["traceback"] is None  # shown to the admin the CLI runs as


def test_server_tags_set_filter_show_and_unset(cloud: Cloud) -> None:
    at_226 = ("--os-compute-api-version", "2.26")
    tagged = openstack(
        cloud, "server", "create", "--image", "kumo-tiny", "--flavor", "m1.tiny", "tagged"
    )
    plain = openstack(
        cloud, "server", "create", "--image", "kumo-tiny", "--flavor", "m1.tiny", "plain"
    )
    status(cloud, tagged["id"], "ACTIVE")
    status(cloud, plain["id"], "ACTIVE")
    command = [OPENSTACK, "--os-cloud", "kumo", *at_226, "server", "set"]
    done = run([*command, "--tag", "web", "--tag", "prod", tagged["id"]], cloud.env())
    assert done.returncode == 0, done.stderr
    shown = openstack(cloud, *at_226, "server", "show", tagged["id"])
    assert sorted(shown["tags"]) == ["prod", "web"], shown

    def names(*filters: str) -> list[str]:
        listed: list[dict[str, Any]] = openstack(cloud, *at_226, "server", "list", *filters)
        return sorted(s["Name"] for s in listed)

    assert names("--tag", "web") == ["tagged"]
    assert names("--tag", "web", "--tag", "dev") == []
    # Other tests of this module's cloud keep servers of their own: only ours are asserted.
    untagged = names("--not-tag", "web")
    assert "plain" in untagged and "tagged" not in untagged, untagged
    unset = [OPENSTACK, "--os-cloud", "kumo", *at_226, "server", "unset", "--tag", "web"]
    done = run([*unset, tagged["id"]], cloud.env())
    assert done.returncode == 0, done.stderr
    assert openstack(cloud, *at_226, "server", "show", tagged["id"])["tags"] == ["prod"]
    assert names("--tag", "web") == []

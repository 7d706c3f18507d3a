"""The metrics endpoints of real processes: `kumo up`'s /metrics has everything (the cloud's
state, its in-process controller's lease and scheduler), and `kumo serve controller` serves
its own at KUMO_CONTROLLER_METRICS_LISTEN while it runs (a standby one here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kumoproc import KUMO, clean_env, free_port, start_cloud, stop_process, wait_for

ENV = clean_env(KUMO_COMPUTE_HYPERVISOR="fake")


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    """The endpoint's samples, or None while it does not answer."""
    try:
        resp = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    assert resp.status_code == 200, resp.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def named(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> list[float]:
    return [v for (n, _), v in found.items() if n == name]


def test_kumo_up_and_a_standby_controller_serve_metrics(state_dir: Path) -> None:
    cloud = start_cloud(state_dir, env=ENV)
    controller: subprocess.Popen[bytes] | None = None
    try:

        def whole() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            found = samples(cloud.url + "/metrics")
            if not found or named(found, "kumo_controller_active") != [1.0]:
                return None
            # Its agent's host is up and carries router1 (kumo up's seeded router).
            if named(found, "kumo_host_up") != [1.0] or named(found, "kumo_host_routers") != [1]:
                return None
            return found

        found = wait_for(whole, 60, "kumo up's /metrics with its host, router and controller")
        assert named(found, "kumo_host_capacity_vcpus")[0] > 0
        assert named(found, "kumo_routers_unplaced") == [0]
        assert named(found, "kumo_api_requests_total")  # the API's own, in the same answer

        listen = f"127.0.0.1:{free_port()}"
        log = state_dir.parent / "controller.log"
        with log.open("wb") as out:
            controller = subprocess.Popen(
                [KUMO, "--state-dir", str(state_dir), "serve", "controller"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**ENV, "KUMO_CONTROLLER_METRICS_LISTEN": listen},
                start_new_session=True,
            )
        url = f"http://{listen}/metrics"
        own = wait_for(
            lambda: samples(url), 60, "the controller's metrics", why=lambda: log.read_text()
        )
        # kumo up's controller holds the lease: this one waits, and says so.
        assert named(own, "kumo_controller_active") == [0.0]
        assert "kumo_scheduler_placement_seconds_count" in {n for n, _ in own}
        assert not named(own, "kumo_host_up")  # the cloud's state is the API's to serve
        assert stop_process(controller) == 0
        assert samples(url) is None  # gone with its process
    finally:
        if controller is not None:
            stop_process(controller)
        cloud.stop()

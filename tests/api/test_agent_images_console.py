"""What the agent needs to boot real guests: image metadata and data through the agent API,
the host's image cache, the guest spec (root overlay, kernel, config drive), and console
output from the agent's report to os-getConsoleOutput."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kumo.agent.compute import ComputeLoop, minimal_spec
from kumo.agent.images import ImageCache, ImageFetchError
from kumo.agent.service import Agent
from kumo.agent.spec import QemuSpecBuilder
from kumo.config import SchedulerConfig
from kumo.controller import scheduler
from kumo.core import hosts
from kumo.db import models as m
from kumo.drivers import disks
from kumo.drivers.configdrive import read_config_drive
from kumo.drivers.hypervisor.base import HypervisorError, instance_dir
from kumo.drivers.hypervisor.fake import FakeDriver

AGENT = "/agent/v1"
SERVERS = "/compute/v2.1/servers"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoUnitTestKey unit@kumo"


def _agent_client(cloud: Any) -> TestClient:
    with cloud.db.session() as session:
        credential = hosts.ensure_host_credential(session)
    return TestClient(
        cloud.client.app,
        raise_server_exceptions=False,
        headers={"X-Kumo-Host-Credential": credential},
    )


def _add_image(
    cloud: Any,
    data: bytes,
    disk_format: str = "raw",
    properties: dict[str, Any] | None = None,
    visibility: str = "private",
) -> str:
    image_id = str(uuid.uuid4())
    store = cloud.config.images_dir
    store.mkdir(parents=True, exist_ok=True)
    (store / image_id).write_bytes(data)
    with cloud.db.session() as session:
        session.add(
            m.Image(
                id=image_id,
                name=f"img-{image_id[:8]}",
                owner=cloud.boot.admin_project_id,
                status="active",
                visibility=visibility,
                disk_format=disk_format,
                container_format="bare",
                size=len(data),
                virtual_size=len(data),
                checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                os_hash_algo="sha512",
                os_hash_value=hashlib.sha512(data).hexdigest(),
                properties=properties or {},
                locations=[],
            )
        )
    return image_id


def test_agent_image_routes_need_the_host_credential(cloud: Any) -> None:
    image_id = _add_image(cloud, b"kernel bytes", "aki", {"x": "y"})
    agent = _agent_client(cloud)
    shown = agent.get(f"{AGENT}/images/{image_id}")
    assert shown.status_code == 200, shown.text
    meta = shown.json()["image"]
    assert (meta["disk_format"], meta["size"], meta["properties"]) == ("aki", 12, {"x": "y"})
    assert meta["os_hash_value"] == hashlib.sha512(b"kernel bytes").hexdigest()
    data = agent.get(f"{AGENT}/images/{image_id}/file")
    assert data.status_code == 200 and data.content == b"kernel bytes"
    assert cloud.client.get(f"{AGENT}/images/{image_id}").status_code in (401, 403)
    assert cloud.client.get(f"{AGENT}/images/{image_id}/file").status_code in (401, 403)
    assert agent.get(f"{AGENT}/images/{uuid.uuid4()}").status_code == 404


def test_image_cache_downloads_once_and_verifies(cloud: Any, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096
    image_id = _add_image(cloud, payload)
    cache = ImageCache(_agent_client(cloud), AGENT, tmp_path / "cache")
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(image_id).path)) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert cache.downloads == 1
    assert results[0].read_bytes() == payload
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [image_id, image_id + ".json"]
    # A fresh cache (an agent restart) finds the image without downloading it again.
    again = ImageCache(_agent_client(cloud), AGENT, tmp_path / "cache")
    assert again.get(image_id).meta["size"] == len(payload) and again.downloads == 0

    bad = _add_image(cloud, b"the real data")
    with cloud.db.session() as session:
        session.get(m.Image, bad).os_hash_value = "0" * 128
    with pytest.raises(ImageFetchError, match="checksum"):
        cache.get(bad)
    assert not (tmp_path / "cache" / bad).exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]
    with pytest.raises(ImageFetchError, match="not found"):
        cache.get(str(uuid.uuid4()))


def _item(image_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": "vm one",
        "hostname": "vm-one",
        "project_id": "p",
        "flavor": {"vcpus": 1, "ram": 128, "disk": 1},
        "image_id": image_id,
        "key_name": "k",
        "key_data": KEY,
        "user_data": "aGVsbG8K",
        "metadata": {"a": "b"},
        "config_drive": False,
        "availability_zone": "nova",
        "launch_index": 0,
        **extra,
    }


def test_spec_for_a_kernel_image_with_overlay_and_config_drive(cloud: Any, tmp_path: Path) -> None:
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img not installed (apt install qemu-utils)")
    base = disks.create_blank(tmp_path / "base.qcow2", 32 << 20)
    kernel = _add_image(cloud, b"K" * 100, "aki")
    ramdisk = _add_image(cloud, b"R" * 100, "ari")
    disk = _add_image(
        cloud,
        base.read_bytes(),
        "qcow2",
        {
            "kernel_id": kernel,
            "ramdisk_id": ramdisk,
            "os_command_line": "console=ttyS0 quiet",
        },
    )
    cache = ImageCache(_agent_client(cloud), AGENT, tmp_path / "agent" / "images")
    build = QemuSpecBuilder(cache, tmp_path / "agent", force_config_drive=True)
    item = _item(disk)
    spec = build(item)
    directory = instance_dir(tmp_path / "agent", item["id"])
    assert spec.root_disk == str(directory / "disk")
    info = disks.info(Path(spec.root_disk))
    assert info.backing_file == str(cache.path(disk).resolve())
    assert info.virtual_size == 1 << 30  # the flavor's 1 GiB
    assert spec.kernel == str(cache.path(kernel)) and spec.ramdisk == str(cache.path(ramdisk))
    assert spec.cmdline == "console=ttyS0 quiet"
    assert spec.display == "vga"  # what the VNC console shows
    headless = _add_image(cloud, base.read_bytes(), "qcow2", {"hw_video_model": "none"})
    assert build(_item(headless)).display == "none"
    assert spec.config_drive == str(directory / "disk.config")
    files = read_config_drive(Path(spec.config_drive))
    assert b'"hostname": "vm-one"' in files["openstack/latest/meta_data.json"]
    assert KEY.encode() in files["openstack/latest/meta_data.json"]
    assert files["openstack/latest/user_data"] == b"hello\n"
    # Building again (an agent that crashed mid-spawn) keeps the guest's disk.
    (directory / "disk").touch()
    mtime = (directory / "disk").stat().st_mtime_ns
    build(item)
    assert (directory / "disk").stat().st_mtime_ns == mtime

    no_drive = QemuSpecBuilder(cache, tmp_path / "agent", force_config_drive=False)
    assert no_drive(_item(disk)).config_drive is None
    assert no_drive(_item(disk, config_drive=True)).config_drive is not None
    with pytest.raises(HypervisorError, match="aki"):
        build(_item(kernel))
    with pytest.raises(HypervisorError, match="not found"):
        build(_item(str(uuid.uuid4())))


def test_fake_driver_agent_builds_specs_without_disks(tmp_path: Path) -> None:
    agent = Agent(
        "http://127.0.0.1:9", "cred", tmp_path, "h", driver=FakeDriver(tmp_path / "agent")
    )
    item = _item(str(uuid.uuid4()))
    assert agent.build_spec(item) == minimal_spec(item)


# --- console output ----------------------------------------------------------------------
class Host:
    def __init__(self, cloud: Any, tmp_path: Path) -> None:
        self.cloud = cloud
        self.agent = _agent_client(cloud)
        self.host_id = str(uuid.uuid4())
        body = {
            "host": {
                "id": self.host_id,
                "name": "fake-c",
                "agent_api_versions": ["v1"],
                "capabilities": {"hypervisor": {"driver": "fake"}},
                "inventory": {"vcpus": 8, "memory_mb": 8704, "disk_gb": 100},
            }
        }
        assert self.agent.post(f"{AGENT}/hosts", json=body).status_code == 200
        self.loop = ComputeLoop(self.agent, AGENT, self.host_id, FakeDriver(tmp_path / "fake"))
        self.image_id = _add_image(cloud, b"x", "qcow2", visibility="public")

    def create(self) -> str:
        body = {"server": {"name": "vm", "imageRef": self.image_id, "flavorRef": "1"}}
        resp = self.cloud.client.post(SERVERS, json=body, headers=self.cloud.admin)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])

    def converge(self) -> None:
        scheduler.schedule_pending(self.cloud.db, SchedulerConfig(), 60.0)
        self.loop.sync_once()

    def output(self, server_id: str, args: Any) -> Any:
        return self.cloud.client.post(
            f"{SERVERS}/{server_id}/action",
            json={"os-getConsoleOutput": args},
            headers=self.cloud.admin,
        )


def test_console_output_from_the_agent(cloud: Any, tmp_path: Path) -> None:
    host = Host(cloud, tmp_path)
    server_id = host.create()
    not_ready = host.output(server_id, {})
    assert not_ready.status_code == 409, not_ready.text
    host.converge()
    assert host.output(server_id, {}).json() == {"output": ""}
    assert host.loop.post_consoles() == 1
    tail = host.loop.driver.console_log(server_id) + b"kumo-guest: one more line\n"
    host.loop.driver.console_log = lambda uuid, tail_bytes=65536: tail  # type: ignore[method-assign]
    assert host.loop.post_consoles() == 1  # changed: posted
    assert host.loop.post_consoles() == 0  # unchanged: nothing posted
    full = host.output(server_id, {"length": None})
    assert full.status_code == 200, full.text
    assert "kumo-guest: hostname" in full.json()["output"]
    lines = full.json()["output"].strip("\n").split("\n")
    assert host.output(server_id, {"length": -1}).json() == full.json()
    one = host.output(server_id, {"length": "1"}).json()["output"].strip("\n")
    assert one == lines[-1] or one == ""
    assert host.output(server_id, {"length": 0}).json() == {"output": ""}
    for bad in (
        {"length": "x"},
        {"length": -2},
        {"length": 1.5},
        {"length": True},
        {"lines": 3},
        None,
        "all",
    ):
        resp = host.output(server_id, bad)
        assert resp.status_code == 400, (bad, resp.text)
    other = host.agent.post(
        f"{AGENT}/hosts/{uuid.uuid4()}/instances/{server_id}/console", json={"content": "x"}
    )
    assert other.status_code == 404
    no_content = host.agent.post(
        f"{AGENT}/hosts/{host.host_id}/instances/{server_id}/console", json={"content": 3}
    )
    assert no_content.status_code == 400
    big = "a\x01b\n" * 30000
    posted = host.agent.post(
        f"{AGENT}/hosts/{host.host_id}/instances/{server_id}/console", json={"content": big}
    )
    assert posted.status_code == 204
    output = host.output(server_id, {}).json()["output"]
    assert "\x01" not in output and len(output) <= 64 * 1024
    member = cloud.client.post(
        f"{SERVERS}/{uuid.uuid4()}/action", json={"os-getConsoleOutput": {}}, headers=cloud.admin
    )
    assert member.status_code == 404


def test_console_reader_gets_a_fresh_copy_from_a_listening_agent(
    cloud: Any, tmp_path: Path
) -> None:
    # Periodic posting is off (an hour): what the reader sees can only come from the agent
    # answering the ask carried by its long-poll.
    host = Host(cloud, tmp_path)
    host.loop.console_interval = 3600.0
    host.loop.poll_wait = 5.0
    stop = threading.Event()
    runner = threading.Thread(target=host.loop.run, args=(stop,), daemon=True)
    runner.start()
    try:
        server_id = host.create()
        scheduler.schedule_pending(cloud.db, SchedulerConfig(), 60.0)
        deadline = time.monotonic() + 30
        output = ""
        while time.monotonic() < deadline and "kumo-guest: hostname" not in output:
            resp = host.output(server_id, {})
            if resp.status_code == 200:
                output = resp.json()["output"]
        assert "kumo-guest: hostname" in output
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()

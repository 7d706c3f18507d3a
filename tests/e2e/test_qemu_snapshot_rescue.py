"""Snapshots and rescue of real guests: `kumo up` with the qemu driver and the real
`openstack` CLI. A snapshot of a running kumo-tiny server boots a new server that prints
its own lines; a rescue boots the guest again from the image with its disk as vdc.
Every QEMU these tests caused is killed by PID in a finalizer (Guests.cleanup)."""

from __future__ import annotations

from pathlib import Path

from test_qemu_server import (
    Guests,
    create_server,
    ok,
    openstack,
    qemu_cloud,  # noqa: F401 (the fixture)
    wait_console,
    wait_status,
)

from kumoproc import Cloud, alive, wait_for


def test_snapshot_boots_and_rescue_shows_rescue_boot(
    qemu_cloud: tuple[Cloud, Guests],  # noqa: F811
    tmp_path: Path,
) -> None:
    cloud, guests = qemu_cloud
    server_id = create_server(cloud, tmp_path, "vm1")["id"]
    pid = guests.pid(server_id)
    wait_console(cloud, "vm1", "kumo-guest: hostname vm1")

    # Snapshot the running guest; --wait polls the image until it is active.
    ok(
        openstack(
            cloud, "server", "image", "create", "--name", "snap1", "--wait", "vm1", timeout=600
        )
    )
    image = ok(openstack(cloud, "image", "show", "snap1", "-f", "json")).json()
    assert image["status"] == "active", image
    assert image["disk_format"] == "qcow2"
    props = image["properties"]
    assert props["instance_uuid"] == server_id and props["image_type"] == "snapshot"
    assert props["kernel_id"] and props["ramdisk_id"]
    shown = wait_status(cloud, "vm1", "ACTIVE")
    assert shown["OS-EXT-STS:task_state"] is None
    assert guests.pid(server_id) == pid and alive(pid), "the snapshot restarted the guest"

    # A new server from the snapshot boots and prints its own lines.
    created = ok(
        openstack(
            cloud,
            "server",
            "create",
            "--image",
            "snap1",
            "--flavor",
            "m1.tiny",
            "--key-name",
            "k",
            "--wait",
            "vm2",
            "-f",
            "json",
        )
    ).json()
    assert created["status"] == "ACTIVE", created
    guests.pid(created["id"])
    wait_console(cloud, "vm2", "kumo-guest: hostname vm2")

    # Rescue vm1: it boots again from kumo-tiny, its own disk attached as vdc.
    ok(openstack(cloud, "server", "rescue", "vm1"))
    wait_status(cloud, "vm1", "RESCUE", timeout=180)
    wait_for(lambda: not alive(pid), 30, f"qemu {pid} to exit")
    rescue_pid = guests.pid(server_id)
    text = wait_console(cloud, "vm1", "kumo-guest: disk vdc")
    assert text.count("kumo-guest: start") >= 2, text
    ok(openstack(cloud, "server", "unrescue", "vm1"))
    shown = wait_status(cloud, "vm1", "ACTIVE", timeout=180)
    assert shown["OS-EXT-STS:task_state"] is None
    wait_for(lambda: not alive(rescue_pid), 30, f"qemu {rescue_pid} to exit")
    assert alive(guests.pid(server_id))
    instance = cloud.state_dir / "agent" / "instances" / server_id
    assert not (instance / "disk.rescue").exists() and not (instance / "rescue.json").exists()

    ok(openstack(cloud, "server", "delete", "--wait", "vm1", "vm2"))

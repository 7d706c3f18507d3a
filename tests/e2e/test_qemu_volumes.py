"""Block volumes with real guests: `kumo up` with the qemu driver and the file backend,
driven by the real `openstack` CLI. A volume hot-plugged into a running kumo-tiny guest
shows up as a new disk; the guest writes a marker into it; after a detach and an attach to a
second guest, that guest reads the marker back. A snapshot of the attached volume and a
volume made from it hold the same bytes; an extend shows the new size; a server boots from
a volume made from the kumo-tiny image. Every QEMU is killed by PID in a finalizer."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from test_qemu_server import (
    Guests,
    console,
    ok,
    openstack,
    qemu_cloud,  # noqa: F401 (the fixture)
    wait_console,
    wait_status,
)

from kumoproc import Cloud, wait_for

MARKER = "kumo-volume-marker-7f3a"
# kumo-tiny runs user data that starts with #! (as cloud-init would): wait for a disk that
# was not there at boot, then write (or read) the marker at its start. The write is flushed
# (fsync on the device): a snapshot of an in-use volume holds what the guest flushed.
WAIT_FOR_NEW_DISK = """#!/bin/sh
before=" $(ls /sys/block | tr '\\n' ' ') "
new=""
while [ -z "$new" ]; do
    for d in $(ls /sys/block); do
        case "$before" in *" $d "*) ;; *) new=$d ;; esac
    done
    sleep 1
done
"""
WRITER = (
    WAIT_FOR_NEW_DISK
    + f"""printf '{MARKER}' | dd of=/dev/$new bs=512 conv=sync,fsync 2>/dev/null
sync
echo "kumo-test: wrote marker to $new"
"""
)
READER = (
    WAIT_FOR_NEW_DISK
    + """echo "kumo-test: read $(head -c 40 /dev/$new | tr -d '\\000')"
"""
)


def _server(cloud: Cloud, tmp_path: Path, name: str, script: str) -> dict[str, Any]:
    user_data = tmp_path / f"{name}.sh"
    user_data.write_text(script)
    created: dict[str, Any] = ok(
        openstack(
            cloud, "server", "create", "--image", "kumo-tiny", "--flavor", "m1.tiny",
            "--user-data", str(user_data), "--wait", name, "-f", "json",
        )
    ).json()  # fmt: skip
    assert created["status"] == "ACTIVE", created
    return created


def _volume(cloud: Cloud, name: str) -> dict[str, Any]:
    return dict(ok(openstack(cloud, "volume", "show", name, "-f", "json")).json())


def _wait_volume(cloud: Cloud, name: str, status: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        volume = _volume(cloud, name)
        assert volume["status"] not in ("error", "error_deleting", "error_extending"), volume
        return volume if volume["status"] == status else None

    return wait_for(probe, timeout, f"volume {name} to be {status}")


def _file_of(cloud: Cloud, volume_id: str) -> Path:
    found = list(cloud.state_dir.glob(f"agent/volumes/file/*{volume_id}*"))
    assert len(found) == 1, found
    return found[0]


def _first_bytes(path: Path, tmp_path: Path) -> bytes:
    """The volume's first sector as a guest sees it (read through the qcow2, sharing the
    image lock with a QEMU that may hold it)."""
    out = tmp_path / f"{path.name}.sector"
    subprocess.run(
        ["qemu-img", "dd", "-U", "-f", "qcow2", "-O", "raw", "bs=512", "count=1",
         f"if={path}", f"of={out}"],
        capture_output=True, check=True,
    )  # fmt: skip
    return out.read_bytes()


def test_volume_moves_its_data_between_guests(
    qemu_cloud: tuple[Cloud, Guests],  # noqa: F811
    tmp_path: Path,
) -> None:
    cloud, guests = qemu_cloud
    ok(openstack(cloud, "volume", "create", "--size", "1", "data"))
    _wait_volume(cloud, "data", "available")
    writer = _server(cloud, tmp_path, "writer", WRITER)
    guests.pid(writer["id"])
    wait_console(cloud, "writer", "kumo-guest: hostname writer")

    ok(openstack(cloud, "server", "add", "volume", "writer", "data"))
    attached = _wait_volume(cloud, "data", "in-use")
    assert attached["attachments"][0]["server_id"] == writer["id"]
    text = wait_console(cloud, "writer", "kumo-test: wrote marker to")
    assert "kumo-guest: disk vd" in text

    # A snapshot of the attached volume (force: it is in use), and a volume made from it.
    ok(openstack(cloud, "volume", "snapshot", "create", "--volume", "data", "--force", "snap"))
    wait_for(
        lambda: (
            ok(openstack(cloud, "volume", "snapshot", "show", "snap", "-f", "json")).json()[
                "status"
            ]
            == "available"
        ),
        120,
        "snapshot snap to be available",
    )
    ok(openstack(cloud, "volume", "create", "--snapshot", "snap", "--size", "1", "copy"))
    copy = _wait_volume(cloud, "copy", "available")
    assert _first_bytes(_file_of(cloud, copy["id"]), tmp_path).startswith(MARKER.encode())

    # Detach from the writer (the guest lets go of it), attach to a reader.
    ok(openstack(cloud, "server", "remove", "volume", "writer", "data"))
    _wait_volume(cloud, "data", "available")
    wait_console(cloud, "writer", "kumo-guest: disk-gone vd")
    reader = _server(cloud, tmp_path, "reader", READER)
    guests.pid(reader["id"])
    wait_console(cloud, "reader", "kumo-guest: hostname reader")
    ok(openstack(cloud, "server", "add", "volume", "reader", "data"))
    _wait_volume(cloud, "data", "in-use")
    wait_console(cloud, "reader", f"kumo-test: read {MARKER}")

    # Rules: in use, it cannot be deleted, nor attached to a second server.
    refused = openstack(cloud, "volume", "delete", "data")
    assert refused.returncode != 0 and "attached" in refused.stderr.lower(), refused.stderr
    refused = openstack(cloud, "server", "add", "volume", "writer", "data")
    assert refused.returncode != 0, refused.stdout

    # Extend a detached volume: the new size is what the volume and its file say.
    ok(openstack(cloud, "volume", "set", "--size", "2", "copy"))
    extended = _wait_volume(cloud, "copy", "available")
    assert extended["size"] == 2
    info = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(_file_of(cloud, copy["id"]))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert '"virtual-size": 2147483648' in info


def test_boot_from_a_volume_made_from_the_image(
    qemu_cloud: tuple[Cloud, Guests],  # noqa: F811
    tmp_path: Path,
) -> None:
    cloud, guests = qemu_cloud
    ok(openstack(cloud, "volume", "create", "--image", "kumo-tiny", "--size", "1", "root"))
    root = _wait_volume(cloud, "root", "available", timeout=300)
    assert root["bootable"] in (True, "true")  # the CLI shows it as a boolean
    created = ok(
        openstack(
            cloud, "server", "create", "--volume", "root", "--flavor", "m1.tiny", "--wait",
            "fromvol", "-f", "json",
        )
    ).json()  # fmt: skip
    assert created["status"] == "ACTIVE", created
    guests.pid(created["id"])
    wait_console(cloud, "fromvol", "kumo-guest: hostname fromvol")
    shown = wait_status(cloud, "fromvol", "ACTIVE")
    assert shown["image"] in ("", None) or "N/A" in str(shown["image"]), shown["image"]
    assert _volume(cloud, "root")["status"] == "in-use"
    # Deleting the server keeps the volume (delete_on_termination is false).
    ok(openstack(cloud, "server", "delete", "--wait", "fromvol"))
    _wait_volume(cloud, "root", "available")

    # --boot-from-volume: the volume is made from the image for the server, which waits
    # for it and boots from it.
    made = ok(
        openstack(
            cloud, "server", "create", "--image", "kumo-tiny", "--boot-from-volume", "1",
            "--flavor", "m1.tiny", "--wait", "bfv", "-f", "json", timeout=600,
        )
    ).json()  # fmt: skip
    assert made["status"] == "ACTIVE", made
    guests.pid(made["id"])
    wait_console(cloud, "bfv", "kumo-guest: hostname bfv")
    volumes = ok(openstack(cloud, "volume", "list", "-f", "json")).json()
    assert any(v["Status"] == "in-use" and v["Size"] == 1 for v in volumes), volumes


def _guest_disks(text: str) -> dict[str, str]:
    """Serial -> vdX of the disks kumo-tiny sees now, from its console: the lines of its
    last boot ("kumo-guest: disk vdc <serial>", "kumo-guest: disk-gone vdc")."""
    seen: dict[str, str] = {}
    boot = text.rsplit("kumo-guest: start", 1)[-1]
    for line in boot.splitlines():
        words = line.split("kumo-guest: ", 1)[-1].split()
        if len(words) == 3 and words[0] == "disk":
            seen[words[2]] = words[1]
        elif len(words) == 2 and words[0] == "disk-gone":
            seen = {serial: name for serial, name in seen.items() if name != words[1]}
    return seen


def _api_devices(cloud: Cloud, server: str) -> dict[str, str]:
    """Serial (as the guest shows it: a volume id's first 20 characters) -> the device the
    compute API reports for each volume attached to the server."""
    listed = ok(openstack(cloud, "server", "volume", "list", server, "-f", "json")).json()
    return {a["Volume ID"][:20]: a["Device"].removeprefix("/dev/") for a in listed}


def _guest_agrees(cloud: Cloud, server: str, boots: int = 1) -> dict[str, str]:
    """Wait until the guest (in its `boots`-th boot) sees exactly the volumes the API lists,
    and under the names the API reports."""

    def probe() -> dict[str, str] | None:
        text = console(cloud, server)
        if text.count("kumo-guest: start") < boots:
            return None
        seen = _guest_disks(text)
        api = _api_devices(cloud, server)
        volumes = {s: n for s, n in seen.items() if s not in ("root", "config-2")}
        return seen if volumes == api else None

    return wait_for(probe, 180, f"{server}'s guest to see its volumes as the API names them")


def test_the_reported_device_is_the_guests(
    qemu_cloud: tuple[Cloud, Guests],  # noqa: F811
) -> None:
    """With a config drive (vdb), a volume mapped at boot and volumes hot-plugged later get
    the names the API reports, as the guest's kernel prints them; a volume plugged after a
    middle one left takes its name, and every name holds across a stop and start."""
    cloud, guests = qemu_cloud
    ids = {}
    for name in ("boot-data", "hot1", "hot2", "hot3"):
        ok(openstack(cloud, "volume", "create", "--size", "1", name))
        ids[name] = _wait_volume(cloud, name, "available")["id"]
    created = ok(
        openstack(
            cloud, "server", "create", "--image", "kumo-tiny", "--flavor", "m1.tiny",
            "--block-device", f"uuid={ids['boot-data']},source_type=volume,"
            "destination_type=volume,device_name=/dev/vdb", "--wait", "disks", "-f", "json",
        )
    ).json()  # fmt: skip
    assert created["status"] == "ACTIVE", created
    guests.pid(created["id"])
    seen = _guest_agrees(cloud, "disks")
    assert (seen["root"], seen["config-2"], seen[ids["boot-data"][:20]]) == ("vda", "vdb", "vdc")

    ok(openstack(cloud, "server", "add", "volume", "disks", "hot1"))
    ok(openstack(cloud, "server", "add", "volume", "disks", "hot2"))
    _wait_volume(cloud, "hot2", "in-use")
    seen = _guest_agrees(cloud, "disks")
    assert (seen[ids["hot1"][:20]], seen[ids["hot2"][:20]]) == ("vdd", "vde")

    # The middle one goes, a new one comes: the guest names it as the one that left.
    ok(openstack(cloud, "server", "remove", "volume", "disks", "hot1"))
    _wait_volume(cloud, "hot1", "available")
    ok(openstack(cloud, "server", "add", "volume", "disks", "hot3"))
    _wait_volume(cloud, "hot3", "in-use")
    seen = _guest_agrees(cloud, "disks")
    assert (seen[ids["hot3"][:20]], seen[ids["hot2"][:20]]) == ("vdd", "vde")

    # A new boot names the disks in PCI order: the same names.
    ok(openstack(cloud, "server", "stop", "disks"))
    wait_status(cloud, "disks", "SHUTOFF")
    ok(openstack(cloud, "server", "start", "disks"))
    wait_status(cloud, "disks", "ACTIVE")
    guests.pid(created["id"])
    after = _guest_agrees(cloud, "disks", boots=2)
    assert after == seen, (seen, after)

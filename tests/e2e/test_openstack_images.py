"""The real `openstack image ...` commands against a real `kumo up`."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from kumoproc import OPENSTACK, Cloud, Result, run

pytestmark = pytest.mark.clients


def openstack(cloud: Cloud, *args: str) -> Result:
    return run([OPENSTACK, "--os-cloud", "kumo", *args], cloud.env())


def ok_json(result: Result) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.json()


def test_image_create_list_show_save_delete(cloud: Cloud, tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(disk), "32M"], check=True, capture_output=True
    )
    name = f"e2e-image-{uuid.uuid4().hex[:8]}"
    created = ok_json(
        openstack(
            cloud,
            "image", "create", "--file", str(disk), "--disk-format", "qcow2",
            "--container-format", "bare", "--property", "os_distro=tiny", name, "-f", "json",
        )
    )  # fmt: skip
    assert created["name"] == name
    digest = hashlib.md5(disk.read_bytes()).hexdigest()

    listed = ok_json(openstack(cloud, "image", "list", "-f", "json"))
    assert {"ID": created["id"], "Name": name, "Status": "active"} in listed

    shown = ok_json(openstack(cloud, "image", "show", name, "-f", "json"))
    assert shown["id"] == created["id"]
    assert shown["status"] == "active"
    assert shown["disk_format"] == "qcow2"
    assert shown["checksum"] == digest
    assert shown["size"] == disk.stat().st_size
    assert shown["virtual_size"] == 32 * 1024 * 1024

    saved = tmp_path / "saved.qcow2"
    result = openstack(cloud, "image", "save", "--file", str(saved), name)
    assert result.returncode == 0, result.stderr
    assert saved.read_bytes() == disk.read_bytes()

    result = openstack(cloud, "image", "delete", name)
    assert result.returncode == 0, result.stderr
    gone = openstack(cloud, "image", "show", created["id"], "-f", "json")
    assert gone.returncode != 0
    assert "no image" in gone.stderr.lower() or "404" in gone.stderr, gone.stderr


def test_unsafe_image_is_refused(cloud: Cloud, tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    evil = tmp_path / "evil.qcow2"
    for args in (
        ["create", "-f", "qcow2", str(base), "16M"],
        ["create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(evil)],
    ):
        subprocess.run(["qemu-img", *args], check=True, capture_output=True)
    name = f"e2e-evil-{uuid.uuid4().hex[:8]}"
    result = openstack(
        cloud, "image", "create", "--file", str(evil), "--disk-format", "qcow2", name
    )
    assert result.returncode != 0
    assert "backing file" in result.err or "400" in result.err, result.stderr

"""The config drive reads back (with pycdlib) as the OpenStack layout cloud-init expects."""

from __future__ import annotations

import json
from pathlib import Path

from kumo.drivers.configdrive import (
    ConfigDriveData,
    build_config_drive,
    read_config_drive,
    volume_label,
)


def test_contents(tmp_path: Path) -> None:
    data = ConfigDriveData(
        uuid="6f1e1f2e-5c1a-4a43-9d5e-2e0b5d9f0b1a",
        name="Web Server 1",
        public_keys={"mykey": "ssh-ed25519 AAAA me@here"},
        user_data=b"#cloud-config\n",
        availability_zone="az1",
        meta={"role": "web"},
        network_data={"links": [{"id": "tap1"}], "networks": [], "services": []},
    )
    path = build_config_drive(tmp_path / "cd.iso", data)
    assert volume_label(path) == "config-2"
    files = read_config_drive(path)
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["uuid"] == data.uuid
    assert meta["name"] == "Web Server 1"
    assert meta["hostname"] == "web-server-1"
    assert meta["public_keys"] == {"mykey": "ssh-ed25519 AAAA me@here"}
    assert meta["launch_index"] == 0 and meta["availability_zone"] == "az1"
    assert meta["meta"] == {"role": "web"}
    assert files["openstack/latest/user_data"] == b"#cloud-config\n"
    assert json.loads(files["openstack/latest/network_data.json"])["links"] == [{"id": "tap1"}]
    assert files["openstack/2012-08-10/meta_data.json"] == files["openstack/latest/meta_data.json"]
    ec2 = json.loads(files["ec2/latest/meta-data.json"])
    assert ec2["instance-id"] == data.uuid
    assert ec2["public-keys"]["0"]["openssh-key"] == "ssh-ed25519 AAAA me@here"


def test_without_user_data(tmp_path: Path) -> None:
    path = build_config_drive(tmp_path / "cd.iso", ConfigDriveData(uuid="u", name="n"))
    files = read_config_drive(path)
    assert "openstack/latest/user_data" not in files
    assert json.loads(files["openstack/latest/meta_data.json"])["public_keys"] == {}

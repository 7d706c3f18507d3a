"""The OpenStack config drive: an ISO 9660 image labelled `config-2` that cloud-init (and
the kumo-tiny guest) read at boot to learn their name, keys and user data.

Built in-process with pycdlib (no genisoimage, no mount, no root). Rock Ridge and Joliet
carry the real file names (`meta_data.json`); the plain ISO 9660 names are mangled copies
that only very old readers would see.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pycdlib

LABEL = "config-2"
OPENSTACK_VERSIONS = ("latest", "2012-08-10")
EC2_VERSIONS = ("latest", "2009-04-04")


@dataclass(frozen=True)
class ConfigDriveData:
    uuid: str
    name: str
    hostname: str = ""
    public_keys: Mapping[str, str] = field(default_factory=dict)
    user_data: bytes | None = None
    launch_index: int = 0
    availability_zone: str = "nova"
    meta: Mapping[str, str] = field(default_factory=dict)
    network_data: Mapping[str, Any] | None = None
    project_id: str = ""


def _hostname(data: ConfigDriveData) -> str:
    """Nova's rule of thumb: the display name made DNS-safe."""
    if data.hostname:
        return data.hostname
    cleaned = re.sub(r"[^a-z0-9-]+", "-", data.name.lower()).strip("-")
    return cleaned[:63] or "server"


def metadata_files(data: ConfigDriveData) -> dict[str, bytes]:
    """Path inside the drive -> content, in the layout Nova writes."""
    hostname = _hostname(data)
    meta_data = {
        "uuid": data.uuid,
        "name": data.name,
        "hostname": hostname,
        "launch_index": data.launch_index,
        "availability_zone": data.availability_zone,
        "public_keys": dict(data.public_keys),
        "keys": [{"name": k, "type": "ssh", "data": v} for k, v in data.public_keys.items()],
        "meta": dict(data.meta),
        "project_id": data.project_id,
        "devices": [],
    }
    network = data.network_data or {"links": [], "networks": [], "services": []}
    ec2 = {
        "instance-id": data.uuid,
        "hostname": hostname,
        "local-hostname": hostname,
        "ami-launch-index": data.launch_index,
        "placement": {"availability-zone": data.availability_zone},
        "public-keys": {
            str(i): {"openssh-key": key, "_name": f"{i}={name}"}
            for i, (name, key) in enumerate(data.public_keys.items())
        },
    }
    files: dict[str, bytes] = {}
    for version in OPENSTACK_VERSIONS:
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = json.dumps(meta_data).encode()
        files[f"{base}/network_data.json"] = json.dumps(network).encode()
        files[f"{base}/vendor_data.json"] = b"{}"
        if data.user_data is not None:
            files[f"{base}/user_data"] = data.user_data
    for version in EC2_VERSIONS:
        files[f"ec2/{version}/meta-data.json"] = json.dumps(ec2).encode()
        if data.user_data is not None:
            files[f"ec2/{version}/user-data"] = data.user_data
    return files


class _IsoNames:
    """Unique, valid ISO 9660 (level 3) names for each real path component."""

    def __init__(self) -> None:
        self._taken: dict[tuple[str, str], str] = {}
        self._used: set[tuple[str, str]] = set()

    def name(self, parent: str, component: str, is_file: bool) -> str:
        key = (parent, component)
        if key in self._taken:
            return self._taken[key]
        stem = re.sub(r"[^A-Z0-9_.]", "_", component.upper())
        if is_file:
            base, dot, ext = stem.rpartition(".")
            base, ext = (base, ext) if dot else (stem, "")
            base, ext = base.replace(".", "_")[:24], ext[:3]
            make = lambda n: f"{base}{n}.{ext};1"  # noqa: E731
        else:
            base = stem.replace(".", "_")[:24]
            make = lambda n: f"{base}{n}"  # noqa: E731
        candidate, counter = make(""), 0
        while (parent, candidate) in self._used:
            counter += 1
            candidate = make(counter)
        self._used.add((parent, candidate))
        self._taken[key] = candidate
        return candidate


def build_config_drive(path: Path, data: ConfigDriveData) -> Path:
    """Write the config drive ISO to `path` (atomically: a reader never sees half of it)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=LABEL)
    names = _IsoNames()
    made: set[str] = set()
    for real_path, content in sorted(metadata_files(data).items()):
        parts = real_path.split("/")
        iso_parent = ""
        for depth, part in enumerate(parts):
            is_file = depth == len(parts) - 1
            iso_name = names.name(iso_parent, part, is_file)
            iso_path = f"{iso_parent}/{iso_name}"
            joliet = "/" + "/".join(parts[: depth + 1])
            if is_file:
                iso.add_fp(
                    BytesIO(content), len(content), iso_path, rr_name=part, joliet_path=joliet
                )
            elif iso_path not in made:
                iso.add_directory(iso_path, rr_name=part, joliet_path=joliet)
                made.add(iso_path)
            iso_parent = iso_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    iso.write(str(tmp))
    iso.close()
    tmp.replace(path)
    return path


def read_config_drive(path: Path) -> dict[str, bytes]:
    """Every file on a config drive by its Rock Ridge path: for tests and the fake driver."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        files: dict[str, bytes] = {}
        for root, _dirs, filenames in iso.walk(rr_path="/"):
            for filename in filenames:
                rr_path = f"{root.rstrip('/')}/{filename}"
                out = BytesIO()
                iso.get_file_from_iso_fp(out, rr_path=rr_path)
                files[rr_path.lstrip("/")] = out.getvalue()
        return files
    finally:
        iso.close()


def volume_label(path: Path) -> str:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        return iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()

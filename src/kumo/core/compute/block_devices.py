"""Block device mapping v2 on server create: boot from a volume, and volumes attached from
the start, as Nova takes them.

What this cloud builds: ``source_type: volume`` with ``destination_type: volume`` (an
existing volume; the one with ``boot_index: 0`` is the root disk), and ``source_type:
image`` with ``destination_type: local`` and ``boot_index: 0`` (the same as ``imageRef``).
Creating a volume on the fly (image, snapshot or blank to volume) and local ephemeral or
swap disks are refused with a 400 that says so. The file and raw backends keep a volume on
its host's disk, so a server booting from one is placed on that host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, NotFound
from kumo.core.params import body_bool
from kumo.core.policy import Context
from kumo.db import models as m

SOURCES = ("volume", "image", "snapshot", "blank")
DESTINATIONS = ("volume", "local")


@dataclass(frozen=True)
class VolumeMapping:
    volume_id: str
    boot_index: int | None
    delete_on_termination: bool
    device: str | None


@dataclass(frozen=True)
class Mappings:
    volumes: tuple[VolumeMapping, ...] = ()
    image_id: str | None = None  # an image mapped as the local root disk (imageRef's twin)

    @property
    def boot_volume(self) -> VolumeMapping | None:
        return next((v for v in self.volumes if v.boot_index == 0), None)


def _invalid(why: str) -> BadRequest:
    return BadRequest(f"Block Device Mapping is Invalid: {why}")


def _boot_index(value: Any) -> int | None:
    if value is None or value == "none":
        return None
    if isinstance(value, bool):
        raise _invalid(f"boot_index {value!r} is not an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"boot_index {value!r} is not an integer.") from None


def parse(body: dict[str, Any]) -> Mappings:
    raw = body.get("block_device_mapping_v2")
    if raw is None:
        if body.get("block_device_mapping"):
            raise BadRequest(
                "The legacy block_device_mapping is not supported; use block_device_mapping_v2."
            )
        return Mappings()
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
    volumes: list[VolumeMapping] = []
    image_id = None
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
        source = item.get("source_type", "volume" if item.get("uuid") else None)
        destination = item.get("destination_type", "volume" if source == "volume" else "local")
        if source not in SOURCES or destination not in DESTINATIONS:
            raise _invalid(f"source_type {source!r} / destination_type {destination!r}.")
        boot_index = _boot_index(item.get("boot_index"))
        device = item.get("device_name")
        if device is not None and not isinstance(device, str):
            raise _invalid("device_name must be a string.")
        if source == "volume" and destination == "volume":
            if not isinstance(item.get("uuid"), str) or not item["uuid"]:
                raise _invalid("a volume mapping needs the volume's uuid.")
            volumes.append(
                VolumeMapping(
                    item["uuid"],
                    boot_index,
                    body_bool(item.get("delete_on_termination", False), "delete_on_termination"),
                    device,
                )
            )
        elif source == "image" and destination == "local" and boot_index == 0:
            if not isinstance(item.get("uuid"), str):
                raise _invalid("an image mapping needs the image's uuid.")
            image_id = item["uuid"]
        else:
            raise BadRequest(
                f"Block device mapping of {source} to {destination} is not supported by this "
                "cloud yet: create the volume first (openstack volume create --image/--snapshot/"
                "--size) and map it with source_type volume."
            )
    if sum(1 for v in volumes if v.boot_index == 0) + (image_id is not None) > 1:
        raise _invalid(
            "Boot sequence for the instance and image/block device mapping "
            "combination is not valid."
        )
    if len({v.volume_id for v in volumes}) != len(volumes):
        raise _invalid("the same volume is mapped twice.")
    return Mappings(tuple(volumes), image_id)


def boot_volume(session: Session, ctx: Context, mappings: Mappings) -> m.Volume | None:
    """The root volume, checked: the caller's, available (Nova asks Cinder to reserve it)."""
    from kumo.core.volume import attachments, volumes  # block storage imports compute

    chosen = None
    for mapping in mappings.volumes:
        try:
            volume = volumes.get(session, ctx, mapping.volume_id)
        except NotFound:
            raise _invalid(f"failed to get volume {mapping.volume_id}.") from None
        attachments.check_attachable(session, volume)
        if mapping.boot_index == 0:
            chosen = volume
    return chosen


def attach_on_create(
    session: Session, ctx: Context, instance: m.Instance, mappings: Mappings
) -> None:
    """The mapped volumes as the server's attachments, ``attaching`` until its agent has
    started the guest with them (the root one first, as /dev/vda)."""
    from kumo.core.volume import attachments, volumes

    for mapping in sorted(mappings.volumes, key=lambda v: (v.boot_index != 0, v.boot_index or 0)):
        volume = volumes.get(session, ctx, mapping.volume_id)
        attachments.map_on_create(
            session,
            instance,
            volume,
            boot_index=mapping.boot_index,
            device=mapping.device,
            delete_on_termination=mapping.delete_on_termination,
        )

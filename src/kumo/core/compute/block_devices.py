"""Block device mapping v2 on server create: boot from a volume, and volumes attached from
the start, as Nova takes them.

What this cloud builds: ``destination_type: volume`` from an existing volume (``source_type:
volume``) or from a new one it creates (``image``, ``snapshot`` or ``blank``, with
``volume_size``), the one with ``boot_index: 0`` being the root disk; and ``source_type:
image`` with ``destination_type: local`` and ``boot_index: 0`` (the same as ``imageRef``).
Local ephemeral or swap disks are refused with a 400 that says so. The file and raw
backends keep a volume on its host's disk, so a server booting from one is placed on that
host; a server whose new volumes are still being made waits for them before it starts.
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
    source: str  # volume (existing), image, snapshot or blank (a new volume)
    source_id: str | None  # the volume, image or snapshot
    boot_index: int | None
    delete_on_termination: bool
    device: str | None
    size: int | None = None  # volume_size, for a new volume

    @property
    def volume_id(self) -> str | None:
        return self.source_id if self.source == "volume" else None


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


def parse(raw: Any, legacy: Any = None) -> Mappings:
    """A create request's ``block_device_mapping_v2`` (``legacy``: its
    ``block_device_mapping``, refused)."""
    if raw is None:
        if legacy:
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
        if destination == "volume":
            source_id = item.get("uuid")
            if source != "blank" and (not isinstance(source_id, str) or not source_id):
                raise _invalid(f"a mapping of a {source} needs its uuid.")
            size = item.get("volume_size")
            if size is not None or source in ("image", "blank"):
                size = _volume_size(size)
            volumes.append(
                VolumeMapping(
                    source,
                    source_id if source != "blank" else None,
                    boot_index,
                    body_bool(item.get("delete_on_termination", False), "delete_on_termination"),
                    device,
                    size,
                )
            )
        elif source == "image" and boot_index == 0:
            if not isinstance(item.get("uuid"), str):
                raise _invalid("an image mapping needs the image's uuid.")
            image_id = item["uuid"]
        else:
            raise BadRequest(
                f"Block device mapping of {source} to a local disk is not supported by this "
                "cloud: local disks come from the flavor; map a volume instead."
            )
    if sum(1 for v in volumes if v.boot_index == 0) + (image_id is not None) > 1:
        raise _invalid(
            "Boot sequence for the instance and image/block device mapping "
            "combination is not valid."
        )
    existing = [v.volume_id for v in volumes if v.volume_id]
    if len(set(existing)) != len(existing):
        raise _invalid("the same volume is mapped twice.")
    return Mappings(tuple(volumes), image_id)


def _volume_size(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _invalid(f"volume_size {value!r} must be a positive integer (GiB).")
    return value


def prepare(
    session: Session, ctx: Context, mappings: Mappings, placement: Any
) -> list[tuple[VolumeMapping, m.Volume]]:
    """Each mapping's volume: an existing one checked (the caller's, free to attach, as
    Nova asks Cinder to reserve it), or a new one made (``creating``, placed by capacity;
    within the project's volume quota)."""
    from kumo.core.volume import attachments, volumes  # block storage imports compute

    prepared = []
    for mapping in mappings.volumes:
        if mapping.volume_id is not None:
            try:
                volume = volumes.get(session, ctx, mapping.volume_id)
            except NotFound:
                raise _invalid(f"failed to get volume {mapping.volume_id}.") from None
            attachments.check_attachable(session, volume)
        else:
            request = volumes.VolumeCreate(
                name="",
                size=volumes.size_of(mapping.size) if mapping.size is not None else None,
                image_ref=mapping.source_id if mapping.source == "image" else None,
                snapshot_id=mapping.source_id if mapping.source == "snapshot" else None,
            )
            volume = volumes.create(session, ctx, request, placement)
            if volume.status == "error":
                raise _invalid(f"the {mapping.source} volume cannot be made: {volume.fault}")
        if mapping.boot_index == 0:
            _check_bootable(session, mapping, volume)
        prepared.append((mapping, volume))
    return prepared


def _check_bootable(session: Session, mapping: VolumeMapping, volume: m.Volume) -> None:
    """Nova boots only from a bootable volume (Cinder's flag): an existing one, or the
    volume a snapshot was taken of (a volume made from it inherits the flag). A new blank
    volume is not checked, as in Nova. The whole request is refused: nothing is kept."""
    if mapping.source not in ("volume", "snapshot") or volume.bootable:
        return
    origin = volume.id
    if mapping.source == "snapshot":
        snapshot = session.get(m.VolumeSnapshot, mapping.source_id)
        origin = snapshot.volume_id if snapshot is not None else volume.id
    raise BadRequest(f"Block Device {origin} is not bootable.")


def boot_volume(prepared: list[tuple[VolumeMapping, m.Volume]]) -> m.Volume | None:
    return next((v for mapping, v in prepared if mapping.boot_index == 0), None)


def attach_on_create(
    session: Session, instance: m.Instance, prepared: list[tuple[VolumeMapping, m.Volume]]
) -> None:
    """The mapped volumes as the server's attachments, ``attaching`` until its agent has
    started the guest with them (the root one first, as /dev/vda)."""
    from kumo.core.volume import attachments

    for mapping, volume in sorted(
        prepared, key=lambda p: (p[0].boot_index != 0, p[0].boot_index or 0)
    ):
        attachments.map_on_create(
            session,
            instance,
            volume,
            boot_index=mapping.boot_index,
            device=mapping.device,
            delete_on_termination=mapping.delete_on_termination,
        )

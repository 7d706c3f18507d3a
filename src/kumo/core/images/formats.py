"""Is uploaded data what its image claims to be, and safe to hand to QEMU?

Decided from ``qemu-img info --output=json`` of the stored data. Two dangers: data whose real
format differs from ``disk_format`` (a qcow2 uploaded as "raw" would be opened as raw by one
tool and as qcow2 by another), and images that make QEMU open other files on the host: a
qcow2 backing file or external data file, a VMDK whose extents live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kumo.core.errors import BadRequest

# disk_format -> the names qemu-img gives to data of that format. ISO and the EC2 kernel,
# ramdisk and machine images have no header qemu-img knows: it calls them raw.
DETECTED = {
    "raw": ("raw",),
    "qcow2": ("qcow2",),
    "vmdk": ("vmdk",),
    "vhd": ("vpc",),
    "vhdx": ("vhdx",),
    "vdi": ("vdi",),
    "ploop": ("parallels",),
    "iso": ("raw",),
    "aki": ("raw",),
    "ari": ("raw",),
    "ami": ("raw",),
}
SAFE_VMDK_TYPES = ("monolithicSparse", "streamOptimized")


@dataclass(frozen=True)
class Inspection:
    format: str
    virtual_size: int | None


def inspect(disk_format: str, info: dict[str, Any], require_match: bool = True) -> Inspection:
    """The detected format and virtual size, or BadRequest saying why the data is refused.
    Without ``require_match`` data of another format is accepted (its virtual size is then
    unknown: it is not what the image says it is), but never data naming other files."""
    detected = str(info.get("format", ""))
    matches = detected in DETECTED.get(disk_format, ())
    if not matches and require_match:
        raise BadRequest(
            f"Image data is in {detected or 'an unknown'} format, which does not "
            f"match disk_format '{disk_format}'."
        )
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise BadRequest("Image data names a backing file; such images are refused.")
    specific = info.get("format-specific") or {}
    data = specific.get("data") or {}
    if specific.get("type") == "qcow2" and data.get("data-file"):
        raise BadRequest("Image data names an external data file; such images are refused.")
    if specific.get("type") == "vmdk":
        if data.get("create-type") not in SAFE_VMDK_TYPES:
            raise BadRequest(f"VMDK images of type {data.get('create-type')!r} are refused.")
        for extent in data.get("extents") or []:
            if extent.get("filename") and extent.get("filename") != info.get("filename"):
                raise BadRequest("VMDK image data names other files; such images are refused.")
    size = info.get("virtual-size")
    if not matches:
        return Inspection(detected, None)
    return Inspection(detected, int(size) if isinstance(size, int) else None)

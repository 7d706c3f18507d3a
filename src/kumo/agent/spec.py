"""From a work item (what the API says a server is) to a GuestSpec the qemu driver boots.

Everything a guest owns on the host is made inside its instance directory, so the driver's
destroy removes it all:

    <state>/agent/instances/<uuid>/disk          qcow2 overlay on the cached image
                                   disk.config   the config drive (ISO 9660, config-2)

Images: raw and qcow2 disks boot through the BIOS from the overlay; an image with
``kernel_id`` (and ``ramdisk_id``) properties naming aki/ari images boots by direct kernel
boot with ``os_command_line`` (default ``console=tty0 console=ttyS0``: the screen and the
serial log), the EC2/UEC way. The kernel and ramdisk are read from the image cache as they
are (QEMU only reads them).

Guests get a display (std VGA, shown by the VNC console) unless their image says
``hw_video_model=none``, as Nova's.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kumo.agent.disks import root_volume
from kumo.agent.images import CachedImage, ImageCache, ImageFetchError
from kumo.drivers import disks
from kumo.drivers.configdrive import ConfigDriveData, build_config_drive
from kumo.drivers.hypervisor.base import (
    DisplayModel,
    GuestSpec,
    HypervisorError,
    NicSpec,
    instance_dir,
)
from kumo.drivers.network import names as net_names
from kumo.drivers.storage.volumes.base import VolumeBackend, VolumeBackendError

# ttyS0 last: it is /dev/console, so the serial log (console log API) gets everything.
DEFAULT_CMDLINE = "console=tty0 console=ttyS0"
DISK_FORMATS = ("raw", "qcow2")
GIB = 1024**3


def display_model(properties: Mapping[str, Any]) -> DisplayModel:
    """The display of a guest booted from an image with these properties: Nova's
    ``hw_video_model``, where ``none`` means no display; any other model (or none said)
    gets std VGA, the one display the driver offers (what Nova-libvirt's x86 default
    was, and cheap under TCG)."""
    return "none" if str(properties.get("hw_video_model", "")).lower() == "none" else "vga"


def config_drive_data(item: dict[str, Any]) -> ConfigDriveData:
    keys = (
        {item["key_name"]: item["key_data"]}
        if item.get("key_name") and item.get("key_data")
        else {}
    )
    user_data = None
    if item.get("user_data"):
        try:
            user_data = base64.b64decode(item["user_data"])
        except (binascii.Error, ValueError):
            user_data = None
    return ConfigDriveData(
        uuid=item["id"],
        name=item["name"],
        hostname=item.get("hostname") or "",
        public_keys=keys,
        user_data=user_data,
        launch_index=int(item.get("launch_index") or 0),
        availability_zone=item.get("availability_zone") or "nova",
        meta={str(k): str(v) for k, v in (item.get("metadata") or {}).items()},
        project_id=item.get("project_id") or "",
        network_data=network_data(item.get("nics") or []),
    )


def network_data(nics: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenStack's ``network_data.json`` for the server's NICs: one link per port, one
    network per fixed IP (static, with the subnet's gateway and DNS servers), so a guest
    without DHCP (cloud-init's static rendering) still gets its addresses."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for nic in nics:
        link_id = "tap" + str(nic["port_id"])[:11]
        links.append(
            {
                "id": link_id,
                "vif_id": nic["port_id"],
                "type": "phy",
                "ethernet_mac_address": nic["mac_address"],
                "mtu": nic.get("mtu"),
            }
        )
        for fixed in nic.get("fixed_ips") or ():
            net = ipaddress.ip_network(fixed["cidr"], strict=False)
            routes = []
            if fixed.get("gateway_ip"):
                default = "0.0.0.0" if net.version == 4 else "::"
                routes.append(
                    {"network": default, "netmask": default, "gateway": fixed["gateway_ip"]}
                )
            for route in fixed.get("host_routes") or ():
                dest = ipaddress.ip_network(route["destination"], strict=False)
                routes.append(
                    {
                        "network": str(dest.network_address),
                        "netmask": str(dest.netmask),
                        "gateway": route["nexthop"],
                    }
                )
            dns = [{"type": "dns", "address": a} for a in fixed.get("dns_nameservers") or ()]
            networks.append(
                {
                    "id": f"network{len(networks)}",
                    "type": "ipv4" if net.version == 4 else "ipv6",
                    "link": link_id,
                    "ip_address": fixed["ip_address"],
                    "netmask": str(net.netmask),
                    "routes": routes,
                    "network_id": nic["network_id"],
                    "services": dns,
                }
            )
            services.extend(s for s in dns if s not in services)
    return {"links": links, "networks": networks, "services": services}


class QemuSpecBuilder:
    """Prepares root disk and config drive for one server and returns its GuestSpec."""

    def __init__(
        self,
        images: ImageCache,
        driver_state_dir: Path,
        force_config_drive: bool = True,
        nic_namespace: str | None = None,
        volume_backends: Mapping[str, VolumeBackend] | None = None,
    ) -> None:
        self.images = images
        self.volume_backends = volume_backends or {}
        self.driver_state_dir = driver_state_dir
        self.force_config_drive = force_config_drive
        # None: the host has no network driver, guests get no NIC; "" or a name: taps are
        # made by the datapath in the root namespace or in that namespace.
        self.nic_namespace = nic_namespace

    def nics(self, item: dict[str, Any]) -> tuple[NicSpec, ...]:
        """The guest's NICs in order, each on the tap the datapath made for its port."""
        if self.nic_namespace is None:
            return ()
        return tuple(
            NicSpec(
                mac=nic["mac_address"], tap=net_names.tap(nic["port_id"]), netns=self.nic_namespace
            )
            for nic in item.get("nics") or ()
        )

    def __call__(self, item: dict[str, Any]) -> GuestSpec:
        try:
            return self.build(item)
        except (ImageFetchError, disks.DiskError, OSError) as exc:
            raise HypervisorError(f"preparing the guest failed: {exc}") from exc

    def _kernel_image(self, image_id: Any, wanted: str, what: str) -> CachedImage:
        cached = self.images.get(str(image_id))
        if cached.disk_format != wanted:
            raise HypervisorError(
                f"{what} image {image_id} has disk_format {cached.disk_format}, not {wanted}"
            )
        return cached

    def rescue(self, item: dict[str, Any]) -> GuestSpec:
        """The boot half of a rescue: a fresh overlay of the rescue image (``disk.rescue``
        in the instance directory) and its kernel; the driver adds the guest's own disks."""
        try:
            return self._rescue(item)
        except (ImageFetchError, disks.DiskError, OSError) as exc:
            raise HypervisorError(f"preparing the rescue boot failed: {exc}") from exc

    def _boot_files(self, image: CachedImage) -> tuple[str | None, str | None, str | None]:
        return self._kernel_files(image.properties)

    def _kernel_files(self, props: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """Direct kernel boot files named by ``kernel_id``/``ramdisk_id`` properties."""
        kernel = ramdisk = cmdline = None
        if props.get("kernel_id"):
            kernel = str(self._kernel_image(props["kernel_id"], "aki", "kernel").path)
            if props.get("ramdisk_id"):
                ramdisk = str(self._kernel_image(props["ramdisk_id"], "ari", "ramdisk").path)
            cmdline = str(props.get("os_command_line") or DEFAULT_CMDLINE)
        return kernel, ramdisk, cmdline

    def _rescue(self, item: dict[str, Any]) -> GuestSpec:
        image_id = item.get("rescue_image_id") or item["image_id"]
        directory = instance_dir(self.driver_state_dir, item["id"])
        directory.mkdir(parents=True, exist_ok=True)
        image = self.images.get(str(image_id))
        if image.disk_format not in (*DISK_FORMATS, "ami"):
            raise HypervisorError(
                f"rescue image {image.id} is a {image.disk_format} image; raw, qcow2 or ami "
                "is needed"
            )
        kernel, ramdisk, cmdline = self._boot_files(image)
        root = directory / "disk.rescue"
        if not root.exists():
            tmp = directory / "disk.rescue.tmp"
            disks.create_overlay(image.path, tmp, known=image.measured())
            tmp.replace(root)
        flavor = item["flavor"]
        return GuestSpec(
            uuid=item["id"],
            name=item["name"],
            vcpus=int(flavor["vcpus"]),
            memory_mb=int(flavor["ram"]),
            root_disk=str(root),
            root_disk_format="qcow2",
            kernel=kernel,
            ramdisk=ramdisk,
            cmdline=cmdline,
        )

    def _root_volume(self, item: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """Path, format and image properties of the volume a server boots from."""
        disk = root_volume(item)
        if disk is None:
            raise HypervisorError("the server has neither an image nor a root volume")
        backend = self.volume_backends.get(disk["backend"])
        if backend is None:
            raise HypervisorError(f"this host does not serve the {disk['backend']} backend")
        try:
            connection = backend.connection(disk["volume_id"])
        except VolumeBackendError as exc:
            raise HypervisorError(f"root volume {disk['volume_id']}: {exc}") from exc
        return str(connection.path), connection.format, dict(disk.get("image_meta") or {})

    def build(self, item: dict[str, Any]) -> GuestSpec:
        flavor = item["flavor"]
        directory = instance_dir(self.driver_state_dir, item["id"])
        directory.mkdir(parents=True, exist_ok=True)
        if not item.get("image_id"):  # boot from volume
            path, fmt, props = self._root_volume(item)
            kernel, ramdisk, cmdline = self._kernel_files(props)
            return GuestSpec(
                uuid=item["id"],
                name=item["name"],
                vcpus=int(flavor["vcpus"]),
                memory_mb=int(flavor["ram"]),
                root_disk=path,
                root_disk_format=fmt,
                kernel=kernel,
                ramdisk=ramdisk,
                cmdline=cmdline,
                config_drive=self._config_drive(directory, item),
                nics=self.nics(item),
                display=display_model(props),
            )
        image = self.images.get(str(item["image_id"]))
        kernel, ramdisk, cmdline = self._boot_files(image)
        root_disk = None
        if image.disk_format in DISK_FORMATS or image.disk_format == "ami":
            root = directory / "disk"
            if not root.exists():  # an existing overlay holds the guest's data: keep it
                size = int(flavor.get("disk") or 0) * GIB
                tmp = directory / "disk.tmp"
                disks.create_overlay(image.path, tmp, size or None, image.measured())
                tmp.replace(root)
            root_disk = str(root)
        elif image.disk_format in ("aki", "ari"):
            raise HypervisorError(f"image {image.id} is a {image.disk_format}: not bootable alone")
        else:
            raise HypervisorError(
                f"booting {image.disk_format} images is not supported yet (raw, qcow2, "
                "or a kernel_id/ramdisk_id image)"
            )
        return GuestSpec(
            uuid=item["id"],
            name=item["name"],
            vcpus=int(flavor["vcpus"]),
            memory_mb=int(flavor["ram"]),
            root_disk=root_disk,
            root_disk_format="qcow2",
            kernel=kernel,
            ramdisk=ramdisk,
            cmdline=cmdline,
            config_drive=self._config_drive(directory, item),
            nics=self.nics(item),
            display=display_model(image.properties),
        )

    def _config_drive(self, directory: Path, item: dict[str, Any]) -> str | None:
        if not (self.force_config_drive or item.get("config_drive")):
            return None
        return str(build_config_drive(directory / "disk.config", config_drive_data(item)))

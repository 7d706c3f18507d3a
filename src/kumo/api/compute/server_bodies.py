"""The bodies of a server create and update in each microversion, as Nova's schemas
check them, turned into core's typed requests (kumo.core.compute.server_create.CreateRequest,
servers.Update): the API's part, so that core sees values only. What needs the database
(the flavor, the image, the networks, the security groups, the key pair, the zone, the
quota) is checked by the create operation."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import uuid
from typing import Any

from kumo.core.compute import block_devices, nics, server_create, servers
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion

MAX_USER_DATA = 65535
HINT_KEYS = ("os:scheduler_hints", "OS-SCH-HNT:scheduler_hints")


def parse_create(
    body: Any, data: dict[str, Any], version: APIVersion
) -> server_create.CreateRequest:
    """``body`` is the whole request (its scheduler hints sit beside ``server``), ``data``
    its ``server`` member."""
    group_id = group_hint(body)
    name = servers.check_name(data.get("name"))
    flavor_id = servers.ref_id(data.get("flavorRef"), "flavor")
    mappings = block_devices.parse(
        data.get("block_device_mapping_v2"), data.get("block_device_mapping")
    )
    image_ref = data.get("imageRef")
    networks = parse_requested(data.get("networks"), version)
    # Before 2.19 Nova stores the name as the description (and shows it from 2.19 on).
    description = (
        servers.check_description(data.get("description")) if version.at_least("2.19") else name
    )
    no_description_before_2_19(data, version)
    min_count = _count(data, "min_count", 1)
    max_count = _count(data, "max_count", min_count)
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count.")
    key_name = data.get("key_name")
    admin_pass = data.get("adminPass")
    return server_create.CreateRequest(
        name=name,
        flavor_id=flavor_id,
        image_id=servers.ref_id(image_ref, "image") if image_ref else None,
        mappings=mappings,
        networks=tuple(networks) if networks is not None else None,
        security_groups=_security_groups(data.get("security_groups")),
        metadata=servers.check_metadata(data.get("metadata")),
        user_data=_user_data(data.get("user_data")),
        key_name=str(key_name) if key_name is not None else None,
        config_drive=_config_drive(data.get("config_drive", False)),
        availability_zone=_zone(data.get("availability_zone")),
        description=description,
        access_ipv4=servers.access_ip(data.get("accessIPv4"), 4),
        access_ipv6=servers.access_ip(data.get("accessIPv6"), 6),
        min_count=min_count,
        max_count=max_count,
        admin_pass=str(admin_pass) if admin_pass else None,
        group_id=group_id,
    )


def parse_update(data: dict[str, Any], version: APIVersion) -> servers.Update:
    """PUT /servers/{id}: which fields are given, in the caller's microversion (a
    description from 2.19); their values are checked after the server's lock, in core."""
    allowed = {"name", "accessIPv4", "accessIPv6"} | (
        {"description"} if version.at_least("2.19") else set()
    )
    unknown = set(data) - allowed
    if unknown:
        raise BadRequest(
            f"Invalid input: additional properties are not allowed "
            f"({', '.join(sorted(unknown))} unexpected)."
        )
    absent = servers.ABSENT
    return servers.Update(
        name=data.get("name", absent),
        description=data.get("description", absent),
        access_ipv4=data.get("accessIPv4", absent),
        access_ipv6=data.get("accessIPv6", absent),
    )


def no_description_before_2_19(data: dict[str, Any], version: APIVersion) -> None:
    if "description" in data and not version.at_least("2.19"):
        raise BadRequest(
            "Invalid input for field/attribute server. Additional properties are not "
            "allowed ('description' was unexpected); it needs microversion 2.19"
        )


def group_hint(body: Any) -> str | None:
    """The ``group`` scheduler hint of a server create request, checked like Nova's schema."""
    if not isinstance(body, dict):
        return None
    for key in HINT_KEYS:
        hints = body.get(key)
        if hints is None:
            continue
        if not isinstance(hints, dict):
            raise BadRequest(f"Invalid input for field/attribute {key}. An object is required.")
        group = hints.get("group")
        if group is None:
            return None
        try:
            return str(uuid.UUID(str(group)))
        except ValueError:
            raise BadRequest(
                f"Invalid input for field/attribute group. Value: {group}. "
                f"'{group}' is not a 'uuid'"
            ) from None
    return None


def _uuid_like(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def parse_requested(value: Any, version: APIVersion) -> list[nics.RequestedNic] | None:
    """The ``networks`` of a create request: a list of NICs, or None for "pick for me"
    (absent before 2.37, or ``auto``); ``none`` is an empty list."""
    if value is None:
        if version.at_least("2.37"):
            raise BadRequest(
                "Invalid input for field/attribute networks: 'networks' is a "
                "required property from microversion 2.37."
            )
        return None
    if value in ("none", "auto"):
        if not version.at_least("2.37"):
            raise BadRequest(
                f"Invalid input for field/attribute networks: '{value}' needs microversion 2.37."
            )
        return [] if value == "none" else None
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute networks.")
    requested = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"uuid", "port", "fixed_ip", "tag"}:
            raise BadRequest("Invalid input for field/attribute networks.")
        port, net, fixed = item.get("port"), item.get("uuid"), item.get("fixed_ip")
        if port is not None and not _uuid_like(port):
            raise BadRequest(f"Bad networks format: port uuid is not in proper format ({port})")
        if port is None and net is None:
            raise BadRequest("Bad networks format: each network needs a uuid or a port.")
        if port is None and not _uuid_like(net):
            raise BadRequest(f"Bad networks format: network uuid is not in proper format ({net})")
        if fixed is not None:
            try:
                ipaddress.ip_address(str(fixed))
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({fixed})") from None
        if item.get("tag") is not None and not version.at_least("2.32"):
            raise BadRequest("Invalid input for field/attribute networks: 'tag' needs 2.32.")
        requested.append(
            nics.RequestedNic(
                network_id=None if port else str(net),
                port_id=str(port) if port else None,
                fixed_ip=str(fixed) if fixed is not None else None,
                tag=item.get("tag"),
            )
        )
    return requested


def _security_groups(value: Any) -> tuple[str, ...] | None:
    """``security_groups`` ([{"name": name-or-id}]) as the names or ids asked for, each
    once (None: the network service's default)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"] for g in value
    ):
        raise BadRequest("Invalid input for field/attribute security_groups.")
    return tuple(dict.fromkeys(g["name"] for g in value))


def _user_data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_USER_DATA:
        raise BadRequest(
            "Invalid input for field/attribute user_data: base64 text of at "
            f"most {MAX_USER_DATA} characters expected."
        )
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("User data needs to be valid base 64.") from None
    return value


def _config_drive(value: Any) -> bool:
    if value in ("True", "true", True, "1", 1):
        return True
    if value in ("", "False", "false", False, None, "0", 0):
        return False
    raise BadRequest("Invalid input for field/attribute config_drive.")


def _zone(value: Any) -> str | None:
    """The zone asked for (``az``, ``az:host``, ...) as a string, or None for any."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest(
            f"Invalid input for field/attribute availability_zone. Value: {value}. "
            "A string of 1 to 255 characters is required."
        )
    return value


def _count(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, float) or (isinstance(value, str) and not value.strip().isdigit()):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {key}.") from None
    if isinstance(value, bool) or number < 1:
        raise BadRequest(f"Invalid input for field/attribute {key}: must be >= 1.")
    return number

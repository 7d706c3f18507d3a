"""/compute/v2.1/os-quota-sets and /limits: a project's quotas, usage and absolute limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import quota_sets
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1")

# /limits absolute names for each quota (before 2.36 network ones too, before 2.39 images).
_ABSOLUTE = {
    "instances": "maxTotalInstances",
    "cores": "maxTotalCores",
    "ram": "maxTotalRAMSize",
    "metadata_items": "maxServerMeta",
    "key_pairs": "maxTotalKeypairs",
    "server_groups": "maxServerGroups",
    "server_group_members": "maxServerGroupMembers",
    "floating_ips": "maxTotalFloatingIps",
    "security_groups": "maxSecurityGroups",
    "security_group_rules": "maxSecurityGroupRules",
    "injected_files": "maxPersonality",
    "injected_file_content_bytes": "maxPersonalitySize",
}
_USED = {
    "instances": "totalInstancesUsed",
    "cores": "totalCoresUsed",
    "ram": "totalRAMUsed",
    "server_groups": "totalServerGroupsUsed",
    "floating_ips": "totalFloatingIpsUsed",
    "security_groups": "totalSecurityGroupsUsed",
}


def resources(version: APIVersion) -> tuple[str, ...]:
    """The quota names a response shows at this microversion."""
    names: tuple[str, ...] = quota_sets.CORE
    if not version.at_least("2.36"):
        names += quota_sets.NETWORK
    if not version.at_least("2.57"):
        names += quota_sets.INJECTED
    return names


def class_resources(version: APIVersion) -> tuple[str, ...]:
    return tuple(name for name in resources(version) if name not in quota_sets.CLASS_HIDDEN)


def _unexpected(member: str, unknown: set[str]) -> BadRequest:
    return BadRequest(
        f"Invalid input for field/attribute {member}. Additional properties are not "
        f"allowed ({', '.join(sorted(unknown))} unexpected)"
    )


def _update_args(data: dict[str, Any], version: APIVersion) -> tuple[dict[str, int], bool]:
    """A quota set update's limits (Nova's schema: the names this microversion shows) and
    ``force``."""
    unknown = set(data) - set(resources(version)) - {"force"}
    if unknown:
        raise _unexpected("quota_set", unknown)
    force = data.get("force", False)
    if force in ("True", "true", "1", 1):
        force = True
    elif force in ("False", "false", "0", 0, None):
        force = False
    if not isinstance(force, bool):
        raise BadRequest(f"Invalid input for field/attribute force. Value: {force}.")
    wanted = {name: quota_sets.value_of(name, raw) for name, raw in data.items() if name != "force"}
    return wanted, force


def _class_update_args(data: dict[str, Any], version: APIVersion) -> dict[str, int]:
    unknown = set(data) - set(class_resources(version))
    if unknown:
        raise _unexpected("quota_class_set", unknown)
    return {name: quota_sets.value_of(name, raw) for name, raw in data.items()}


@router.get("/limits")
def get_limits(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    ctx = who.ctx
    project_id = request.query_params.get("tenant_id") or ctx.project_id or ""
    if project_id != ctx.project_id:
        enforce(ctx, "compute:limits:other_project")
    with state.db.session() as session:
        limit = quota_sets.limits(session, project_id, resources(version))
        used = quota_sets.usage(session, project_id)
    absolute = {_ABSOLUTE[k]: v for k, v in limit.items() if k in _ABSOLUTE}
    absolute.update({_USED[k]: used.get(k, 0) for k in limit if k in _USED})
    if not version.at_least("2.39"):
        absolute["maxImageMeta"] = limit["metadata_items"]
    return {"limits": {"absolute": absolute, "rate": []}}


def _readable(who: Caller, project_id: str) -> None:
    enforce(who.ctx, "compute:quota_sets:show", {"project_id": project_id})


@router.get("/os-quota-sets/{project_id}")
def show(
    project_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    _readable(who, project_id)
    with state.db.session() as session:
        quota_sets.project_exists(session, project_id)
        limit = quota_sets.limits(session, project_id, resources(version))
    return {"quota_set": {"id": project_id, **limit}}


@router.get("/os-quota-sets/{project_id}/defaults")
def show_defaults(
    project_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    _readable(who, project_id)
    with state.db.session() as session:
        quota_sets.project_exists(session, project_id)
        found = quota_sets.defaults(session, resources(version))
    return {"quota_set": {"id": project_id, **found}}


@router.get("/os-quota-sets/{project_id}/detail")
def show_detail(
    project_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    _readable(who, project_id)
    with state.db.session() as session:
        quota_sets.project_exists(session, project_id)
        found = quota_sets.detail(session, project_id, resources(version))
    return {"quota_set": {"id": project_id, **found}}


@router.put("/os-quota-sets/{project_id}")
def update(
    project_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    """Nova's update answer has no ``id`` (tempest's schema forbids one)."""
    enforce(who.ctx, "compute:quota_sets:update")
    data = body_member(body, "quota_set")
    with state.db.session() as session:
        wanted, force = _update_args(data, version)
        limit = quota_sets.update(session, project_id, wanted, force, resources(version))
    return {"quota_set": limit}


@router.delete("/os-quota-sets/{project_id}", status_code=202)
def reset(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "compute:quota_sets:update")
    with state.db.session() as session:
        quota_sets.reset(session, project_id)
    return Response(status_code=202)


@router.get("/os-quota-class-sets/{class_name}")
def show_class(
    class_name: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    """Admin only (Nova's os_compute_api:os-quota-class-sets:show default)."""
    enforce(who.ctx, "compute:quota_class_sets")
    with state.db.session() as session:
        found = quota_sets.show_class(session, class_name, class_resources(version))
    return {"quota_class_set": {"id": class_name, **found}}


@router.put("/os-quota-class-sets/{class_name}")
def update_class(
    class_name: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    """The answer has no ``id``, as Nova's."""
    enforce(who.ctx, "compute:quota_class_sets")
    data = body_member(body, "quota_class_set")
    with state.db.session() as session:
        wanted = _class_update_args(data, version)
        found = quota_sets.update_class(session, class_name, wanted, class_resources(version))
    return {"quota_class_set": found}

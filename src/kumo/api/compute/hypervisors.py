"""/compute/v2.1/os-hypervisors: hosts, their inventory and usage (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import hypervisors
from kumo.core.compute.hypervisors import HostUsage
from kumo.core.microversion import APIVersion
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-hypervisors")


def brief(u: HostUsage) -> dict[str, Any]:
    return {
        "id": u.id,
        "hypervisor_hostname": u.host.name,
        "state": u.status.state,
        "status": "enabled" if u.host.enabled else "disabled",
    }


def detail(u: HostUsage, version: APIVersion) -> dict[str, Any]:
    """cpu_info is a JSON string before 2.28 and an object from then on."""
    free_disk = u.local_gb - u.local_gb_used
    return {
        **brief(u),
        "cpu_info": u.cpu_info() if version.at_least("2.28") else u.cpu_info_text(),
        "current_workload": u.current_workload,
        "disk_available_least": free_disk,
        "host_ip": u.host_ip,
        "free_disk_gb": free_disk,
        "free_ram_mb": u.memory_mb - u.memory_mb_used,
        "hypervisor_type": hypervisors.hypervisor_type(u.host),
        "hypervisor_version": hypervisors.hypervisor_version(u.host),
        "local_gb": u.local_gb,
        "local_gb_used": u.local_gb_used,
        "memory_mb": u.memory_mb,
        "memory_mb_used": u.memory_mb_used,
        "running_vms": u.running_vms,
        "service": {
            "host": u.host.name,
            "id": u.id,
            "disabled_reason": u.host.disabled_reason,
        },
        "vcpus": u.vcpus,
        "vcpus_used": u.vcpus_used,
    }


def _usages(who: Caller, state: AppState, action: str) -> list[HostUsage]:
    enforce(who.ctx, f"compute:hypervisors:{action}")
    with state.db.session() as session:
        return hypervisors.usages(
            session, state.config.scheduler, state.config.hosts.heartbeat_timeout
        )


@router.get("")
def list_hypervisors(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"hypervisors": [brief(u) for u in _usages(who, state, "list")]}


@router.get("/detail")
def list_hypervisors_detail(
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    return {"hypervisors": [detail(u, version) for u in _usages(who, state, "list")]}


@router.get("/statistics")
def statistics(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"hypervisor_statistics": hypervisors.statistics(_usages(who, state, "statistics"))}


@router.get("/{hypervisor_id}")
def show_hypervisor(
    hypervisor_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    found = hypervisors.find(_usages(who, state, "show"), hypervisor_id)
    return {"hypervisor": detail(found, version)}


@router.get("/{hypervisor_id}/uptime")
def show_uptime(
    hypervisor_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Nova's uptime (until 2.88, where it moved into show): the host's `uptime` line."""
    found = hypervisors.find(_usages(who, state, "uptime"), hypervisor_id)
    return {"hypervisor": {**brief(found), "uptime": hypervisors.uptime(found)}}


@router.get("/{pattern}/search")
def search(
    pattern: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {
        "hypervisors": [brief(u) for u in hypervisors.search(_usages(who, state, "list"), pattern)]
    }


@router.get("/{pattern}/servers")
def servers(
    pattern: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Before 2.53 the path names a hostname pattern; hosts without servers omit the key."""
    found = hypervisors.search(_usages(who, state, "list"), pattern)
    with state.db.session() as session:
        on = hypervisors.servers_on(session, [u.host.id for u in found])
    result = []
    for u in found:
        item = brief(u)
        if on[u.host.id]:
            item["servers"] = on[u.host.id]
        result.append(item)
    return {"hypervisors": result}

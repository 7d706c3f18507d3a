"""The service catalog: services, endpoints and regions.

Stored in the database because Keystone clients manage it through the API; kumo's own
services (DESIGN.md section 9: one address, one path prefix each) are registered by
bootstrap and their URLs follow the configured public URL at every start.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict
from kumo.core.identity.common import get_or_404, new_id, optional_bool, optional_str
from kumo.db import models as m

_NAMESPACE = uuid.UUID("6b1f0c1e-4a1d-4f0e-9a53-6b756d6f0001")
INTERFACES = ("public", "internal", "admin")
MANAGED = "kumo_managed"


@dataclass(frozen=True)
class KumoService:
    type: str
    name: str
    path: str  # relative to the public URL; $(project_id)s is filled per token

    @property
    def id(self) -> str:
        return uuid.uuid5(_NAMESPACE, f"service:{self.type}").hex


KUMO_SERVICES: tuple[KumoService, ...] = (
    KumoService("identity", "keystone", "/identity"),
    KumoService("compute", "nova", "/compute/v2.1"),
    KumoService("image", "glance", "/image"),
    KumoService("network", "neutron", "/network"),
    # Cinder is listed twice: openstacksdk looks for block-storage, tempest for volumev3.
    KumoService("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    KumoService("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
)


def ensure_kumo_services(session: Session, public_url: str, region: str) -> None:
    """Register kumo's services and point their endpoints at the current public URL."""
    if session.get(m.Region, region) is None:
        session.add(m.Region(id=region, description=""))
    for svc in KUMO_SERVICES:
        if session.get(m.Service, svc.id) is None:
            session.add(m.Service(id=svc.id, type=svc.type, name=svc.name, extra={MANAGED: True}))
        for interface in INTERFACES:
            ident = uuid.uuid5(_NAMESPACE, f"endpoint:{svc.type}:{interface}").hex
            endpoint = session.get(m.Endpoint, ident)
            if endpoint is None:
                endpoint = m.Endpoint(
                    id=ident, service_id=svc.id, interface=interface, extra={MANAGED: True}
                )
                session.add(endpoint)
            endpoint.url = public_url + svc.path
            endpoint.region_id = region
    session.flush()


def _fill(url: str, project_id: str | None) -> str | None:
    for marker in ("$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"):
        if marker in url:
            if project_id is None:
                return None
            url = url.replace(marker, project_id)
    return url


def catalog(session: Session, project_id: str | None) -> list[dict[str, Any]]:
    """The token's catalog in Keystone v3 shape (enabled services and endpoints only)."""
    services = list(
        session.scalars(
            select(m.Service).where(m.Service.enabled.is_(True)).order_by(m.Service.type)
        )
    )
    by_service: dict[str, list[dict[str, Any]]] = {s.id: [] for s in services}
    for ep in session.scalars(select(m.Endpoint).where(m.Endpoint.enabled.is_(True))):
        url = _fill(ep.url, project_id)
        if url is None or ep.service_id not in by_service:
            continue
        by_service[ep.service_id].append(
            {
                "id": ep.id,
                "interface": ep.interface,
                "region": ep.region_id,
                "region_id": ep.region_id,
                "url": url,
            }
        )
    return [
        {"id": s.id, "type": s.type, "name": s.name, "endpoints": by_service[s.id]}
        for s in services
    ]


# Services ------------------------------------------------------------------------------


def list_services(
    session: Session, type_: str | None = None, name: str | None = None
) -> list[m.Service]:
    query = select(m.Service).order_by(m.Service.type)
    if type_ is not None:
        query = query.where(m.Service.type == type_)
    if name is not None:
        query = query.where(m.Service.name == name)
    return list(session.scalars(query))


def get_service(session: Session, service_id: str) -> m.Service:
    return get_or_404(session, m.Service, service_id, "service")


def _service_extra(body: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in body.items()
        if k not in ("id", "type", "name", "description", "enabled", "links")
    }


def create_service(session: Session, body: dict[str, Any]) -> m.Service:
    type_ = optional_str(body, "type", max_len=255)
    if not type_:
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    svc = m.Service(
        id=new_id(),
        type=type_,
        name=optional_str(body, "name", "") or "",
        description=optional_str(body, "description", "") or "",
        enabled=optional_bool(body, "enabled", True),
        extra=_service_extra(body),
    )
    session.add(svc)
    return svc


def update_service(session: Session, service_id: str, body: dict[str, Any]) -> m.Service:
    svc = get_service(session, service_id)
    if "type" in body:
        svc.type = optional_str(body, "type", max_len=255) or svc.type
    if "name" in body:
        svc.name = optional_str(body, "name", "") or ""
    if "description" in body:
        svc.description = optional_str(body, "description", "") or ""
    if "enabled" in body:
        svc.enabled = optional_bool(body, "enabled", svc.enabled)
    svc.extra = {**(svc.extra or {}), **_service_extra(body)}
    return svc


def delete_service(session: Session, service_id: str) -> None:
    svc = get_service(session, service_id)
    for ep in session.scalars(select(m.Endpoint).where(m.Endpoint.service_id == service_id)):
        session.delete(ep)
    session.delete(svc)


# Regions -------------------------------------------------------------------------------


def list_regions(session: Session, parent: str | None = None) -> list[m.Region]:
    query = select(m.Region).order_by(m.Region.id)
    if parent is not None:
        query = query.where(m.Region.parent_region_id == parent)
    return list(session.scalars(query))


def get_region(session: Session, region_id: str) -> m.Region:
    return get_or_404(session, m.Region, region_id, "region")


def create_region(session: Session, body: dict[str, Any], region_id: str | None = None) -> m.Region:
    region_id = region_id or optional_str(body, "id", max_len=255) or new_id()
    if region_id and "id" in body and body["id"] != region_id:
        raise BadRequest("The region id in the body does not match the URL.")
    if session.get(m.Region, region_id) is not None:
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
    parent = optional_str(body, "parent_region_id")
    if parent:
        get_region(session, parent)
    region = m.Region(
        id=region_id,
        description=optional_str(body, "description", "") or "",
        parent_region_id=parent or None,
    )
    session.add(region)
    return region


def update_region(session: Session, region_id: str, body: dict[str, Any]) -> m.Region:
    region = get_region(session, region_id)
    if "description" in body:
        region.description = optional_str(body, "description", "") or ""
    if "parent_region_id" in body:
        parent = optional_str(body, "parent_region_id")
        if parent:
            if parent == region_id:
                raise BadRequest("A region cannot be its own parent.")
            get_region(session, parent)
        region.parent_region_id = parent or None
    return region


def delete_region(session: Session, region_id: str) -> None:
    region = get_region(session, region_id)
    child = session.scalars(
        select(m.Region.id).where(m.Region.parent_region_id == region_id)
    ).first()
    if child is not None:
        raise Conflict(f"Region {region_id} has child regions; delete them first.")
    session.delete(region)


# Endpoints -----------------------------------------------------------------------------


def list_endpoints(
    session: Session,
    interface: str | None = None,
    service_id: str | None = None,
    region_id: str | None = None,
) -> list[m.Endpoint]:
    query = select(m.Endpoint).order_by(m.Endpoint.id)
    if interface is not None:
        query = query.where(m.Endpoint.interface == interface)
    if service_id is not None:
        query = query.where(m.Endpoint.service_id == service_id)
    if region_id is not None:
        query = query.where(m.Endpoint.region_id == region_id)
    return list(session.scalars(query))


def get_endpoint(session: Session, endpoint_id: str) -> m.Endpoint:
    return get_or_404(session, m.Endpoint, endpoint_id, "endpoint")


def _endpoint_region(session: Session, body: dict[str, Any]) -> str | None:
    """Keystone accepts ``region_id`` or the legacy ``region`` and creates it if missing."""
    region = optional_str(body, "region_id", max_len=255) or optional_str(
        body, "region", max_len=255
    )
    if region and session.get(m.Region, region) is None:
        session.add(m.Region(id=region, description=""))
        session.flush()
    return region or None


def _interface(body: dict[str, Any]) -> str:
    interface = body.get("interface")
    if interface not in INTERFACES:
        raise BadRequest(
            f"Invalid input for field 'interface': {interface!r} is not one of "
            f"{', '.join(INTERFACES)}."
        )
    return str(interface)


def _url(body: dict[str, Any]) -> str:
    url = optional_str(body, "url", max_len=2048)
    if not url or "://" not in url:
        raise BadRequest("Invalid input for field 'url': an absolute URL is required.")
    return url


_ENDPOINT_FIELDS = (
    "id",
    "service_id",
    "interface",
    "region",
    "region_id",
    "url",
    "enabled",
    "links",
)


def create_endpoint(session: Session, body: dict[str, Any]) -> m.Endpoint:
    service_id = optional_str(body, "service_id")
    if not service_id:
        raise BadRequest("Invalid input for field 'service_id': required.")
    get_service(session, service_id)
    endpoint = m.Endpoint(
        id=new_id(),
        service_id=service_id,
        interface=_interface(body),
        url=_url(body),
        region_id=_endpoint_region(session, body),
        enabled=optional_bool(body, "enabled", True),
        extra={k: v for k, v in body.items() if k not in _ENDPOINT_FIELDS},
    )
    session.add(endpoint)
    return endpoint


def update_endpoint(session: Session, endpoint_id: str, body: dict[str, Any]) -> m.Endpoint:
    endpoint = get_endpoint(session, endpoint_id)
    if "service_id" in body:
        service_id = optional_str(body, "service_id") or ""
        get_service(session, service_id)
        endpoint.service_id = service_id
    if "interface" in body:
        endpoint.interface = _interface(body)
    if "url" in body:
        endpoint.url = _url(body)
    if "region" in body or "region_id" in body:
        endpoint.region_id = _endpoint_region(session, body)
    if "enabled" in body:
        endpoint.enabled = optional_bool(body, "enabled", endpoint.enabled)
    endpoint.extra = {
        **(endpoint.extra or {}),
        **{k: v for k, v in body.items() if k not in _ENDPOINT_FIELDS},
    }
    return endpoint


def delete_endpoint(session: Session, endpoint_id: str) -> None:
    session.delete(get_endpoint(session, endpoint_id))

"""The kumo-api ASGI application: every public API under one address (DESIGN.md section 9)."""

from __future__ import annotations

from fastapi import FastAPI

import kumo
from kumo.api import (
    admin,
    admin_usage,
    agent,
    agent_network,
    agent_volume,
    console_proxy,
    errors,
    metrics,
    nul_guard,
    request_id,
)
from kumo.api.compute import (
    aggregates,
    availability_zones,
    extensions,
    flavors,
    hypervisors,
    interfaces,
    keypairs,
    migrations,
    os_hosts,
    quota_sets,
    remote_consoles,
    server_diagnostics,
    server_groups,
    server_metadata,
    server_migrations,
    server_tags,
    servers,
    usage,
    volume_attachments,
)
from kumo.api.compute import images as compute_images
from kumo.api.compute import microversion as compute_microversion
from kumo.api.compute import security_group_rules as compute_security_group_rules
from kumo.api.compute import security_groups as compute_security_groups
from kumo.api.compute import services as compute_services
from kumo.api.compute import versions as compute_versions
from kumo.api.compute.project_urls import ProjectIdInURL
from kumo.api.identity import (
    appcreds,
    credentials,
    domains_projects,
    roles,
    services,
    tokens,
    trusts,
    users_groups,
    versions,
)
from kumo.api.image import data as image_data
from kumo.api.image import images as image_images
from kumo.api.image import versions as image_versions
from kumo.api.network import agents as network_agents
from kumo.api.network import availability_zones as network_availability_zones
from kumo.api.network import extensions as network_extensions
from kumo.api.network import floating_ips as network_floating_ips
from kumo.api.network import ip_availability as network_ip_availability
from kumo.api.network import networks as network_networks
from kumo.api.network import ports as network_ports
from kumo.api.network import quotas as network_quotas
from kumo.api.network import routers as network_routers
from kumo.api.network import security_group_rules as network_security_group_rules
from kumo.api.network import security_groups as network_security_groups
from kumo.api.network import subnetpools as network_subnetpools
from kumo.api.network import subnets as network_subnets
from kumo.api.network import tags as network_tags
from kumo.api.network import versions as network_versions
from kumo.api.state import AppState
from kumo.api.volume import limits as volume_limits
from kumo.api.volume import microversion as volume_microversion
from kumo.api.volume import services as volume_services
from kumo.api.volume import snapshots as volume_snapshots
from kumo.api.volume import transfers as volume_transfers
from kumo.api.volume import types as volume_types
from kumo.api.volume import unrouted as volume_unrouted
from kumo.api.volume import versions as volume_versions
from kumo.api.volume import volumes as volume_volumes
from kumo.config import Config
from kumo.core.network import changes as network_changes
from kumo.db.engine import Database
from kumo.web import site as web_site

IDENTITY_V3 = "/identity/v3"


def create_app(config: Config, db: Database) -> FastAPI:
    app = FastAPI(
        title="kumo",
        version=kumo.__version__,
        docs_url="/kumo/docs",
        openapi_url="/kumo/openapi.json",
        redoc_url=None,
    )
    app.state.kumo = AppState(config=config, db=db)
    errors.install(app)
    metrics.install(app, app.state.kumo)
    compute_microversion.install(app)
    volume_microversion.install(app)
    nul_guard.install(app)  # inside request_id: its 400s carry a request id too
    request_id.install(app)
    network_changes.watch()  # network writes wake the agents' long-polls
    app.add_middleware(ProjectIdInURL)
    # Routes are matched in order, router by router (10-35 us each even when nothing in it
    # matches), so the busiest go first: the agent API (every host's heartbeats, long-polls
    # and reports), then compute. Identity, mostly token issue (clients keep their token),
    # comes last. Each service has its own path prefix, so the order changes nothing else.
    app.include_router(agent.router)
    app.include_router(agent_network.router)
    app.include_router(agent_volume.router)
    app.include_router(servers.router)
    app.include_router(compute_versions.router)
    app.include_router(flavors.router)
    app.include_router(keypairs.router)
    for compute_module in (
        server_metadata,
        server_tags,
        server_groups,
        hypervisors,
        compute_services,
        availability_zones,
        aggregates,
        quota_sets,
        usage,
        migrations,
        server_migrations,
        compute_images,
        compute_security_groups,
        compute_security_group_rules,
        os_hosts,
        extensions,
        server_diagnostics,
        interfaces,
        volume_attachments,
        remote_consoles,
    ):
        app.include_router(compute_module.router)
    app.include_router(image_versions.router)
    app.include_router(image_images.router)
    app.include_router(image_data.router)
    for network_module in (
        network_versions,
        network_networks,
        network_subnets,
        network_subnetpools,
        network_ports,
        network_quotas,
        network_extensions,
        network_availability_zones,
        network_agents,
        network_ip_availability,
        network_tags,
        network_security_groups,
        network_security_group_rules,
        network_routers,
        network_floating_ips,
    ):
        app.include_router(network_module.router)
    for volume_module in (
        volume_versions,
        volume_volumes,
        volume_types,
        volume_snapshots,
        volume_limits,
        volume_services,
        volume_transfers,
        volume_unrouted,  # last: paths with a trailing slash that nothing above serves
    ):
        app.include_router(volume_module.router)
    app.include_router(versions.router)
    for module in (
        tokens,
        domains_projects,
        users_groups,
        roles,
        appcreds,
        services,
        credentials,
        trusts,
    ):
        app.include_router(module.router, prefix=IDENTITY_V3)
    app.include_router(admin.router)
    app.include_router(admin_usage.router)
    app.include_router(console_proxy.router)

    web_site.install(app, config)  # the dashboard, a client of the APIs above
    return app

"""Networking (Neutron v2.0): networks, subnet pools, subnets, ports and their fixed IPs,
security groups and rules, routers, floating IPs and tags.

New tables only: old code neither reads nor writes them, so this is an expand step.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "network_tags",
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "tag"),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("network_type", sa.String(length=16), nullable=False),
        sa.Column("physical_network", sa.String(length=64), nullable=True),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("segment_key", sa.String(length=128), nullable=True),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("availability_zone_hints", sa.JSON(), nullable=False),
        sa.Column("dns_domain", sa.String(length=255), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("segment_key"),
    )
    op.create_index(op.f("ix_networks_project_id"), "networks", ["project_id"], unique=False)
    op.create_table(
        "security_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("stateful", sa.Boolean(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_security_groups_project_id"), "security_groups", ["project_id"], unique=False
    )
    op.create_table(
        "subnetpools",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("default_prefixlen", sa.Integer(), nullable=False),
        sa.Column("min_prefixlen", sa.Integer(), nullable=False),
        sa.Column("max_prefixlen", sa.Integer(), nullable=False),
        sa.Column("default_quota", sa.Integer(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("address_scope_id", sa.String(length=64), nullable=True),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subnetpools_project_id"), "subnetpools", ["project_id"], unique=False)
    op.create_table(
        "default_security_groups",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["security_group_id"], ["security_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "ports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("device_owner", sa.String(length=255), nullable=False),
        sa.Column("binding_host_id", sa.String(length=64), nullable=True),
        sa.Column("binding_vnic_type", sa.String(length=32), nullable=False),
        sa.Column("binding_vif_type", sa.String(length=32), nullable=False),
        sa.Column("binding_vif_details", sa.JSON(), nullable=False),
        sa.Column("binding_profile", sa.JSON(), nullable=False),
        sa.Column("binding_fault", sa.Text(), nullable=True),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("allowed_address_pairs", sa.JSON(), nullable=False),
        sa.Column("extra_dhcp_opts", sa.JSON(), nullable=False),
        sa.Column("dns_name", sa.String(length=255), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "mac_address", name="uq_ports_network_mac"),
    )
    op.create_index(op.f("ix_ports_binding_host_id"), "ports", ["binding_host_id"], unique=False)
    op.create_index("ix_ports_device", "ports", ["device_id"], unique=False)
    op.create_index(op.f("ix_ports_network_id"), "ports", ["network_id"], unique=False)
    op.create_index(op.f("ix_ports_project_id"), "ports", ["project_id"], unique=False)
    op.create_table(
        "security_group_rules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("ethertype", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=True),
        sa.Column("port_range_min", sa.Integer(), nullable=True),
        sa.Column("port_range_max", sa.Integer(), nullable=True),
        sa.Column("remote_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("remote_group_id", sa.String(length=64), nullable=True),
        sa.Column("remote_address_group_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["remote_group_id"], ["security_groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["security_group_id"], ["security_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_security_group_rules_project_id"),
        "security_group_rules",
        ["project_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_security_group_rules_remote_group_id"),
        "security_group_rules",
        ["remote_group_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_security_group_rules_security_group_id"),
        "security_group_rules",
        ["security_group_id"],
        unique=False,
    )
    op.create_table(
        "subnets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("dns_nameservers", sa.JSON(), nullable=False),
        sa.Column("host_routes", sa.JSON(), nullable=False),
        sa.Column("allocation_pools", sa.JSON(), nullable=False),
        sa.Column("ipv6_ra_mode", sa.String(length=32), nullable=True),
        sa.Column("ipv6_address_mode", sa.String(length=32), nullable=True),
        sa.Column("subnetpool_id", sa.String(length=64), nullable=True),
        sa.Column("service_types", sa.JSON(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subnetpool_id"],
            ["subnetpools.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subnets_network_id"), "subnets", ["network_id"], unique=False)
    op.create_index(op.f("ix_subnets_project_id"), "subnets", ["project_id"], unique=False)
    op.create_index(op.f("ix_subnets_subnetpool_id"), "subnets", ["subnetpool_id"], unique=False)
    op.create_table(
        "ip_allocations",
        sa.Column("subnet_id", sa.String(length=64), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address"),
    )
    op.create_index(
        op.f("ix_ip_allocations_network_id"), "ip_allocations", ["network_id"], unique=False
    )
    op.create_index(op.f("ix_ip_allocations_port_id"), "ip_allocations", ["port_id"], unique=False)
    op.create_table(
        "port_security_groups",
        sa.Column("port_id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["security_group_id"], ["security_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id", "security_group_id"),
    )
    op.create_index(
        op.f("ix_port_security_groups_security_group_id"),
        "port_security_groups",
        ["security_group_id"],
        unique=False,
    )
    op.create_table(
        "routers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("gw_port_id", sa.String(length=64), nullable=True),
        sa.Column("external_network_id", sa.String(length=64), nullable=True),
        sa.Column("enable_snat", sa.Boolean(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("availability_zone_hints", sa.JSON(), nullable=False),
        sa.Column("host_id", sa.String(length=64), nullable=True),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["gw_port_id"], ["ports.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_routers_host_id"), "routers", ["host_id"], unique=False)
    op.create_index(op.f("ix_routers_project_id"), "routers", ["project_id"], unique=False)
    op.create_table(
        "floating_ips",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("floating_network_id", sa.String(length=64), nullable=False),
        sa.Column("floating_port_id", sa.String(length=64), nullable=False),
        sa.Column("floating_ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=64), nullable=True),
        sa.Column("fixed_ip_address", sa.String(length=64), nullable=True),
        sa.Column("router_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["floating_network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["floating_port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("floating_port_id"),
    )
    op.create_index(
        op.f("ix_floating_ips_floating_network_id"),
        "floating_ips",
        ["floating_network_id"],
        unique=False,
    )
    op.create_index(op.f("ix_floating_ips_port_id"), "floating_ips", ["port_id"], unique=False)
    op.create_index(
        op.f("ix_floating_ips_project_id"), "floating_ips", ["project_id"], unique=False
    )
    op.create_index(op.f("ix_floating_ips_router_id"), "floating_ips", ["router_id"], unique=False)

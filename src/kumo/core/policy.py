"""Who may do what: the caller's context and the rules, in one table.

Roles are ``admin``, ``member`` and ``reader`` (by default admin implies member implies reader;
the rules are data, see kumo.core.identity.roles). As in
OpenStack's default (non-scope-enforcing) policy, the admin role in any scope makes the caller
a cloud administrator; everyone else is confined to their own project and their own user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kumo.core.errors import Forbidden


@dataclass(frozen=True)
class Context:
    """The authenticated caller, as established from a validated token."""

    user_id: str
    user_domain_id: str
    roles: frozenset[str]
    project_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    app_cred_id: str | None = None
    app_cred_restricted: bool = False
    audit_ids: tuple[str, ...] = field(default_factory=tuple)
    # The API request this call serves (its X-OpenStack-Request-ID): Nova records it with
    # each instance action, and clients look an action up by it. None outside a request.
    request_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_reader(self) -> bool:
        return bool(self.roles & {"admin", "member", "reader"})


# The cloud acting on its own behalf (a DHCP port for a host, a server's ports deleted
# with it): what no user asked for directly, so no user's scope applies.
SERVICE = Context(user_id="kumo", user_domain_id="default", roles=frozenset({"admin"}), system=True)


Rule = Callable[[Context, dict[str, Any]], bool]


def _admin(ctx: Context, _t: dict[str, Any]) -> bool:
    return ctx.is_admin


def _admin_or_self(ctx: Context, t: dict[str, Any]) -> bool:
    return ctx.is_admin or ctx.user_id == t.get("user_id")


def _admin_or_own_unrestricted(ctx: Context, t: dict[str, Any]) -> bool:
    # A restricted application credential must not mint more credentials (Keystone rule).
    if ctx.app_cred_id and ctx.app_cred_restricted:
        return False
    return _admin_or_self(ctx, t)


def _admin_or_project_reader(ctx: Context, t: dict[str, Any]) -> bool:
    return ctx.is_admin or (
        ctx.is_reader and ctx.project_id is not None and ctx.project_id == t.get("project_id")
    )


def _admin_or_in_domain(ctx: Context, t: dict[str, Any]) -> bool:
    domain = t.get("domain_id")
    return ctx.is_admin or domain in (ctx.domain_id, ctx.project_domain_id)


def _any_reader(ctx: Context, _t: dict[str, Any]) -> bool:
    return ctx.is_reader


def _image_admin_or_owner_member(ctx: Context, t: dict[str, Any]) -> bool:
    # Glance's project_member_or_admin: readers may look but not change an image or members.
    return ctx.is_admin or (
        bool(ctx.roles & {"admin", "member"})
        and ctx.project_id is not None
        and ctx.project_id == t.get("project_id")
    )


def _admin_or_project_member(ctx: Context, t: dict[str, Any]) -> bool:
    # Nova's PROJECT_MEMBER_OR_ADMIN: a reader may look at a server but not drive it.
    return ctx.is_admin or (
        bool(ctx.roles & {"admin", "member"})
        and ctx.project_id is not None
        and ctx.project_id == t.get("project_id")
    )


RULES: dict[str, Rule] = {
    "identity:get_domain": _admin_or_in_domain,
    "identity:list_domains": _admin,
    "identity:create_domain": _admin,
    "identity:update_domain": _admin,
    "identity:delete_domain": _admin,
    "identity:get_project": _admin_or_project_reader,
    "identity:list_projects": _admin,
    "identity:list_user_projects": _admin_or_self,
    "identity:create_project": _admin,
    "identity:update_project": _admin,
    "identity:delete_project": _admin,
    "identity:get_user": _admin_or_self,
    "identity:list_users": _admin,
    "identity:create_user": _admin,
    "identity:update_user": _admin,
    "identity:delete_user": _admin,
    "identity:change_password": _admin_or_self,
    "identity:get_group": _admin,
    "identity:list_groups": _admin,
    "identity:list_groups_for_user": _admin_or_self,
    "identity:create_group": _admin,
    "identity:update_group": _admin,
    "identity:delete_group": _admin,
    "identity:list_users_in_group": _admin,
    "identity:add_user_to_group": _admin,
    "identity:remove_user_from_group": _admin,
    "identity:check_user_in_group": _admin,
    "identity:get_role": _any_reader,
    "identity:list_roles": _any_reader,
    "identity:create_role": _admin,
    "identity:update_role": _admin,
    "identity:delete_role": _admin,
    "identity:list_role_assignments": _admin,
    "identity:list_role_assignments_for_project": _admin_or_project_reader,
    "identity:grant": _admin,
    "identity:revoke_grant": _admin,
    "identity:check_grant": _admin,
    "identity:list_grants": _admin,
    "identity:get_application_credential": _admin_or_self,
    "identity:list_application_credentials": _admin_or_self,
    "identity:create_application_credential": _admin_or_own_unrestricted,
    "identity:delete_application_credential": _admin_or_own_unrestricted,
    "identity:list_services": _any_reader,
    "identity:list_endpoints": _any_reader,
    "identity:list_regions": _any_reader,
    "identity:manage_catalog": _admin,
    "identity:manage_policies": _admin,
    "identity:get_credential": _admin_or_self,
    "identity:create_credential": _admin_or_self,
    "identity:update_credential": _admin_or_self,
    "identity:delete_credential": _admin_or_self,
    "identity:validate_token": lambda ctx, t: True,
    # Image (Glance v2). Which images a caller can see is decided in kumo.core.images;
    # these rules say who may act on an image that is visible. target project_id: the owner
    # (for member status changes: the member project).
    "image:get_image": _any_reader,
    "image:get_images": _any_reader,
    "image:add_image": _image_admin_or_owner_member,
    "image:modify_image": _image_admin_or_owner_member,
    "image:delete_image": _image_admin_or_owner_member,
    "image:upload_image": _image_admin_or_owner_member,
    "image:download_image": _any_reader,
    "image:deactivate": _image_admin_or_owner_member,
    "image:reactivate": _image_admin_or_owner_member,
    "image:publicize_image": _admin,
    "image:set_owner": _admin,
    "image:add_member": _image_admin_or_owner_member,
    "image:delete_member": _image_admin_or_owner_member,
    "image:get_members": _any_reader,
    "image:modify_member": _image_admin_or_owner_member,
    "compute:manage_flavors": _admin,
    "compute:keypairs_of_others": _admin,
    # Operator views of the cloud and quota changes are admin-only, as in Nova's defaults;
    # a project's own quotas, limits and usage are readable by its members.
    "compute:hypervisors:list": _admin,
    "compute:hypervisors:show": _admin,
    "compute:hypervisors:statistics": _admin,
    "compute:hypervisors:uptime": _admin,
    "compute:services:list": _admin,
    # os_compute_api:servers:show:host_status (2.16): the state of a server's host.
    "compute:servers:show:host_status": _admin,
    "compute:services:update": _admin,
    "compute:availability_zone:detail": _admin,
    # os_compute_api:os-aggregates:*: host aggregates are an operator's tool (Nova).
    "compute:aggregates:index": _admin,
    "compute:aggregates:create": _admin,
    "compute:aggregates:show": _admin,
    "compute:aggregates:update": _admin,
    "compute:aggregates:delete": _admin,
    "compute:aggregates:add_host": _admin,
    "compute:aggregates:remove_host": _admin,
    "compute:aggregates:set_metadata": _admin,
    # os_compute_api:servers:create:forced_host: "az:host" picks the host itself.
    "compute:servers:create:forced_host": _admin,
    "compute:hosts": _admin,  # os_compute_api:os-hosts:* (list, show, update, power)
    "compute:server_diagnostics": _admin,
    # os_compute_api:os-remote-consoles (member of the server's project) and
    # os_compute_api:os-console-auth-tokens (admin: it shows where a console listens).
    "compute:remote_consoles": _admin_or_project_member,
    # os_compute_api:os-server-tags:* : readers of the project list and check tags (the
    # server lookup scopes them), members change them.
    "compute:server_tags:update": _admin_or_project_member,
    "compute:server_tags:update_all": _admin_or_project_member,
    "compute:server_tags:delete": _admin_or_project_member,
    "compute:server_tags:delete_all": _admin_or_project_member,
    "compute:console_auth_tokens": _admin,  # os_compute_api:os-server-diagnostics
    "compute:limits:other_project": _admin,
    "compute:quota_sets:show": _admin_or_project_reader,
    "compute:quota_sets:update": _admin,
    "compute:quota_class_sets": _admin,  # os_compute_api:os-quota-class-sets:show/update
    "compute:usage:list": _admin,
    "compute:usage:show": _admin_or_project_reader,
    # Moving servers between hosts, and looking at the moves, is for operators (Nova).
    "compute:migrate_live": _admin,
    "compute:migrate": _admin,  # os_compute_api:os-migrate-server:migrate (cold)
    "compute:evacuate": _admin,  # os_compute_api:os-evacuate
    "compute:shelve_offload": _admin,  # os_compute_api:os-shelve:shelve_offload
    # Block storage (Cinder's defaults): types, forced deletes, status resets, quotas.
    "volume:manage_types": _admin,  # volume_extension:types_manage
    "volume:force_delete": _admin,  # volume_extension:volume_admin_actions:force_delete
    "volume:reset_status": _admin,  # volume_extension:volume_admin_actions:reset_status
    "volume:quota_sets:other_project": _admin,
    "volume:quota_sets:update": _admin,
    # volume_extension:services:index: the block storage services, an operator's view.
    "volume:services:index": _admin,
    "compute:migrations:index": _admin,
    "compute:server_migrations:index": _admin,
    "compute:server_migrations:show": _admin,
    "compute:server_migrations:force_complete": _admin,
    "compute:server_migrations:delete": _admin,
    "kumo:list_hosts": _admin,
    "kumo:update_host": _admin,
    "kumo:usage": _admin,
}


def enforce(ctx: Context, action: str, target: dict[str, Any] | None = None) -> None:
    """Raise Forbidden unless the rule for ``action`` allows ``ctx`` on ``target``."""
    rule = RULES.get(action)
    if rule is None:
        raise KeyError(f"no policy rule for {action}")
    if not rule(ctx, target or {}):
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")


def allowed(ctx: Context, action: str, target: dict[str, Any] | None = None) -> bool:
    rule = RULES[action]
    return rule(ctx, target or {})

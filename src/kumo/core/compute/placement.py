"""Placement: the one place where a host is chosen for a server (DESIGN.md section 7).

Every choice of a host goes through :func:`select_hosts`: a new server and an unshelved one
(the scheduler, :data:`BOOT`), an evacuation, a cold migration and a live migration, with a
named host or without. Nova's filter scheduler in small, as data: :data:`FILTERS` is a table of
named predicates, each with the reason a host it refuses is out (what "No valid host was
found." says, host by host) and the decisions it applies to; :data:`WEIGHERS` ranks the hosts
left, best first. A decision differs from another only by its :class:`Request`, never by a
filter written again, so a rule added here (the network types a host's datapath can carry,
say) holds for every move at once.

A named host (an admin's ``az:host`` at create, an evacuation or live migration to a given
host, the host holding an unshelved server's local volumes) is the only candidate, and every
filter but the availability zone's still runs on it: the claim must fit (DESIGN.md 3.4) and
its agent must be able to run the guest and carry its networks, or the server would land
broken. Nova before 2.29/2.30 skipped its filters for a named host (placement still checked
the room); the ``force`` flag that lets a caller skip them from there on is not served.

The source of a move is never a candidate (Nova's ignore_hosts), so it gives no reason.

Claims: the caller takes the claims lock (:func:`kumo.db.locking.lock_for_claims`) before
its first read and writes the chosen host's allocation with :func:`claim` in the same
transaction, so two racing decisions never overcommit a host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import hosts
from kumo.core.compute import aggregates, nics, server_groups, servers
from kumo.core.errors import BadRequest
from kumo.db import models as m
from kumo.db.types import utcnow

# The decisions.
BOOT = "boot"  # a new server, or an unshelved one: the scheduler
EVACUATE = "evacuate"
COLD = "cold"  # cold migration
LIVE = "live"  # live migration
ALL = frozenset({BOOT, EVACUATE, COLD, LIVE})

NO_VALID_HOST = "No valid host was found."
RESOURCES = ("vCPUs", "RAM", "disk")  # the order of every need and free room here


@dataclass
class HostState:
    """A host as placement sees it: whether it is alive, its zone, and the room it has left
    (vCPUs, MiB of RAM, GiB of disk after allocation ratios and claims), which
    :func:`claim` lowers so a batch of decisions sees its own claims. ``verdicts`` keeps,
    per kind of decision, which filter looking at the host alone refused it (or None)."""

    host: m.Host
    up: bool
    zone: str
    free: list[float]
    id: str = field(init=False)
    verdicts: dict[str, Filter | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = self.host.id  # read once: the ORM attribute costs a call each time


@dataclass(frozen=True)
class Request:
    """One decision: what the server needs and what the caller asks of its host."""

    kind: str
    instance_id: str
    need: tuple[int, int, int]
    network_types: frozenset[str] = frozenset()
    group: server_groups.Placement | None = None
    zone: str | None = None  # the availability zone asked for at create
    host_id: str | None = None  # the only host wanted (named or forced)
    source: m.Host | None = None  # the host a move leaves
    block_migration: bool | str = "auto"  # a live migration's wish: True, False or "auto"


@dataclass(frozen=True)
class Filter:
    """A host passes when ``passes`` says so; otherwise ``reason`` says why it is out.
    ``host_only``: the verdict depends on the host alone, not on the request, so a batch
    of decisions asks it once per host."""

    name: str
    kinds: frozenset[str]
    passes: Callable[[Request, HostState], bool]
    reason: Callable[[Request, HostState], str]
    host_only: bool = False


@dataclass(frozen=True)
class Weigher:
    """Higher is better; hosts are ranked by the weighers in table order (the first one
    decides, the next breaks its ties), then by name."""

    name: str
    weight: Callable[[Request, HostState, SchedulerConfig], float]


@dataclass(frozen=True)
class Refusal:
    host: m.Host
    filter: str
    reason: str


@dataclass
class Selection:
    """The hosts that passed, best first, and why each of the others did not."""

    request: Request
    hosts: list[HostState]
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def best(self) -> HostState | None:
        return self.hosts[0] if self.hosts else None

    def refusal_of(self, host_id: str) -> Refusal | None:
        return next((r for r in self.refusals if r.host.id == host_id), None)

    def explain(self) -> str:
        """Host by host, why none fits; only the wanted host's reason when one was named."""
        wanted = self.request.host_id
        if wanted is not None:
            refusal = self.refusal_of(wanted)
            if refusal is None:
                return f"the requested host {wanted} is not registered"
            return f"{refusal.host.name}: {refusal.reason}"
        return "; ".join(f"{r.host.name}: {r.reason}" for r in self.refusals)


# --- the hypervisor's capabilities, as its agent registered them ---------------------------


def hypervisor(host: m.Host) -> dict[str, Any]:
    hv = (host.capabilities or {}).get("hypervisor")
    return hv if isinstance(hv, dict) else {}


def can(host: m.Host, capability: str) -> bool:
    """Whether the host's agent does its part in this kind of move (an agent from before
    it would not understand the migration it is given)."""
    return bool(hypervisor(host).get(capability))


def _same_driver(source: m.Host | None, host: m.Host) -> bool:
    return source is not None and hypervisor(host).get("driver") == hypervisor(source).get("driver")


def _storage_id(host: m.Host) -> str | None:
    """Hosts that see the same instance storage advertise the same id (the hypervisor
    capability ``storage_id``); no id means storage of its own."""
    value = hypervisor(host).get("storage_id")
    return str(value) if value else None


def block_for(source: m.Host, dest: m.Host, wanted: bool | str) -> bool | str:
    """Whether a live migration copies disks (True) or shares them (False); a message when
    the wish and the storage disagree (Nova's InvalidSharedStorage, a 400)."""
    shared = _storage_id(source) is not None and _storage_id(source) == _storage_id(dest)
    if wanted == "auto":
        return not shared
    if wanted and shared:
        return (
            f"{dest.name} is on shared storage: Block migration can not be used with "
            "shared storage."
        )
    if not wanted and not shared:
        return (
            f"{dest.name} is not on shared storage: Shared storage live-migration requires "
            "either shared storage or boot-from-volume with no local disks."
        )
    return bool(wanted)


def _source_name(request: Request) -> str:
    return request.source.name if request.source is not None else "its host"


def _missing_types(request: Request, state: HostState) -> list[str]:
    return nics.types_missing_on(state.host, set(request.network_types))


def _network_reason(request: Request, state: HostState) -> str:
    missing = _missing_types(request, state)
    why = nics.type_reason(state.host, missing[0])
    return f"cannot carry {', '.join(missing)} networks" + (f" ({why})" if why else "")


def shortfalls(free: list[float] | tuple[float, ...], need: tuple[int, int, int]) -> list[str]:
    """What a host lacks for a need, by name; empty when it fits."""
    return [what for what, have, want in zip(RESOURCES, free, need, strict=True) if have < want]


def _group_allows(request: Request, state: HostState) -> bool:
    group = request.group
    return group is None or not group.hard or server_groups.allows(group, state.id)


def _group_reason(request: Request, state: HostState) -> str:
    group = request.group
    assert group is not None
    return f"server group {group.group_id} policy {group.policy}"


def _storage_fits(request: Request, state: HostState) -> bool:
    return request.source is None or not isinstance(
        block_for(request.source, state.host, request.block_migration), str
    )


def _storage_reason(request: Request, state: HostState) -> str:
    assert request.source is not None
    return str(block_for(request.source, state.host, request.block_migration))


# --- the tables ----------------------------------------------------------------------------

# A host's service: Nova's ComputeFilter. A named host refused by one of these is
# "unavailable" rather than unfit.
SERVICE_FILTERS = ("enabled", "not_forced_down", "alive", "hypervisor")

FILTERS: tuple[Filter, ...] = (
    Filter("enabled", ALL, lambda r, h: h.host.enabled, lambda r, h: "disabled", True),
    Filter(
        "not_forced_down",
        ALL,
        lambda r, h: not h.host.forced_down,
        lambda r, h: "forced down",
        True,
    ),
    Filter("alive", ALL, lambda r, h: h.up, lambda r, h: "down", True),
    Filter(
        "hypervisor",
        ALL,
        lambda r, h: bool(hypervisor(h.host)),
        lambda r, h: "no hypervisor driver",
        True,
    ),
    Filter(
        "requested_host",
        ALL,
        lambda r, h: r.host_id is None or h.id == r.host_id,
        lambda r, h: "not the requested host",
    ),
    # A named host wins over the zone, as Nova's az:host does.
    Filter(
        "availability_zone",
        frozenset({BOOT}),
        lambda r, h: r.host_id is not None or not r.zone or h.zone == r.zone,
        lambda r, h: f"in availability zone {h.zone}, not {r.zone}",
    ),
    Filter(
        "evacuation_capable",
        frozenset({EVACUATE}),
        lambda r, h: can(h.host, "evacuate"),
        lambda r, h: "its agent cannot take an evacuation",
    ),
    Filter(
        "cold_migration_capable",
        frozenset({COLD}),
        lambda r, h: can(h.host, "cold_migration") and _same_driver(r.source, h.host),
        lambda r, h: f"cannot take a cold migration from {_source_name(r)}",
    ),
    Filter(
        "live_migration_capable",
        frozenset({LIVE}),
        lambda r, h: can(h.host, "live_migration") and _same_driver(r.source, h.host),
        lambda r, h: f"cannot take a live migration from {_source_name(r)}",
    ),
    Filter("network_types", ALL, lambda r, h: not _missing_types(r, h), _network_reason),
    Filter(
        "capacity",
        ALL,
        lambda r, h: all(have >= want for have, want in zip(h.free, r.need, strict=True)),
        lambda r, h: f"not enough {', '.join(shortfalls(h.free, r.need))}",
    ),
    Filter("server_group", ALL, _group_allows, _group_reason),
    Filter("shared_storage", frozenset({LIVE}), _storage_fits, _storage_reason),
)

WEIGHERS: tuple[Weigher, ...] = (
    # The soft server-group policies first (more peers for soft-affinity, fewer for anti).
    Weigher(
        "server_group_soft",
        lambda r, h, cfg: server_groups.weight(r.group, h.id) if r.group else 0,
    ),
    # Then spread (the most free RAM) or pack (the least), as configured.
    Weigher("ram", lambda r, h, cfg: h.free[1] if cfg.weigher == "spread" else -h.free[1]),
)


# --- reading the hosts, deciding, claiming -------------------------------------------------


def allocated(session: Session) -> dict[str, tuple[int, int, int]]:
    """What the allocations hold on each host (vCPUs, MiB of RAM, GiB of disk), one query."""
    return {
        row.host_id: (int(row.vcpus or 0), int(row.memory_mb or 0), int(row.disk_gb or 0))
        for row in session.execute(
            select(
                m.Allocation.host_id,
                func.sum(m.Allocation.vcpus).label("vcpus"),
                func.sum(m.Allocation.memory_mb).label("memory_mb"),
                func.sum(m.Allocation.disk_gb).label("disk_gb"),
            ).group_by(m.Allocation.host_id)
        )
    }


def capacity(
    cfg: SchedulerConfig, vcpus: float, memory_mb: float, disk_gb: float
) -> tuple[float, float, float]:
    """What the scheduler may hand out of a host's inventory: (inventory - reserved) x the
    allocation ratio, as vCPUs, MiB of RAM and GiB of disk. The one formula, also behind
    the capacity gauges of /metrics."""
    return (
        vcpus * cfg.cpu_allocation_ratio,
        (memory_mb - cfg.reserved_host_memory_mb) * cfg.ram_allocation_ratio,
        (disk_gb - cfg.reserved_host_disk_gb) * cfg.disk_allocation_ratio,
    )


def host_states(
    session: Session, cfg: SchedulerConfig, heartbeat_timeout: float
) -> list[HostState]:
    """Every registered host, by name, with its free room: inventory minus reservations,
    times the allocation ratios, minus what allocations already hold. One read of the
    allocations for all of them; the caller holds the claims lock."""
    used = allocated(session)
    zones = aggregates.host_zones(session)
    now = utcnow()
    states = []
    for host in session.scalars(select(m.Host).order_by(m.Host.name)):
        inv = host.inventory or {}
        total = capacity(cfg, inv.get("vcpus", 0), inv.get("memory_mb", 0), inv.get("disk_gb", 0))
        free = [have - held for have, held in zip(total, used.get(host.id, (0, 0, 0)), strict=True)]
        up = hosts.status_of(host, heartbeat_timeout, now).up
        states.append(HostState(host, up, aggregates.zone_of(zones, host.id), free))
    return states


def request_for(
    session: Session,
    instance: m.Instance,
    kind: str,
    *,
    host_id: str | None = None,
    source: m.Host | None = None,
    block_migration: bool | str = "auto",
    in_group: bool = True,
) -> Request:
    """The request for placing ``instance``: its flavor's need, its networks' types, its
    server group (``in_group`` False when the caller knows it has none: one query less) and,
    for a new server, the zone and host it was created with."""
    if kind == BOOT:
        host_id = instance.requested_host_id
    return Request(
        kind=kind,
        instance_id=instance.id,
        need=servers.flavor_need(instance.flavor),
        network_types=frozenset(nics.network_types_of(session, instance)),
        group=server_groups.placement_for(session, instance.id) if in_group else None,
        zone=instance.availability_zone if kind == BOOT else None,
        host_id=host_id,
        source=source,
        block_migration=block_migration,
    )


def select_hosts(request: Request, states: list[HostState], cfg: SchedulerConfig) -> Selection:
    """Run the request through the filters (the first that refuses a host gives its
    reason), then rank the hosts left by the weighers."""
    filters = [f for f in FILTERS if request.kind in f.kinds]
    host_only = [f for f in filters if f.host_only]
    the_rest = [f for f in filters if not f.host_only]
    source_id = request.source.id if request.source is not None else None
    selection = Selection(request, [])
    for state in states:
        if state.id == source_id:
            continue
        refused = _host_refused_by(state, request, host_only)
        if refused is None:
            for check in the_rest:
                if not check.passes(request, state):
                    refused = check
                    break
        if refused is None:
            selection.hosts.append(state)
        else:
            selection.refusals.append(
                Refusal(state.host, refused.name, refused.reason(request, state))
            )
    # Stable: hosts of equal weights keep their order by name.
    selection.hosts.sort(
        key=lambda s: tuple(w.weight(request, s, cfg) for w in WEIGHERS), reverse=True
    )
    return selection


def _host_refused_by(state: HostState, request: Request, host_only: list[Filter]) -> Filter | None:
    """The first of the filters that look at the host alone to refuse it, asked once per
    host and kind of decision for a whole batch."""
    if request.kind not in state.verdicts:
        state.verdicts[request.kind] = next(
            (f for f in host_only if not f.passes(request, state)), None
        )
    return state.verdicts[request.kind]


def select_for_move(
    session: Session,
    cfg: SchedulerConfig,
    heartbeat_timeout: float,
    instance: m.Instance,
    kind: str,
    source: m.Host,
    named: m.Host | None = None,
    block_migration: bool | str = "auto",
) -> Selection:
    """The hosts a move of ``instance`` off ``source`` may go to (only ``named``, if
    given), best first, and why the others may not."""
    request = request_for(
        session,
        instance,
        kind,
        host_id=named.id if named is not None else None,
        source=source,
        block_migration=block_migration,
    )
    return select_hosts(request, host_states(session, cfg, heartbeat_timeout), cfg)


def no_valid_host(selection: Selection) -> BadRequest:
    """Nova's NoValidHost for a move (a 400 before microversion 2.34), with the reasons."""
    return BadRequest(f"{NO_VALID_HOST} {selection.explain() or 'There are no other hosts.'}")


def best_or_refuse(selection: Selection) -> HostState:
    """The destination of a move, or Nova's NoValidHost."""
    if selection.best is None:
        raise no_valid_host(selection)
    return selection.best


def claim(session: Session, consumer_id: str, state: HostState, need: tuple[int, int, int]) -> None:
    """Write the allocation of ``need`` on the chosen host for ``consumer_id`` (a server,
    or a migration holding its destination) and take it off the host's free room."""
    session.add(
        m.Allocation(
            instance_id=consumer_id,
            host_id=state.host.id,
            vcpus=need[0],
            memory_mb=need[1],
            disk_gb=need[2],
        )
    )
    for index, amount in enumerate(need):
        state.free[index] -= amount


def free_on(
    session: Session, cfg: SchedulerConfig, heartbeat_timeout: float, host_id: str
) -> tuple[float, float, float]:
    """The room a host has left for growing a server in place (resize): none when its
    service filters refuse it (disabled, forced down, down, no hypervisor)."""
    probe = Request(kind=BOOT, instance_id="", need=(0, 0, 0))
    service = [f for f in FILTERS if f.name in SERVICE_FILTERS]
    for state in host_states(session, cfg, heartbeat_timeout):
        if state.id == host_id and all(f.passes(probe, state) for f in service):
            return state.free[0], state.free[1], state.free[2]
    return 0.0, 0.0, 0.0

"""Migrations on every backend: data survives an upgrade, a backup is taken, and the models
match what the migrations create."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kumo.db import backup, migrate
from kumo.db import models as m
from kumo.db.models import Base


def _tables_at_0001() -> dict[str, sa.Table]:
    # These model tables are unchanged since 0001, so core inserts through them fit the
    # 0001 schema (and bind JSON and timestamps the way each backend wants).
    return {
        name: Base.metadata.tables[name]
        for name in ("domains", "projects", "users", "roles", "role_assignments")
    }


def test_upgrade_keeps_data_and_backs_up(db_factory, tmp_path):
    db = db_factory.create()
    migrate.upgrade(db, "0001")
    st = migrate.status(db)
    assert st.current == "0001"
    assert st.pending and not st.up_to_date
    now = dt.datetime(2024, 5, 1, 12, 30, 45, 123456)
    with db.engine.begin() as conn:
        t = _tables_at_0001()
        assert "hosts" not in sa.inspect(conn).get_table_names()
        conn.execute(
            t["domains"].insert(),
            [
                {
                    "id": "default",
                    "name": "Default",
                    "description": "",
                    "enabled": True,
                    "extra": {},
                    "created_at": now,
                },
            ],
        )
        conn.execute(
            t["projects"].insert(),
            [
                {
                    "id": "p1",
                    "name": "web",
                    "domain_id": "default",
                    "parent_id": None,
                    "description": "the web",
                    "enabled": True,
                    "tags": ["a"],
                    "extra": {},
                    "created_at": now,
                },
            ],
        )
        conn.execute(
            t["users"].insert(),
            [
                {
                    "id": "u1",
                    "name": "alice",
                    "domain_id": "default",
                    "enabled": True,
                    "password_hash": "hash",
                    "password_created_at": now,
                    "default_project_id": "p1",
                    "description": "",
                    "email": None,
                    "options": {},
                    "extra": {},
                    "created_at": now,
                },
            ],
        )
        conn.execute(
            t["roles"].insert(),
            [{"id": "r1", "name": "member", "domain_id": "", "description": "", "created_at": now}],
        )
        conn.execute(
            t["role_assignments"].insert(),
            [
                {
                    "actor_type": "user",
                    "actor_id": "u1",
                    "target_type": "project",
                    "target_id": "p1",
                    "role_id": "r1",
                    "inherited": False,
                }
            ],
        )

    saved = backup.backup(db, tmp_path / "backups", label="pre-upgrade")
    assert saved.is_file() and saved.stat().st_size > 0
    assert saved.parent == tmp_path / "backups"

    migrate.upgrade(db)
    st = migrate.status(db)
    assert st.up_to_date and st.current == st.head

    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"hosts", "leases", "services", "endpoints", "regions"} <= tables
        assert conn.execute(sa.text("SELECT name FROM domains")).scalars().all() == ["Default"]
        project = conn.execute(
            sa.text("SELECT name, domain_id, description FROM projects WHERE id = 'p1'")
        ).one()
        assert tuple(project) == ("web", "default", "the web")
        user = conn.execute(
            sa.text("SELECT name, default_project_id, password_created_at FROM users")
        ).one()
        assert user[0] == "alice" and user[1] == "p1"
        # Microseconds survive on every backend (MariaDB needs DATETIME(6)).
        stored = user[2]
        if isinstance(stored, str):
            stored = dt.datetime.fromisoformat(stored)
        assert stored == now
        count = conn.execute(sa.text("SELECT COUNT(*) FROM role_assignments")).scalar_one()
        assert count == 1

    # The ORM reads the migrated rows too.
    with db.session() as s:
        user = s.get(m.User, "u1")
        assert user is not None and user.options == {} and user.password_created_at == now
        assert s.get(m.Project, "p1").tags == ["a"]


def test_upgrade_is_idempotent(db_factory):
    db = db_factory.create()
    migrate.upgrade(db)
    head = migrate.status(db).current
    migrate.upgrade(db)
    assert migrate.status(db).current == head


def test_models_match_migrations(db_factory):
    db = db_factory.create()
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ on {db.backend}: {diff}"


def test_0010_hosts_registered_before_are_not_forced_down(db_factory):
    """0010 adds hosts.forced_down: hosts already registered keep working, not forced down."""
    db = db_factory.create()
    migrate.upgrade(db, "0009")
    now = dt.datetime(2024, 5, 1, 12, 0, 0)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hosts (id, name, enabled, disabled_reason, agent_version, "
                "agent_api_versions, capabilities, inventory, registered_at, "
                "last_heartbeat_at, version) VALUES (:id, :name, :enabled, NULL, '1', "
                "'[\"v1\"]', '{}', '{}', :now, :now, 1)"
            ),
            {"id": "h-1", "name": "hv-1", "enabled": True, "now": now},
        )
    migrate.upgrade(db, "0010")
    with db.session() as s:
        host = s.get(m.Host, "h-1")
        assert host is not None and host.name == "hv-1" and host.forced_down is False
        host.forced_down = True
    with db.session() as s:
        assert s.get(m.Host, "h-1").forced_down is True


def test_upgrade_to_migrations_table_keeps_servers(db_factory):
    """0009 -> 0010 -> 0011: servers and their allocations survive; the new migrations table takes
    rows through the ORM, with integer ids as Nova shows them."""
    db = db_factory.create()
    migrate.upgrade(db, "0009")
    now = dt.datetime(2025, 3, 1, 8, 0, 0, 250000)
    with db.engine.begin() as conn:
        assert "migrations" not in sa.inspect(conn).get_table_names()
        conn.execute(
            sa.text(
                "INSERT INTO hosts (id, name, enabled, agent_version, agent_api_versions, "
                "capabilities, inventory, registered_at, version) VALUES "
                "('h1', 'node-a', :t, '', '[]', '{}', '{}', :now, 1)"
            ),
            {"t": True, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO allocations (instance_id, host_id, vcpus, memory_mb, disk_gb, "
                "created_at) VALUES ('i1', 'h1', 1, 128, 1, :now)"
            ),
            {"now": now},
        )
    migrate.upgrade(db)
    assert migrate.status(db).up_to_date
    with db.session() as s:
        allocation = s.get(m.Allocation, "i1")
        assert allocation is not None and allocation.host_id == "h1"
        first = m.Migration(
            uuid="00000000-0000-0000-0000-000000000001",
            instance_uuid="i1",
            source_host_id="h1",
            source_compute="node-a",
            dest_host_id="h2",
            memory_total_bytes=1 << 33,
        )
        second = m.Migration(uuid="00000000-0000-0000-0000-000000000002", instance_uuid="i1")
        s.add_all([first, second])
        s.flush()
        assert isinstance(first.id, int) and second.id > first.id
    with db.session() as s:
        row = s.scalars(sa.select(m.Migration).order_by(m.Migration.id)).first()
        assert (row.status, row.migration_type, row.memory_total_bytes) == (
            "queued",
            "live-migration",
            1 << 33,
        )
        assert row.source_done is False and row.deleted is False


def test_0012_aggregates_tables_and_servers_survive(db_factory):
    """0011 -> 0012: servers keep their zone and get no forced host; aggregates take rows
    with integer ids, and a deleted aggregate frees its name (unique among live ones)."""
    db = db_factory.create()
    migrate.upgrade(db, "0011")
    now = dt.datetime(2025, 6, 1, 9, 0, 0, 500000)
    with db.engine.begin() as conn:
        assert "aggregates" not in sa.inspect(conn).get_table_names()
        conn.execute(
            sa.text(
                "INSERT INTO hosts (id, name, enabled, agent_version, agent_api_versions, "
                "capabilities, inventory, registered_at, version, forced_down) VALUES "
                "('h1', 'node-a', :t, '', '[]', '{}', '{}', :now, 1, :f)"
            ),
            {"t": True, "f": False, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO instances (id, name, project_id, user_id, host_id, flavor_id, "
                "flavor, meta, tags, config_drive, availability_zone, hostname, access_ipv4, "
                "access_ipv6, reservation_id, launch_index, locked, vm_state, power_state, "
                "desired_state, generation, observed_generation, created_at, updated_at, "
                "deleted, version) VALUES ('i1', 'vm', 'p', 'u', 'h1', 'f', '{}', '{}', "
                "'[]', :f, 'nova', 'vm', '', '', 'r', 0, :f, 'active', 1, 'active', 1, 1, "
                ":now, :now, :f, 1)"
            ),
            {"f": False, "now": now},
        )
    migrate.upgrade(db)
    assert migrate.status(db).up_to_date
    with db.session() as s:
        server = s.get(m.Instance, "i1")
        assert server is not None
        assert (server.availability_zone, server.requested_host_id) == ("nova", None)
        first = m.Aggregate(uuid="00000000-0000-0000-0000-00000000000a", name="rack1")
        s.add(first)
        s.flush()
        s.add(m.AggregateHost(aggregate_id=first.id, host_id="h1"))
        s.add(m.AggregateMetadata(aggregate_id=first.id, key="ssd", value="true"))
        first.deleted = first.id
        again = m.Aggregate(
            uuid="00000000-0000-0000-0000-00000000000b", name="rack1", availability_zone="az1"
        )
        s.add(again)
        s.flush()
        assert isinstance(first.id, int) and again.id > first.id
        first_id = first.id
    with db.session() as s:
        live = s.scalars(sa.select(m.Aggregate).where(m.Aggregate.deleted == 0)).one()
        assert (live.name, live.availability_zone) == ("rack1", "az1")
        assert s.get(m.AggregateHost, (first_id, "h1")) is not None


def test_0015_floating_ips_survive_and_one_per_fixed_ip(db_factory):
    """0013 -> 0015: floating IPs (associated or not) survive; afterwards a second floating
    IP on the same fixed IP and external network is refused by the database."""
    db = db_factory.create()
    migrate.upgrade(db, "0013")
    now = dt.datetime(2026, 1, 1, 9, 0, 0)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO networks (id, project_id, name, description, admin_state_up, "
                "status, shared, external, is_default, mtu, network_type, "
                "port_security_enabled, availability_zone_hints, dns_domain, revision_number, "
                "created_at, updated_at) VALUES ('n1', 'p', 'public', '', :t, 'ACTIVE', :f, "
                ":t, :f, 1500, 'flat', :t, '[]', '', 0, :now, :now)"
            ),
            {"t": True, "f": False, "now": now},
        )
        for index, port_id in enumerate(("fp1", "fp2", "fp3", "inside")):
            conn.execute(
                sa.text(
                    "INSERT INTO ports (id, network_id, project_id, name, description, "
                    "mac_address, admin_state_up, status, device_id, device_owner, "
                    "binding_vnic_type, binding_vif_type, binding_vif_details, binding_profile, "
                    "port_security_enabled, allowed_address_pairs, extra_dhcp_opts, dns_name, "
                    "revision_number, created_at, updated_at) VALUES (:id, 'n1', '', '', '', "
                    ":mac, :t, 'DOWN', '', '', 'normal', 'unbound', '{}', '{}', :t, '[]', '[]', "
                    "'', 0, :now, :now)"
                ),
                {
                    "id": port_id,
                    "mac": f"fa:16:3e:00:00:{index:02x}",
                    "t": True,
                    "now": now,
                },
            )
        for fip_id, port_id, fixed in (
            ("f1", "fp1", None),
            ("f2", "fp2", None),
            ("f3", "fp3", "10.0.0.5"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO floating_ips (id, project_id, floating_network_id, "
                    "floating_port_id, floating_ip_address, port_id, fixed_ip_address, status, "
                    "description, revision_number, created_at, updated_at) VALUES (:id, 'p', "
                    "'n1', :fp, :addr, :port, :fixed, 'DOWN', '', 0, :now, :now)"
                ),
                {
                    "id": fip_id,
                    "fp": port_id,
                    "addr": f"203.0.113.{fip_id[-1]}",
                    "port": "inside" if fixed else None,
                    "fixed": fixed,
                    "now": now,
                },
            )
    migrate.upgrade(db)
    assert migrate.status(db).up_to_date
    with db.session() as s:
        assert {f.id for f in s.scalars(sa.select(m.FloatingIP))} == {"f1", "f2", "f3"}
    try:
        with db.session() as s:
            f1 = s.get(m.FloatingIP, "f1")
            f1.port_id, f1.fixed_ip_address = "inside", "10.0.0.5"
        raise AssertionError("a second floating IP on one fixed IP was accepted")
    except sa.exc.IntegrityError:
        pass


def test_0016_to_head_servers_survive_and_volumes_work(db_factory):
    """0016 -> 0019: a server survives (not shelved: no shelved image), and the block
    storage tables take a volume, an attachment to that server, a snapshot and a transfer."""
    db = db_factory.create()
    migrate.upgrade(db, "0016")
    instances = Base.metadata.tables["instances"]
    with db.engine.begin() as conn:
        conn.execute(
            instances.insert().values(
                id="i1", name="vm", project_id="p", user_id="u", flavor_id="1",
                flavor={"vcpus": 1, "ram": 64, "disk": 1}, vm_state="active",
            )
        )  # fmt: skip
    migrate.upgrade(db)
    assert migrate.status(db).up_to_date
    with db.session() as s:
        server = s.get(m.Instance, "i1")
        assert (server.vm_state, server.shelved_image_id) == ("active", None)
        s.add(m.Volume(id="v1", project_id="p", user_id="u", size=1, meta={}))
        s.add(m.VolumeAttachment(id="a1", volume_id="v1", instance_id="i1", status="attached"))
        s.add(m.VolumeSnapshot(id="s1", volume_id="v1", project_id="p", user_id="u", size=1))
        s.add(m.VolumeTransfer(id="t1", volume_id="v1", project_id="p", salt="x", key_hash="y"))
    with db.session() as s:
        assert s.get(m.Volume, "v1").status == "creating"
        assert s.get(m.VolumeAttachment, "a1").instance_id == "i1"
        assert s.get(m.VolumeSnapshot, "s1").status == "creating"
        assert s.get(m.VolumeTransfer, "t1") is not None


def test_0020_to_0021_actions_survive_and_take_events(db_factory):
    """0021: an action recorded before the upgrade keeps its row and has no events (old
    actions were never given any); one finished after it gets its event finished by the
    recorder, and a new action opens its own."""
    from kumo.db.action_events import InstanceActionEvent

    db = db_factory.create()
    migrate.upgrade(db, "0020")
    actions = Base.metadata.tables["instance_actions"]
    with db.engine.begin() as conn:
        conn.execute(
            actions.insert().values(
                instance_id="i1", action="stop", request_id="req-old", user_id="u",
                project_id="p", start_time=dt.datetime(2026, 1, 1),
            )
        )  # fmt: skip
    migrate.upgrade(db, "0021")
    assert migrate.status(db).current == "0021"
    with db.session() as s:
        old = s.query(m.InstanceAction).filter_by(request_id="req-old").one()
        assert (old.action, old.finish_time) == ("stop", None)
        assert s.query(InstanceActionEvent).count() == 0
        old.finish_time = dt.datetime(2026, 1, 1, 0, 1)  # nothing to finish: no error
        s.add(
            m.InstanceAction(
                instance_id="i1", action="reboot", request_id="req-new", user_id="u",
                project_id="p",
            )
        )  # fmt: skip
    with db.session() as s:
        (event,) = s.query(InstanceActionEvent).all()
        assert (event.event, event.action.request_id, event.finish_time) == (
            "compute_reboot_instance",
            "req-new",
            None,
        )


def test_0022_ledger_seeded_with_one_open_interval_per_live_billable_thing(db_factory):
    """0020 -> 0022: an upgraded cloud starts its usage ledger with one open interval per
    live billable resource, of its current shape (a server waiting for a resize confirm at
    the flavor it had), and none for what is not billed; the recorder carries on from
    there. Launched servers keep their past as os-simple-tenant-usage counted it: one closed
    interval from launch to termination (or the upgrade), of unknown state class."""
    db = db_factory.create()
    migrate.upgrade(db, "0020")
    t = Base.metadata.tables
    small = {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}
    big = {"id": "2", "name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 20, "ephemeral": 5}
    with db.engine.begin() as conn:
        launched = dt.datetime(2026, 10, 1)
        for sid, vm_state, host, flavor, old, deleted in (
            ("i-run", "active", "h1", big, None, False),
            ("i-off", "stopped", "h1", small, None, False),
            ("i-shelf", "shelved_offloaded", None, small, None, False),
            ("i-resz", "resized", "h1", big, small, False),
            ("i-build", "building", None, small, None, False),
            ("i-err", "error", None, small, None, False),
            ("i-gone", "deleted", None, small, None, True),
        ):
            conn.execute(
                t["instances"].insert().values(
                    id=sid, name=sid, project_id="p", user_id="u", host_id=host,
                    flavor_id=flavor["id"], flavor=flavor, old_flavor=old, vm_state=vm_state,
                    deleted=deleted,
                    launched_at=launched if sid in ("i-run", "i-gone") else None,
                    terminated_at=launched + dt.timedelta(hours=5) if deleted else None,
                )
            )  # fmt: skip
        for table, values in (
            ("volumes", dict(id="v1", size=2, status="available", volume_type_id="vt")),
            ("volumes", dict(id="v-err", size=9, status="error")),
            ("volume_snapshots", dict(id="s1", volume_id="v1", size=2, status="available")),
        ):
            conn.execute(t[table].insert().values(project_id="p", user_id="u", **values))
        img = t["images"].insert()
        conn.execute(img.values(id="img", owner="p", status="active", size=3 << 29))
        conn.execute(img.values(id="pub", owner=None, status="active", size=5))
        conn.execute(
            t["networks"]
            .insert()
            .values(id="n1", project_id="admin", name="public", network_type="flat")
        )
        conn.execute(
            t["ports"]
            .insert()
            .values(id="fp1", network_id="n1", project_id="", name="", mac_address="fa:16:3e:0:0:1")
        )
        conn.execute(
            t["floating_ips"]
            .insert()
            .values(
                id="f1",
                project_id="p",
                floating_network_id="n1",
                floating_port_id="fp1",
                floating_ip_address="203.0.113.7",
            )
        )
    migrate.upgrade(db)
    assert migrate.status(db).up_to_date
    from kumo.core import usage_ledger
    from kumo.db.usage_tables import UsageInterval

    with db.session() as s:
        history = s.scalars(
            sa.select(UsageInterval)
            .where(UsageInterval.ended_at.is_not(None))
            .order_by(UsageInterval.resource_id)
        ).all()
        assert [(r.resource_id, r.state, r.vcpus, r.started_at) for r in history] == [
            ("i-gone", None, 1, launched),
            ("i-run", None, 2, launched),
        ]
        gone, run_history = history
        assert gone.ended_at == launched + dt.timedelta(hours=5)
        rows = {
            r.resource_id: r
            for r in s.scalars(sa.select(UsageInterval).where(UsageInterval.ended_at.is_(None)))
        }
        assert run_history.ended_at == rows["i-run"].started_at  # no gap at the upgrade
        assert set(rows) == {"i-run", "i-off", "i-shelf", "i-resz", "v1", "s1", "img", "f1"}
        assert all(r.ended_at is None and r.project_id == "p" for r in rows.values())
        run = rows["i-run"]
        assert (run.state, run.host_id, run.vcpus, run.memory_mb, run.disk_gb) == (
            "running", "h1", 2, 2048, 25,
        )  # fmt: skip
        assert (rows["i-off"].state, rows["i-off"].host_id) == ("stopped", "h1")
        assert (rows["i-shelf"].state, rows["i-shelf"].host_id) == ("shelved", None)
        assert (rows["i-resz"].flavor_name, rows["i-resz"].vcpus) == ("m1.tiny", 1)
        assert (rows["v1"].size_gb, rows["v1"].volume_type_id) == (2, "vt")
        assert (rows["s1"].size_gb, rows["img"].size_gb) == (2, 2)  # images: GiB rounded up
        assert rows["f1"].address == "203.0.113.7"
        assert usage_ledger.disagreements(s) == []
        s.get(m.Instance, "i-run").vm_state = "stopped"  # the recorder takes over
    with db.session() as s:
        mine = s.scalars(
            sa.select(UsageInterval)
            .where(UsageInterval.resource_id == "i-run")
            .order_by(UsageInterval.id)
        ).all()
        assert [(r.state, r.ended_at is None) for r in mine] == [
            (None, False),
            ("running", False),
            ("stopped", True),
        ]
        assert mine[1].ended_at == mine[2].started_at


def test_0023_outbox_is_added_and_holds_large_envelopes(db_factory):
    """0023 adds the notification outbox next to data already there; an envelope past
    MariaDB's 64 KiB TEXT (a server with much metadata) fits, and message ids are unique."""
    from kumo.db.outbox_tables import OutboxMessage

    db = db_factory.create()
    migrate.upgrade(db, "0020")
    with db.engine.begin() as conn:
        assert "outbox" not in sa.inspect(conn).get_table_names()
        conn.execute(
            Base.metadata.tables["wakeup_notes"].insert(),
            [{"payload": "origin host:x", "created_at": dt.datetime(2024, 5, 1)}],
        )
    migrate.upgrade(db)
    envelope = '{"oslo.version": "2.0", "oslo.message": "' + "x" * 100_000 + '"}'
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.WakeupNote)) == 1
        s.add(
            OutboxMessage(
                message_id="m-1",
                exchange="nova",
                routing_key="notifications.info",
                event_type="compute.instance.create.end",
                resource_id="server-1",
                envelope=envelope,
            )
        )
    with db.session() as s:
        assert s.scalars(sa.select(OutboxMessage.envelope)).one() == envelope
    try:
        with db.session() as s:
            s.add(
                OutboxMessage(
                    message_id="m-1",
                    exchange="nova",
                    routing_key="notifications.info",
                    event_type="x",
                    resource_id="server-1",
                    envelope="{}",
                )
            )
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("two outbox rows with one message id")


def test_0024_console_tables_are_added_next_to_servers(db_factory):
    """0024 adds the console endpoints and tokens next to data already there (an expand
    step: old code never reads them); a token is found by its hash and one hash is one
    token."""
    from kumo.db.console_tables import ConsoleAuthToken, ConsoleEndpoint

    db = db_factory.create()
    migrate.upgrade(db, "0023")
    with db.engine.begin() as conn:
        names = sa.inspect(conn).get_table_names()
        assert "console_auth_tokens" not in names and "console_endpoints" not in names
        conn.execute(
            Base.metadata.tables["wakeup_notes"].insert(),
            [{"payload": "origin host:x", "created_at": dt.datetime(2024, 5, 1)}],
        )
    migrate.upgrade(db)
    assert migrate.status(db).current >= "0024"  # and what came after keeps these
    when = dt.datetime(2026, 12, 7, 8, 0)
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.WakeupNote)) == 1
        s.add(ConsoleEndpoint(instance_id="server-1", host_id="h", address="127.0.0.1"))
        s.add(
            ConsoleAuthToken(
                token_hash="a" * 64,
                instance_id="server-1",
                console_type="novnc",
                host_id="h",
                address="127.0.0.1",
                port=5900,
                created_at=when,
                expires_at=when + dt.timedelta(seconds=600),
            )
        )
    with db.session() as s:
        endpoint = s.get(ConsoleEndpoint, "server-1")
        assert endpoint is not None
        assert (endpoint.vnc_port, endpoint.serial_port) == (None, None)
        token = s.get(ConsoleAuthToken, "a" * 64)
        assert token is not None
        assert (token.port, token.used_at, token.expires_at) == (
            5900,
            None,
            when + dt.timedelta(seconds=600),
        )
    try:
        with db.session() as s:
            s.add(
                ConsoleAuthToken(
                    token_hash="a" * 64,
                    instance_id="server-2",
                    console_type="serial",
                    host_id="h",
                    address="127.0.0.1",
                    port=1,
                    created_at=when,
                    expires_at=when,
                )
            )
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("two console tokens with one hash")


def test_0025_instance_tags_copied_from_the_json_column_and_case_sensitive(db_factory):
    """0025 adds instance_tags next to servers already there and copies what their JSON
    ``tags`` column held (each distinct non-empty string of at most 60 characters once,
    anything else left out); tags differ by case on every backend, and go with a purged
    server row."""
    from kumo.db.server_tag_tables import InstanceTag

    db = db_factory.create()
    migrate.upgrade(db, "0024")
    now = dt.datetime(2026, 12, 7, 9, 0)
    held = {
        "i1": '["web", "db", "web", "", 5, "' + "x" * 61 + '"]',
        "i2": "[]",
        "i3": '{"not": "a list"}',
    }
    with db.engine.begin() as conn:
        assert "instance_tags" not in sa.inspect(conn).get_table_names()
        for server_id, tags in held.items():
            conn.execute(
                sa.text(
                    "INSERT INTO instances (id, name, project_id, user_id, flavor_id, flavor, "
                    "meta, tags, config_drive, availability_zone, hostname, access_ipv4, "
                    "access_ipv6, reservation_id, launch_index, locked, vm_state, "
                    "power_state, desired_state, generation, observed_generation, "
                    "created_at, updated_at, deleted, version) VALUES (:id, 'vm', 'p', 'u', "
                    "'f', '{}', '{}', :tags, :f, 'nova', 'vm', '', '', 'r', 0, :f, 'active', "
                    "1, 'active', 1, 1, :now, :now, :f, 1)"
                ),
                {"id": server_id, "tags": tags, "f": False, "now": now},
            )
    migrate.upgrade(db, "0025")
    assert migrate.status(db).current == "0025"

    def tags() -> set[tuple[str, str]]:
        with db.session() as s:
            return {(r.instance_id, r.tag) for r in s.scalars(sa.select(InstanceTag))}

    assert tags() == {("i1", "web"), ("i1", "db")}
    with db.session() as s:
        s.add_all([InstanceTag(instance_id="i2", tag=t) for t in ("Web", "web", "wéb")])
    assert tags() == {("i1", "web"), ("i1", "db"), ("i2", "Web"), ("i2", "web"), ("i2", "wéb")}
    try:
        with db.session() as s:
            s.add(InstanceTag(instance_id="i2", tag="web"))
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("one tag twice on one server")
    try:
        with db.session() as s:
            s.add(InstanceTag(instance_id="no-such-server", tag="web"))
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("a tag on a server that does not exist")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM instances WHERE id = 'i1'"))
    assert tags() == {("i2", "Web"), ("i2", "web"), ("i2", "wéb")}


def test_0026_console_endpoints_gain_the_display(db_factory):
    """0026 adds each guest's display next to its console endpoints (expand: old code never
    reads it); endpoints reported before it say NULL (an agent older than displays)."""
    db = db_factory.create()
    migrate.upgrade(db, "0025")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO console_endpoints (instance_id, host_id, address, vnc_port, "
                "updated_at) VALUES ('server-1', 'h', '127.0.0.1', 5900, :when)"
            ),
            {"when": dt.datetime(2026, 12, 7, 8, 0)},
        )
    migrate.upgrade(db)
    assert migrate.status(db).current >= "0026"
    from kumo.db.console_tables import ConsoleEndpoint

    with db.session() as s:
        old = s.get(ConsoleEndpoint, "server-1")
        assert old is not None and (old.vnc_port, old.display) == (5900, None)
        s.add(ConsoleEndpoint(instance_id="server-2", host_id="h", address="::1", display="vga"))
    with db.session() as s:
        new = s.get(ConsoleEndpoint, "server-2")
        assert new is not None and new.display == "vga"


def test_0027_host_failure_tables_are_added_next_to_hosts(db_factory):
    """0027 adds the host failure state machine's tables (expand: old code never reads
    them); a host registered before it keeps its row, and its failures go with it."""
    db = db_factory.create()
    migrate.upgrade(db, "0026")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hosts (id, name, enabled, forced_down, agent_version, "
                "agent_api_versions, capabilities, inventory, registered_at, version) VALUES "
                "('h1', 'old-host', :t, :f, '', '[]', '{}', '{}', :when, 1)"
            ),
            {"t": True, "f": False, "when": dt.datetime(2026, 12, 7, 8, 0)},
        )
    migrate.upgrade(db)
    assert migrate.status(db).current >= "0027"
    from kumo.db.ha_tables import HostFailure, HostFailureEvent

    with db.session() as s:
        assert s.get(m.Host, "h1").name == "old-host"
        s.add(HostFailure(id="f1", host_id="h1", state="suspected", servers={"a": "b"}))
        s.flush()
        s.add(HostFailureEvent(failure_id="f1", host_id="h1", step="suspected", message="x"))
    with db.session() as s:
        assert s.get(HostFailure, "f1").servers == {"a": "b"}
        assert s.query(HostFailureEvent).count() == 1

"""Every server action through the compute API, with the agents of two fake hosts doing
the work, on every database backend: each leaves an instance action (its name, the id of
the request that asked, who asked, when it began and ended, its message) and Nova's events
for it (name, start, finish, result), as ``openstack server event show`` displays them.
The event names are spelled out here, from Nova's compute manager and conductor, rather
than read from kumo's table, so a wrong entry there fails."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_evacuate_migrate import Evac
from test_live_migration import AUTO, v
from test_server_networks import _network
from test_servers import SERVERS
from test_volume_agent import V3, Storage

from kumo.api.compute import action_event_views
from kumo.api.compute.microversion import MAX_VERSION
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.action_events import InstanceActionEvent
from kumo.drivers.hypervisor import fake as fake_driver
from kumo.drivers.hypervisor.base import HypervisorError

RESIZE_EVENTS = (
    "conductor_migrate_server",
    "cold_migrate",
    "compute_prep_resize",
    "compute_resize_instance",
    "compute_finish_resize",
)
LIVE_EVENTS = (
    "conductor_live_migrate_instance",
    "compute_check_can_live_migrate_destination",
    "compute_check_can_live_migrate_source",
    "compute_pre_live_migration",
    "compute_live_migration",
    "compute_post_live_migration_at_destination",
)
ROUNDS = 4  # agent passes that bring any of these actions to its end


class World(Evac):
    """Two hosts (the second also serving file volumes), a project with a network, and a
    member of it whose ACTIVE server the actions are asked of."""

    def __init__(self, cloud: Any, tmp_path: Path) -> None:
        super().__init__(cloud, tmp_path)
        self.project = cloud.project("events-p")
        self.user, token = cloud.member("events-u", self.project["id"])
        self.member = cloud.h(token)
        self.net = _network(self, self.member, "events-net", "10.30.0.0/24")
        self.server_id = ""
        self.storage: Storage | None = None

    def boot(self) -> Any:
        resp = self.create(self.member, networks=[{"uuid": self.net}])
        assert resp.status_code == 202, resp.text
        self.server_id = resp.json()["server"]["id"]
        return resp

    def settle(self, server_id: str | None = None) -> dict[str, Any]:
        for _ in range(ROUNDS):
            self.converge()
            if self.storage is not None:
                self.storage.loop.sync_once()
        return {}

    def ask(self, body: dict[str, Any], admin: bool = False, version: str = "2.1") -> Any:
        headers = {**(self.cloud.admin if admin else self.member), **v(version)}
        resp = self.action(self.server_id, headers, body)
        assert resp.status_code in (200, 202, 204), resp.text
        return resp

    def prepare(self, body: dict[str, Any], admin: bool = False, version: str = "2.1") -> None:
        self.ask(body, admin, version)
        self.settle()

    def host_of(self) -> str:
        with self.db.session() as session:
            return str(session.get(m.Instance, self.server_id).host_id)

    def other(self, host_id: str) -> str:
        return self.host2 if host_id == self.host_id else self.host_id


Step = Callable[[World], Any]  # does the action (after what it needs), returns its response


@dataclass(frozen=True)
class Case:
    action: str
    events: tuple[str, ...]
    run: Step
    admin: bool = False  # asked by an admin (the action's user and project are theirs)
    message: str | None = None  # how the action's message begins (None: it has none)


def _live_running(w: World, mp: pytest.MonkeyPatch) -> str:
    """A live migration that runs until told: its id."""
    mp.setattr(fake_driver, "MIGRATION_STEPS", None)
    assert w.live(w.server_id, AUTO).status_code == 202
    w.converge()
    return str(w.migration(w.server_id).id)


def _force_complete(w: World, mp: pytest.MonkeyPatch) -> Any:
    mid = _live_running(w, mp)
    resp = w.client.post(
        f"{SERVERS}/{w.server_id}/migrations/{mid}/action",
        json={"force_complete": None},
        headers={**w.cloud.admin, **v("2.22")},
    )
    assert resp.status_code == 202, resp.text
    mp.setattr(fake_driver, "MIGRATION_STEPS", 2)
    w.settle()
    return resp


def _abort(w: World, mp: pytest.MonkeyPatch) -> Any:
    mid = _live_running(w, mp)
    resp = w.client.delete(
        f"{SERVERS}/{w.server_id}/migrations/{mid}", headers={**w.cloud.admin, **v("2.24")}
    )
    assert resp.status_code == 202, resp.text
    w.settle()
    return resp


def _evacuate(w: World) -> Any:
    source = w.host_of()
    dest = w.other(source)
    w.force_down(source)
    resp = w.evacuate(w.server_id, {}, headers=w.cloud.admin)
    assert resp.status_code == 200, resp.text
    w.only(dest)
    return resp


def _interface(w: World) -> Any:
    resp = w.client.post(
        f"{SERVERS}/{w.server_id}/os-interface",
        json={"interfaceAttachment": {"net_id": w.net}},
        headers=w.member,
    )
    assert resp.status_code == 200, resp.text
    w.settle()
    return resp


def _detach_interface(w: World) -> Any:
    port = _interface(w).json()["interfaceAttachment"]["port_id"]
    resp = w.client.delete(f"{SERVERS}/{w.server_id}/os-interface/{port}", headers=w.member)
    assert resp.status_code == 202, resp.text
    w.settle()
    return resp


def _fixed_ip(w: World) -> str:
    resp = w.client.get(f"{SERVERS}/{w.server_id}/ips", headers=w.member)
    return str(next(iter(resp.json()["addresses"].values()))[0]["addr"])


def _volume(w: World, tmp_path: Path) -> str:
    w.storage = Storage(w, tmp_path)  # this host now serves file volumes too
    volume = w.storage.create(w.member)
    w.settle()
    return str(volume["id"])


def _attach(w: World, tmp_path: Path) -> Any:
    vid = _volume(w, tmp_path)
    resp = w.client.post(
        f"{SERVERS}/{w.server_id}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vid}},
        headers=w.member,
    )
    assert resp.status_code == 200, resp.text
    w.settle()
    assert w.client.get(f"{V3}/volumes/{vid}", headers=w.member).json()["volume"]["status"] == (
        "in-use"
    )
    return resp


def _detach(w: World, tmp_path: Path) -> Any:
    vid = _attach(w, tmp_path).json()["volumeAttachment"]["volumeId"]
    resp = w.client.delete(f"{SERVERS}/{w.server_id}/os-volume_attachments/{vid}", headers=w.member)
    assert resp.status_code == 202, resp.text
    w.settle()
    return resp


def _then(*steps: Callable[[World], Any]) -> Step:
    """The steps in turn; the response of the first that answers a request."""

    def run(w: World) -> Any:
        result = None
        for step in steps:
            answer = step(w)
            if result is None or hasattr(answer, "headers"):
                result = answer if hasattr(answer, "headers") else result
        return result

    return run


def _act(body: dict[str, Any], admin: bool = False, version: str = "2.1") -> Step:
    def run(w: World) -> Any:
        resp = w.ask(body, admin, version)
        w.settle()
        return resp

    return run


def _first(body: dict[str, Any], admin: bool = False) -> Step:
    return lambda w: w.prepare(body, admin)


def _delete(w: World) -> Any:
    resp = w.client.delete(f"{SERVERS}/{w.server_id}", headers=w.member)
    assert resp.status_code == 204, resp.text
    w.settle()
    return resp


CASES: dict[str, Case] = {
    "create": Case(
        "create", ("compute__do_build_and_run_instance",), _then(World.boot, World.settle)
    ),
    "delete": Case("delete", ("compute_terminate_instance",), _delete),
    "forceDelete": Case("delete", ("compute_terminate_instance",), _act({"forceDelete": None})),
    "os-stop": Case("stop", ("compute_stop_instance",), _act({"os-stop": None})),
    "os-start": Case(
        "start",
        ("compute_start_instance",),
        _then(_first({"os-stop": None}), _act({"os-start": None})),
    ),
    "reboot": Case("reboot", ("compute_reboot_instance",), _act({"reboot": {"type": "SOFT"}})),
    "pause": Case("pause", ("compute_pause_instance",), _act({"pause": None})),
    "unpause": Case(
        "unpause",
        ("compute_unpause_instance",),
        _then(_first({"pause": None}), _act({"unpause": None})),
    ),
    "suspend": Case("suspend", ("compute_suspend_instance",), _act({"suspend": None})),
    "resume": Case(
        "resume",
        ("compute_resume_instance",),
        _then(_first({"suspend": None}), _act({"resume": None})),
    ),
    "lock": Case("lock", (), _act({"lock": None})),
    "unlock": Case("unlock", (), _then(_first({"lock": None}), _act({"unlock": None}))),
    "rebuild": Case(
        "rebuild",
        ("rebuild_server", "compute_rebuild_instance"),
        lambda w: _act({"rebuild": {"imageRef": w.image_id}})(w),
    ),
    "shelve": Case("shelve", ("compute_shelve_instance",), _act({"shelve": None})),
    "unshelve": Case(
        "unshelve",
        ("get_image_info", "schedule_instances", "compute_unshelve_instance"),
        _then(_first({"shelve": None}), _act({"unshelve": None})),
    ),
    "resize": Case("resize", RESIZE_EVENTS, _act({"resize": {"flavorRef": "2"}})),
    "confirmResize": Case(
        "confirmResize",
        ("compute_confirm_resize",),
        _then(_first({"resize": {"flavorRef": "2"}}), _act({"confirmResize": None})),
    ),
    "revertResize": Case(
        "revertResize",
        ("compute_revert_resize", "compute_finish_revert_resize"),
        _then(_first({"resize": {"flavorRef": "2"}}), _act({"revertResize": None})),
    ),
    "confirmResize-moved": Case(
        "confirmResize",
        ("compute_confirm_resize",),
        _then(_first({"migrate": None}, admin=True), _act({"confirmResize": None})),
    ),
    "revertResize-moved": Case(
        "revertResize",
        ("compute_revert_resize", "compute_finish_revert_resize"),
        _then(_first({"migrate": None}, admin=True), _act({"revertResize": None})),
    ),
    "migrate": Case("migrate", RESIZE_EVENTS, _act({"migrate": None}, admin=True), admin=True),
    "createImage": Case(
        "createImage", ("compute_snapshot_instance",), _act({"createImage": {"name": "snap"}})
    ),
    "createBackup": Case(
        "createBackup",
        ("compute_backup_instance",),
        _act({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}),
    ),
    "rescue": Case(  # kumo keeps the rescue image in the message, for the agent
        "rescue", ("compute_rescue_instance",), _act({"rescue": None}), message="Rescue image"
    ),
    "unrescue": Case(
        "unrescue",
        ("compute_unrescue_instance",),
        _then(_first({"rescue": None}), _act({"unrescue": None})),
    ),
    "trigger_crash_dump": Case(
        "trigger_crash_dump",
        ("compute_trigger_crash_dump",),
        _act({"trigger_crash_dump": None}, version="2.17"),
    ),
    "os-migrateLive": Case(
        "live-migration",
        LIVE_EVENTS,
        _act({"os-migrateLive": AUTO}, admin=True, version="2.25"),
        admin=True,
    ),
    "evacuate": Case(
        "evacuate", ("rebuild_server", "compute_rebuild_instance"), _evacuate, admin=True
    ),
    "addSecurityGroup": Case(
        "addSecurityGroup", (), _act({"addSecurityGroup": {"name": "default"}})
    ),
    "removeSecurityGroup": Case(
        "removeSecurityGroup",
        (),
        _then(
            _first({"addSecurityGroup": {"name": "default"}}),
            _act({"removeSecurityGroup": {"name": "default"}}),
        ),
    ),
    "addFixedIp": Case(
        "addFixedIp",
        (),
        lambda w: _act({"addFixedIp": {"networkId": w.net}}, admin=True)(w),
        admin=True,
    ),
    "removeFixedIp": Case(
        "removeFixedIp",
        (),
        lambda w: _act({"removeFixedIp": {"address": _fixed_ip(w)}}, admin=True)(w),
        admin=True,
    ),
    "attach_interface": Case("attach_interface", ("compute_attach_interface",), _interface),
    "detach_interface": Case("detach_interface", ("compute_detach_interface",), _detach_interface),
}


@pytest.mark.skipif(not MAX_VERSION.at_least("2.25"), reason="moves need 2.25")
@pytest.mark.parametrize(
    "key",
    [
        *CASES,
        "live_migration_force_complete",
        "live_migration_abort",
        pytest.param(
            "attach_volume",
            marks=pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img"),
        ),
        pytest.param(
            "detach_volume",
            marks=pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img"),
        ),
    ],
)
def test_every_action_records_its_action_and_events(
    cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    w = World(cloud, tmp_path)
    if key != "create":
        w.boot()
        w.settle()
    special: dict[str, Case] = {
        "live_migration_force_complete": Case(
            "live_migration_force_complete",
            ("compute_live_migration_force_complete",),
            lambda w: _force_complete(w, monkeypatch),
            admin=True,
        ),
        "live_migration_abort": Case(
            "live_migration_cancel",  # Nova's name for the action (its event says abort)
            ("compute_live_migration_abort",),
            lambda w: _abort(w, monkeypatch),
            admin=True,
        ),
        "attach_volume": Case(
            "attach_volume", ("compute_attach_volume",), lambda w: _attach(w, tmp_path)
        ),
        "detach_volume": Case(
            "detach_volume", ("compute_detach_volume",), lambda w: _detach(w, tmp_path)
        ),
    }
    case = special.get(key) or CASES[key]
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    resp = case.run(w)
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    request_id = resp.headers["X-OpenStack-Request-ID"]

    # The record, as the owner sees it (2.21: a deleted server's too), with no events
    # before 2.51 (Nova's events policy is admin's).
    shown = w.client.get(
        f"{SERVERS}/{w.server_id}/os-instance-actions/{request_id}",
        headers={**w.member, **v("2.21")},
    )
    assert shown.status_code == 200, shown.text
    action = shown.json()["instanceAction"]
    asker_user, asker_project = w.user["id"], w.project["id"]
    if case.admin:
        token = w.client.get(
            "/identity/v3/auth/tokens",
            headers={**w.cloud.admin, "X-Subject-Token": w.cloud.admin_token},
        ).json()["token"]
        asker_user, asker_project = token["user"]["id"], token["project"]["id"]
    assert (action["action"], action["request_id"], action["instance_uuid"]) == (
        case.action,
        request_id,
        w.server_id,
    )
    assert (action["user_id"], action["project_id"]) == (asker_user, asker_project)
    if case.message is None:
        assert action["message"] is None
    else:
        assert action["message"].startswith(case.message), action["message"]
    assert "events" not in action
    start = dt.datetime.fromisoformat(action["start_time"])
    assert before - dt.timedelta(seconds=1) <= start <= after

    # Its events, as an admin sees them; and the action ended with them.
    as_admin = w.client.get(
        f"{SERVERS}/{w.server_id}/os-instance-actions/{request_id}",
        headers={**w.cloud.admin, **v("2.21")},
    ).json()["instanceAction"]
    events = as_admin["events"]
    assert sorted(e["event"] for e in events) == sorted(case.events)
    for event in events:
        assert (event["result"], event["traceback"]) == ("Success", None), event
        assert event["finish_time"] is not None, event
        started = dt.datetime.fromisoformat(event["start_time"])
        finished = dt.datetime.fromisoformat(event["finish_time"])
        assert start <= started <= finished <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with w.db.session() as session:
        row = session.query(m.InstanceAction).filter_by(request_id=request_id).one()
        assert row.finish_time is not None and row.start_time <= row.finish_time
        hosts = {e.event: e.host for e in session.query(InstanceActionEvent).all()}
    for name in case.events:
        assert hosts[name], name  # every event says where it ran


def test_a_failure_on_the_host_is_an_error_event_with_its_traceback_for_admins(
    cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(cloud, tmp_path)
    w.boot()
    w.settle()

    def broken(uuid: str, target: Path) -> None:
        raise HypervisorError("disk on fire")

    monkeypatch.setattr(w.loops[w.host_of()].driver, "snapshot", broken)
    request_id = w.ask({"createImage": {"name": "doomed"}}).headers["X-OpenStack-Request-ID"]
    w.settle()
    url = f"{SERVERS}/{w.server_id}/os-instance-actions/{request_id}"
    action = w.client.get(url, headers=w.cloud.admin).json()["instanceAction"]
    assert action["message"].startswith("Error") and "disk on fire" in action["message"]
    (event,) = action["events"]
    assert (event["event"], event["result"]) == ("compute_snapshot_instance", "Error")
    assert event["finish_time"] is not None
    assert "disk on fire" in event["traceback"]
    assert "events" not in w.client.get(url, headers=w.member).json()["instanceAction"]

    # Past 2.51 (rendered at each microversion Nova has; the cloud serves up to
    # MAX_VERSION): the owner sees events without the traceback, hostId from 2.62 but
    # not host, and details (2.84) only as admin, as Nova's default policy.
    with w.db.session() as session:
        rows = list(session.query(InstanceActionEvent))
        host = rows[0].host
        member = Context(w.user["id"], "default", frozenset({"member"}), w.project["id"])
        admin = Context("a", "default", frozenset({"admin"}), "admin-p")
        views = {
            (who, ver): action_event_views.event_views(
                rows, w.project["id"], ctx, APIVersion.parse(ver)
            )
            for who, ctx in (("member", member), ("admin", admin))
            for ver in ("2.51", "2.62", "2.84")
        }
    assert set(views["member", "2.51"][0]) == {"event", "start_time", "finish_time", "result"}
    assert set(views["member", "2.84"][0]) == {
        "event",
        "start_time",
        "finish_time",
        "result",
        "hostId",
    }
    assert set(views["admin", "2.62"][0]) == {
        "event",
        "start_time",
        "finish_time",
        "result",
        "traceback",
        "host",
        "hostId",
    }
    admin_84 = views["admin", "2.84"][0]
    assert (admin_84["host"], admin_84["details"]) == (host, "disk on fire")
    assert admin_84["hostId"] == views["member", "2.62"][0]["hostId"] != ""


def test_a_task_that_ends_in_error_is_an_error_event(
    cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop the host cannot do leaves the server in ERROR with a fault: the stop's event
    is an Error whose traceback is the host's error, and the action says Error (Nova)."""
    w = World(cloud, tmp_path)
    w.boot()
    w.settle()

    def stuck(uuid: str, timeout: float = 30.0) -> Any:
        raise HypervisorError("the power button is stuck")

    monkeypatch.setattr(w.loops[w.host_of()].driver, "power_off", stuck)
    request_id = w.ask({"os-stop": None}).headers["X-OpenStack-Request-ID"]
    w.settle()
    assert w.show(w.server_id, w.member)["status"] == "ERROR"
    url = f"{SERVERS}/{w.server_id}/os-instance-actions/{request_id}"
    action = w.client.get(url, headers=w.cloud.admin).json()["instanceAction"]
    assert action["message"] == "Error"
    (event,) = action["events"]
    assert (event["event"], event["result"]) == ("compute_stop_instance", "Error")
    assert event["finish_time"] is not None
    assert "the power button is stuck" in event["traceback"]


def test_a_server_deleted_before_its_build_ended_records_the_build_as_failed(
    cloud: Any, tmp_path: Path
) -> None:
    """Nova's build ends with "Instance disappeared during build." when the server is
    deleted first: the create's events are Errors, the delete's a Success."""
    w = World(cloud, tmp_path)
    w.boot()  # no agent pass: the build has not ended
    assert w.client.delete(f"{SERVERS}/{w.server_id}", headers=w.member).status_code == 204
    w.settle()
    with w.db.session() as session:
        actions = {
            a.action: a for a in session.query(m.InstanceAction).filter_by(instance_id=w.server_id)
        }
        assert set(actions) == {"create", "delete"}
        create, delete = actions["create"], actions["delete"]
        assert create.finish_time is not None and create.message == "Error"
        assert delete.finish_time is not None and delete.message is None
        events = {e.action_id: e for e in session.query(InstanceActionEvent)}
        built = events[create.id]
        assert (built.event, built.result) == ("compute__do_build_and_run_instance", "Error")
        assert "Instance disappeared during build." in (built.traceback or "")
        assert events[delete.id].result == "Success"

"""The usage ledger on every database backend: the intervals a server's life writes (through
the API, a fake host carrying the work out, the ledger's clock driven by the test), what
survives its deletion, /kumo/v1/usage (admin only, periods, prices), `kumo usage report`,
and `kumo db check` finding and repairing a ledger out of step in both directions."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from test_servers import SERVERS, Compute
from typer.testing import CliRunner

from kumo.cli.main import app as kumo_cli
from kumo.config import UsageConfig, UsagePrices
from kumo.core import usage_clock
from kumo.core.checks import run_checks
from kumo.db import models as m
from kumo.db.usage_tables import UsageInterval

import netapi
from apihelpers import assert_error, make_client

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
H = dt.timedelta(hours=1)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        monkeypatch.setattr(usage_clock, "clock", lambda: self.now)

    def at(self, when: dt.datetime) -> None:
        self.now = when


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    c = Compute(cloud, tmp_path)
    c.loop.scratch_dir = tmp_path / "snapshots"
    return c


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def intervals(compute: Compute, resource_id: str) -> list[UsageInterval]:
    with compute.db.session() as session:
        rows = list(
            session.scalars(
                select(UsageInterval)
                .where(UsageInterval.resource_id == resource_id)
                .order_by(UsageInterval.started_at, UsageInterval.id)
            )
        )
        session.expunge_all()
    # A change and its completion in one instant leave a zero-length row: no usage.
    return [r for r in rows if r.ended_at != r.started_at]


def span(r: UsageInterval) -> tuple[Any, ...]:
    return (r.state, r.flavor_name, r.vcpus, r.started_at, r.ended_at)


def act(compute: Compute, server_id: str, body: dict[str, Any]) -> None:
    resp = compute.action(server_id, compute.cloud.admin, body)
    assert resp.status_code in (202, 204), resp.text
    compute.converge()


def test_a_servers_life_in_the_ledger(compute: Compute, clock: Clock) -> None:
    cloud = compute.cloud
    project = cloud.project("led-p")
    user, token = cloud.member("led-u", project["id"])
    headers = cloud.h(token)
    resp = compute.create(headers)
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    assert intervals(compute, server_id) == []  # building is not billed
    compute.converge()  # ACTIVE at T0
    clock.at(T0 + 2 * H)
    act(compute, server_id, {"os-stop": None})
    clock.at(T0 + 3 * H)
    act(compute, server_id, {"resize": {"flavorRef": "2"}})
    assert compute.show(server_id, headers)["status"] == "VERIFY_RESIZE"
    clock.at(T0 + 4 * H)  # confirmed: the new flavor from now
    act(compute, server_id, {"confirmResize": None})
    clock.at(T0 + 5 * H)
    act(compute, server_id, {"os-start": None})
    clock.at(T0 + 6 * H)
    act(compute, server_id, {"shelve": None})
    assert compute.show(server_id, headers)["status"] == "SHELVED_OFFLOADED"
    with compute.db.session() as session:
        image_id = session.get(m.Instance, server_id).shelved_image_id
    clock.at(T0 + 8 * H)
    act(compute, server_id, {"unshelve": None})
    clock.at(T0 + 9 * H)
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=headers).status_code == 204
    compute.converge()

    rows = intervals(compute, server_id)
    assert [span(r) for r in rows] == [
        ("running", "m1.tiny", 1, T0, T0 + 2 * H),
        ("stopped", "m1.tiny", 1, T0 + 2 * H, T0 + 4 * H),  # VERIFY_RESIZE bills the old one
        ("stopped", "m1.small", 1, T0 + 4 * H, T0 + 5 * H),
        ("running", "m1.small", 1, T0 + 5 * H, T0 + 6 * H),
        ("shelved", "m1.small", 1, T0 + 6 * H, T0 + 8 * H),
        ("running", "m1.small", 1, T0 + 8 * H, T0 + 9 * H),
    ]
    assert {(r.project_id, r.user_id) for r in rows} == {(project["id"], user["id"])}
    assert rows[0].host_id == compute.host_id and rows[4].host_id is None
    assert (rows[2].memory_mb, rows[2].disk_gb) == (2048, 20)
    (image,) = intervals(compute, image_id)
    assert (image.resource_type, image.project_id, image.started_at, image.ended_at) == (
        "image",
        project["id"],
        T0 + 6 * H,
        T0 + 8 * H,
    )
    # The server is gone; its history is not, and the ledger agrees with what is live.
    assert compute.client.get(f"{SERVERS}/{server_id}", headers=headers).status_code == 404
    with compute.db.session() as session:
        assert run_checks(session) == []

    # The API sums it: stopped 2 h of m1.tiny + 1 h of m1.small, running 2 h + 2 h.
    resp = cloud.client.get(
        "/kumo/v1/usage",
        params={"start": "2026-03-01T00:00:00", "end": "2026-03-02T00:00:00Z"},
        headers=cloud.admin,
    )
    assert resp.status_code == 200, resp.text
    (mine,) = [p for p in resp.json()["usage"]["projects"] if p["project_id"] == project["id"]]
    assert mine["running_server_hours"] == pytest.approx(4.0, abs=1e-6)
    assert mine["running_ram_gib_hours"] == pytest.approx((2 * 128 + 2 * 2048) / 1024, abs=1e-6)
    assert mine["stopped_disk_gib_hours"] == pytest.approx(2 * 1 + 1 * 20, abs=1e-6)
    assert mine["shelved_server_hours"] == pytest.approx(2.0, abs=1e-6)
    assert mine["image_gib_hours"] == pytest.approx(2.0 * image.size_gb, abs=1e-6)
    assert "cost" not in mine  # no prices configured
    # Clipped to a window: 1 h of the first running interval.
    resp = cloud.client.get(
        "/kumo/v1/usage",
        params={
            "start": (T0 + H).isoformat(),
            "end": (T0 + 2 * H).isoformat(),
            "project_id": project["id"],
        },
        headers=cloud.admin,
    )
    (only,) = resp.json()["usage"]["projects"]
    assert only["running_vcpu_hours"] == pytest.approx(1.0, abs=1e-6)
    assert only["stopped_vcpu_hours"] == 0.0


def test_usage_api_is_admin_only_and_checks_the_period(cloud: Any, clock: Clock) -> None:
    _, headers = netapi.tenant(cloud, "led-api")
    ok = {"start": "2026-02-01T00:00:00", "end": "2026-03-01T00:00:00"}
    assert_error(cloud.client.get("/kumo/v1/usage", params=ok, headers=headers), 403)
    for params in (
        {},
        {"start": "2026-02-01T00:00:00"},
        {"start": "yesterday", "end": "2026-03-01T00:00:00"},
        {"start": "2026-03-01T00:00:00", "end": "2026-02-01T00:00:00"},
        {"start": "2026-03-01T00:00:00", "end": "2026-03-01T00:00:00"},
    ):
        err = assert_error(
            cloud.client.get("/kumo/v1/usage", params=params, headers=cloud.admin), 400
        )
        assert "start" in err["message"] or "datetime" in err["message"], err
    resp = cloud.client.get("/kumo/v1/usage", params=ok, headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["projects"] == []
    assert resp.json()["usage"]["total"]["floating_ip_hours"] == 0.0


def test_prices_give_each_project_its_cost(cloud: Any, clock: Clock) -> None:
    admin = cloud.admin
    public = netapi.network(cloud, admin, name="public", **{"router:external": True})
    netapi.subnet(cloud, admin, public["id"], "203.0.113.0/24")
    project_id, headers = netapi.tenant(cloud, "led-price")
    body = {"floatingip": {"floating_network_id": public["id"]}}
    fip = cloud.client.post(f"{netapi.V2}/floatingips", json=body, headers=headers).json()
    clock.at(T0 + 10 * H)
    resp = cloud.client.delete(
        f"{netapi.V2}/floatingips/{fip['floatingip']['id']}", headers=headers
    )
    assert resp.status_code == 204
    prices = UsagePrices(floating_ip_hour=0.25, vcpu_hour=1.0)
    config = cloud.config.model_copy(update={"usage": UsageConfig(prices=prices)})
    with make_client(config, cloud.db) as priced:
        resp = priced.get(
            "/kumo/v1/usage",
            params={"start": T0.isoformat(), "end": (T0 + 24 * H).isoformat()},
            headers=admin,
        )
    assert resp.status_code == 200, resp.text
    usage = resp.json()["usage"]
    (mine,) = usage["projects"]
    assert (mine["project_id"], mine["floating_ip_hours"]) == (project_id, 10.0)
    assert mine["cost"] == pytest.approx(2.5) and usage["total"]["cost"] == pytest.approx(2.5)


def test_kumo_usage_report_table_json_csv(cloud: Any, clock: Clock, tmp_path: Path) -> None:
    admin = cloud.admin
    public = netapi.network(cloud, admin, name="public", **{"router:external": True})
    netapi.subnet(cloud, admin, public["id"], "203.0.113.0/24")
    project_id, headers = netapi.tenant(cloud, "led-cli")
    body = {"floatingip": {"floating_network_id": public["id"]}}
    assert (
        cloud.client.post(f"{netapi.V2}/floatingips", json=body, headers=headers).status_code == 201
    )
    clock.at(T0 + 3 * H)
    config = tmp_path / "kumo.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "cli"}"\n[database]\nurl = "{cloud.db.url}"\n'
        "[usage.prices]\nfloating_ip_hour = 2.0\n"
    )

    def run(*args: str) -> Any:
        period = ["--start", T0.isoformat(), "--end", "2026-03-02"]
        return CliRunner().invoke(
            kumo_cli, ["--config", str(config), "usage", "report", *period, *args], env={}
        )

    out = run("--format", "json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    (mine,) = report["projects"]
    assert (mine["project_id"], mine["floating_ip_hours"], mine["cost"]) == (project_id, 3.0, 6.0)
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv").stdout)))
    assert [r["project_id"] for r in rows] == [project_id, "total"]
    assert float(rows[0]["floating_ip_hours"]) == 3.0 and float(rows[1]["cost"]) == 6.0
    table = run("--project", project_id)
    assert table.exit_code == 0, table.output
    assert "led-cli" in table.stdout and "floating IP-h" in table.stdout
    assert "3.00" in table.stdout and "6.00" in table.stdout
    assert run("--project", str(uuid.uuid4()), "--format", "json").exit_code == 0
    bad = CliRunner().invoke(
        kumo_cli,
        [
            "--config",
            str(config),
            "usage",
            "report",
            "--start",
            "2026-03-02",
            "--end",
            "2026-03-01",
        ],
        env={},
    )
    assert bad.exit_code == 2 and "start must be before the end" in bad.output


def test_db_check_finds_and_repairs_the_ledger_both_ways(compute: Compute, clock: Clock) -> None:
    server_id = compute.create(compute.cloud.admin).json()["server"]["id"]
    compute.converge()

    def check(repair: bool = False) -> list[str]:
        with compute.db.session() as session:
            return [p.detail for p in run_checks(session, repair=repair) if "usage" in p.check]

    assert check() == []
    # A live server that lost its open interval: found, and one is opened from now.
    with compute.db.engine.begin() as conn:
        conn.execute(
            update(UsageInterval)
            .where(UsageInterval.resource_id == server_id)
            .values(ended_at=T0 + H)
        )
    assert check() == [f"server {server_id} has no open usage interval"]
    clock.at(T0 + 2 * H)
    assert len(check(repair=True)) == 1 and check() == []
    assert [(r.started_at, r.ended_at) for r in intervals(compute, server_id)] == [
        (T0, T0 + H),
        (T0 + 2 * H, None),
    ]
    # An open interval of nothing live (and one of the wrong shape): closed, kept.
    ghost = str(uuid.uuid4())
    with compute.db.session() as session:
        session.add(
            UsageInterval(
                resource_type="volume", resource_id=ghost, project_id="p", size_gb=5, started_at=T0
            )
        )
    with compute.db.engine.begin() as conn:
        conn.execute(
            update(UsageInterval)
            .where(UsageInterval.resource_id == server_id, UsageInterval.ended_at.is_(None))
            .values(vcpus=64)
        )
    found = check()
    assert f"volume {ghost} is not billable now but has 1 open usage interval(s)" in found
    assert any(server_id in f and "not one of its current shape" in f for f in found), found
    clock.at(T0 + 3 * H)
    check(repair=True)
    assert check() == []
    assert [(r.started_at, r.ended_at) for r in intervals(compute, ghost)] == [(T0, T0 + 3 * H)]
    last = intervals(compute, server_id)[-1]
    assert (last.vcpus, last.started_at, last.ended_at) == (1, T0 + 3 * H, None)

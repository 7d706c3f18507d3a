"""The usage page: Nova's os-simple-tenant-usage for everyone, kumo's usage ledger for
admins, over a chosen period, in process."""

from __future__ import annotations

import re
from typing import Any

from visitor import Visitor, create_server

USAGE = "/compute/v2.1/os-simple-tenant-usage"


def _period(html: str) -> dict[str, str]:
    found = re.findall(r'<time datetime="([^"]+)">', html)
    assert len(found) == 2, html
    return {"start": found[0], "end": found[1]}


def test_admin_sees_novas_usage_and_the_ledger(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    create_server(cloud, cloud.admin, image_id, "counted")
    page = admin_visitor.http.get("/project/usage?period=month")
    assert page.status_code == 200, page.text
    period = _period(page.text)
    project = cloud.client.get(
        "/identity/v3/auth/tokens", headers={**cloud.admin, "X-Subject-Token": cloud.admin_token}
    ).json()["token"]["project"]["id"]
    nova = cloud.client.get(f"{USAGE}/{project}", params=period, headers=cloud.admin).json()
    hours = (nova["tenant_usage"] or {}).get("total_hours", 0)
    assert f"<dt>Server hours</dt><dd>{hours:.2f}</dd>" in page.text
    assert "All projects (kumo usage report)" in page.text
    ledger = cloud.client.get("/kumo/v1/usage", params=period, headers=cloud.admin)
    assert ledger.status_code == 200
    assert '<option value="month" selected>' in page.text
    assert 'aria-current="page">Usage</a>' in page.text


def test_a_member_sees_novas_usage_only_and_bad_periods_are_400(
    visitor: Visitor, cloud: Any
) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    page = visitor.http.get("/project/usage")
    assert page.status_code == 200, page.text
    assert "This project (Nova's usage)" in page.text
    assert "All projects" not in page.text and 'role="alert"' not in page.text
    assert "Nothing used in this period." in page.text
    assert '<option value="week" selected>' in page.text
    assert visitor.http.get("/project/usage?period=forever").status_code == 400


def test_bars_scale_to_the_largest_value() -> None:
    from kumo.web.pages.usage import BAR_WIDTH, bars

    drawn = bars([("a", 2.0), ("b", 1.0), ("c", 0.0)])
    assert [b["width"] for b in drawn] == [BAR_WIDTH, BAR_WIDTH // 2, 0]
    assert [b["y"] for b in drawn] == [0, 28, 56]
    assert bars([("idle", 0.0)])[0]["width"] == 0

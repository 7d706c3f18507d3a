"""The launch wizard in process: three screens that keep their choices, the request it
shows is the one it sends, the quota preview refuses up front, Nova's refusal is shown in
its words, and the launched servers run on a fake-hypervisor host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from fakehost import SERVERS, Compute
from visitor import Visitor, form_csrf, row_names

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
LAUNCH = "/project/instances/launch"
NETWORKS = "/network/v2.0/networks"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _draft(html: str) -> str:
    found = re.search(r'name="draft" value="([^"]*)"', html)
    assert found, html[:3000]
    return found.group(1).replace("&#34;", '"').replace("&quot;", '"')


def _network(cloud: Any, name: str, cidr: str) -> str:
    made = cloud.client.post(NETWORKS, json={"network": {"name": name}}, headers=cloud.admin)
    assert made.status_code == 201, made.text
    net_id = str(made.json()["network"]["id"])
    subnet = {"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4}}
    resp = cloud.client.post("/network/v2.0/subnets", json=subnet, headers=cloud.admin)
    assert resp.status_code == 201, resp.text
    return net_id


def _through_review(
    v: Visitor, compute: Compute, name: str, count: int, net_id: str | None = None
) -> tuple[str, str]:
    """Screens 1 and 2 filled in; the review page and the CSRF token."""
    first = v.http.get(LAUNCH)
    assert first.status_code == 200, first.text
    assert 'aria-current="step">1. Source and flavor' in first.text
    csrf = form_csrf(first.text)
    screen1 = {
        "csrf_token": csrf,
        "draft": _draft(first.text),
        "from": "1",
        "source": "image",
        "image": compute.image_id,
        "flavor": "1",
        "name": name,
        "count": str(count),
    }
    second = v.http.post(LAUNCH + "/network", data=screen1)
    assert second.status_code == 200, second.text
    assert 'aria-current="step">2. Network and access' in second.text
    screen2: dict[str, Any] = {
        "csrf_token": csrf,
        "draft": _draft(second.text),
        "from": "2",
        "security_groups": "default",
    }
    if net_id:
        screen2["networks"] = net_id
    review = v.http.post(LAUNCH + "/review", data=screen2)
    assert review.status_code == 200, review.text
    return review.text, csrf


def _request_shown(review: str) -> dict[str, Any]:
    found = re.search(r'<pre class="request"[^>]*>(.*?)</pre>', review, re.S)
    assert found, review
    shown: dict[str, Any] = json.loads(found.group(1).replace("&#34;", '"'))
    return shown


def test_three_screens_launch_what_the_review_shows(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    net_id = _network(cloud, "private", "10.31.0.0/24")
    review, csrf = _through_review(admin_visitor, compute, "web", 2, net_id)
    shown = _request_shown(review)
    assert shown == {
        "server": {
            "name": "web",
            "flavorRef": "1",
            "imageRef": compute.image_id,
            "min_count": 2,
            "max_count": 2,
            "networks": [{"uuid": net_id}],
            "security_groups": [{"name": "default"}],
        }
    }
    # The quota preview: two instances, their vCPUs and RAM against Nova's limits.
    flavor = cloud.client.get("/compute/v2.1/flavors/1", headers=cloud.admin).json()["flavor"]
    assert re.search(r"<td>Instances</td><td>0</td><td>2</td><td>\d+</td>", review), review
    assert f"<td>vCPUs</td><td>0</td><td>{2 * flavor['vcpus']}</td>" in review
    assert f"<td>RAM (MB)</td><td>0</td><td>{2 * flavor['ram']}</td>" in review
    launched = admin_visitor.http.post(
        LAUNCH, data={"csrf_token": csrf, "draft": _draft(review), "from": "3"}
    )
    assert launched.status_code == 303, launched.text
    assert launched.headers["location"] == "/project/instances"
    compute.converge()
    rows = admin_visitor.http.get("/project/instances/rows?sort=name&dir=asc").text
    assert row_names(rows) == ["web-1", "web-2"]  # Nova's names for a count
    assert rows.count('<span class="status status-active">ACTIVE</span>') == 2
    assert "10.31.0." in rows


def test_back_keeps_every_choice(admin_visitor: Visitor, compute: Compute, cloud: Any) -> None:
    net_id = _network(cloud, "private", "10.32.0.0/24")
    review, csrf = _through_review(admin_visitor, compute, "keep-me", 3, net_id)
    back2 = admin_visitor.http.post(
        LAUNCH + "/network", data={"csrf_token": csrf, "draft": _draft(review), "from": "3"}
    )
    assert f'value="{net_id}" checked' in back2.text
    assert 'value="default" checked' in back2.text
    back1 = admin_visitor.http.post(
        LAUNCH + "/source",
        data={"csrf_token": csrf, "draft": _draft(back2.text), "from": "2", "networks": net_id},
    )
    assert 'value="keep-me"' in back1.text and 'value="3"' in back1.text
    assert f'<option value="{compute.image_id}" selected>' in back1.text


def test_screen_one_says_what_is_missing(admin_visitor: Visitor, compute: Compute) -> None:
    first = admin_visitor.http.get(LAUNCH).text
    csrf = form_csrf(first)
    base = {"csrf_token": csrf, "draft": "", "from": "1", "source": "image", "name": "x"}
    cases = (
        ({"image": compute.image_id}, "Choose a flavor."),
        ({"flavor": "1"}, "Choose an image."),
        ({"image": compute.image_id, "flavor": "1", "count": "0"}, "Count must be a whole"),
        ({"image": compute.image_id, "flavor": "1", "count": "lots"}, "Count must be a whole"),
        ({"image": compute.image_id, "flavor": "1", "name": " "}, "Give the instance a name."),
    )
    for extra, words in cases:
        page = admin_visitor.http.post(LAUNCH + "/network", data={**base, **extra})
        assert page.status_code == 400, (extra, page.text)
        assert f'<p class="alert" role="alert">{words}' in page.text
        assert 'aria-current="step">1.' in page.text


def test_over_quota_is_refused_up_front_and_by_nova_in_its_words(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    project = cloud.boot.admin_project_id
    resp = cloud.client.put(
        f"/compute/v2.1/os-quota-sets/{project}",
        json={"quota_set": {"instances": 1}},
        headers=cloud.admin,
    )
    assert resp.status_code == 200, resp.text
    review, csrf = _through_review(admin_visitor, compute, "many", 2)
    assert "would exceed the project&#39;s quota: Instances 0 + 2 &gt; 1" in review
    assert re.search(r"<button type=\"submit\" disabled>Launch</button>", review)
    # Posted anyway (the page was stale): Nova refuses, the review shows its words.
    page = admin_visitor.http.post(
        LAUNCH, data={"csrf_token": csrf, "draft": _draft(review), "from": "3"}
    )
    nova = cloud.client.post(
        SERVERS,
        json=_request_shown(review),
        headers={**cloud.admin, "OpenStack-API-Version": "compute latest"},
    )
    assert page.status_code == nova.status_code == 403, page.text
    words = str(escape(nova.json()["forbidden"]["message"]))
    assert f'<p class="alert" role="alert">{words}</p>' in page.text
    assert 'aria-current="step">3.' in page.text
    assert cloud.client.get(SERVERS, headers=cloud.admin).json()["servers"] == []


def test_launch_without_the_csrf_token_is_refused(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    review, _ = _through_review(admin_visitor, compute, "forged", 1)
    for path in (LAUNCH, LAUNCH + "/review", LAUNCH + "/network"):
        resp = admin_visitor.http.post(path, data={"draft": _draft(review), "from": "3"})
        assert resp.status_code == 403 and "CSRF" in resp.text
    assert cloud.client.get(SERVERS, headers=cloud.admin).json()["servers"] == []


def test_the_list_links_to_the_wizard(admin_visitor: Visitor) -> None:
    page = admin_visitor.http.get("/project/instances").text
    assert f'<a class="button" href="{LAUNCH}">Launch instances</a>' in page


def test_a_tampered_draft_is_a_page_not_a_500(admin_visitor: Visitor) -> None:
    csrf = form_csrf(admin_visitor.http.get(LAUNCH).text)
    for draft in ("not json", "[1, 2]", '{"count": "x", "networks": [1, {}], "name": 5}'):
        page = admin_visitor.http.post(
            LAUNCH, data={"csrf_token": csrf, "draft": draft, "from": "3"}
        )
        assert page.status_code == 400, page.text
        assert '<p class="alert" role="alert">Give the instance a name.' in page.text


def test_boot_from_a_volume_is_a_block_device_mapping(
    admin_visitor: Visitor, compute: Compute
) -> None:
    csrf = form_csrf(admin_visitor.http.get(LAUNCH).text)
    screen1 = {
        "csrf_token": csrf,
        "draft": "",
        "from": "1",
        "source": "volume",
        "volume": "11111111-2222-3333-4444-555555555555",
        "flavor": "1",
        "name": "from-volume",
        "count": "1",
    }
    second = admin_visitor.http.post(LAUNCH + "/network", data=screen1)
    assert second.status_code == 200, second.text
    review = admin_visitor.http.post(
        LAUNCH + "/review", data={"csrf_token": csrf, "draft": _draft(second.text), "from": "2"}
    )
    server = _request_shown(review.text)["server"]
    assert "imageRef" not in server
    assert server["block_device_mapping_v2"] == [
        {
            "boot_index": 0,
            "uuid": "11111111-2222-3333-4444-555555555555",
            "source_type": "volume",
            "destination_type": "volume",
            "delete_on_termination": False,
        }
    ]
    # Nova decides whether the volume exists: its words on the review.
    page = admin_visitor.http.post(
        LAUNCH, data={"csrf_token": csrf, "draft": _draft(review.text), "from": "3"}
    )
    assert page.status_code in (400, 404), page.text
    assert 'aria-current="step">3.' in page.text and 'role="alert"' in page.text

"""The instances list (Nova's paging, sorting and filtering), its live rows, and the
server overview page, in process."""

from __future__ import annotations

import re
from typing import Any

from apihelpers import ADMIN_PASSWORD
from visitor import SERVERS, Visitor, create_server, row_names

NAMES = ["vm-c", "vm-a", "vm-e", "vm-b", "vm-d"]


def _servers(cloud: Any, image_id: str, names: list[str] = NAMES) -> dict[str, str]:
    return {name: create_server(cloud, cloud.admin, image_id, name) for name in names}


def test_paging_and_sorting_are_novas(admin_visitor: Visitor, cloud: Any, image_id: str) -> None:
    ids = _servers(cloud, image_id)
    page = admin_visitor.http.get("/project/instances?sort=name&dir=asc&limit=2")
    assert page.status_code == 200, page.text
    assert row_names(page.text) == ["vm-a", "vm-b"]
    # The next page starts after the last row (Nova's marker), keeping sort and limit.
    nxt = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert nxt, page.text
    next_url = nxt.group(1).replace("&amp;", "&")
    assert f"marker={ids['vm-b']}" in next_url
    page = admin_visitor.http.get(next_url)
    assert row_names(page.text) == ["vm-c", "vm-d"]
    assert "First page" in page.text
    page = admin_visitor.http.get(
        "/project/instances?sort=name&dir=asc&limit=2&marker=" + ids["vm-d"]
    )
    assert row_names(page.text) == ["vm-e"]
    assert 'rel="next"' not in page.text  # the last page
    # Descending, and the default (newest first: creation order reversed).
    page = admin_visitor.http.get("/project/instances?sort=name&dir=desc")
    assert row_names(page.text) == sorted(NAMES, reverse=True)
    page = admin_visitor.http.get("/project/instances")
    assert row_names(page.text) == list(reversed(NAMES))
    # The sorted column says so to assistive technology; its link flips the direction.
    page = admin_visitor.http.get("/project/instances?sort=name&dir=asc")
    flip = re.search(r'aria-sort="ascending"><a href="([^"]+)">Name</a>', page.text)
    assert flip, page.text
    page = admin_visitor.http.get(flip.group(1).replace("&amp;", "&"))
    assert row_names(page.text) == sorted(NAMES, reverse=True)
    assert 'aria-sort="descending"><a href="/project/instances?sort=name&amp;dir=asc"' in page.text


def test_filters_are_novas(admin_visitor: Visitor, cloud: Any, image_id: str) -> None:
    _servers(cloud, image_id)
    page = admin_visitor.http.get("/project/instances?name=vm-c")
    assert row_names(page.text) == ["vm-c"]
    page = admin_visitor.http.get("/project/instances?status=build&sort=name&dir=asc")
    assert row_names(page.text) == sorted(NAMES)  # no host: all are still building
    page = admin_visitor.http.get("/project/instances?status=ACTIVE")
    assert row_names(page.text) == []
    assert "No instances match the filter." in page.text


def test_the_rows_poll_renders_only_the_rows_of_the_same_query(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    _servers(cloud, image_id)
    page = admin_visitor.http.get("/project/instances?sort=name&dir=asc&limit=3").text
    poll = re.search(r'hx-get="([^"]+)" hx-trigger="every 1s" hx-swap="innerHTML"', page)
    assert poll, page
    rows = admin_visitor.http.get(poll.group(1).replace("&amp;", "&"))
    assert rows.status_code == 200
    assert row_names(rows.text) == ["vm-a", "vm-b", "vm-c"]
    assert "<nav" not in rows.text and "<table" not in rows.text  # no frame
    # A server created since shows up on the next poll, with its state.
    create_server(cloud, cloud.admin, image_id, "vm-0")
    rows = admin_visitor.http.get(poll.group(1).replace("&amp;", "&"))
    assert row_names(rows.text) == ["vm-0", "vm-a", "vm-b"]
    assert '<span class="status status-build">BUILD</span>' in rows.text


def test_a_row_shows_status_flavor_image_and_age(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    create_server(cloud, cloud.admin, image_id, "web-1")
    page = admin_visitor.http.get("/project/instances").text
    (row,) = re.findall(r'<tr id="server-.*?</tr>', page, re.S)
    assert "BUILD" in row and "web-test-image" in row
    flavor = cloud.client.get("/compute/v2.1/flavors/1", headers=cloud.admin).json()["flavor"]
    assert f"<td>{flavor['name']}</td>" in row
    assert re.search(r"<time datetime=\"[^\"]+\" title=\"[^\"]+\">\d+s</time>", row)


def test_bad_query_values_are_a_400_page_not_a_500(admin_visitor: Visitor) -> None:
    for query in ("limit=abc", "limit=0", "sort=password", "dir=sideways"):
        page = admin_visitor.http.get("/project/instances?" + query)
        assert page.status_code == 400, (query, page.text)
        assert "Bad request" in page.text


def test_an_api_refusal_is_shown_in_place_in_the_apis_words(admin_visitor: Visitor) -> None:
    page = admin_visitor.http.get("/project/instances?marker=no-such-server")
    assert page.status_code == 400
    assert re.search(
        r'<p class="alert" role="alert">marker \[no-such-server\] not found', page.text
    )
    assert "<h1>Instances</h1>" in page.text  # the page, with the message in place


def test_admins_see_hosts_and_the_admin_nav_members_do_not(
    visitor: Visitor, cloud: Any, image_id: str
) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    page = visitor.http.get("/project/instances").text
    assert '<th scope="col">Host</th>' not in page and "Admin</h2>" not in page
    admin = Visitor(cloud.client)
    admin.sign_in("admin", ADMIN_PASSWORD)
    page = admin.http.get("/project/instances").text
    assert '<th scope="col">Host</th>' in page and "Admin</h2>" in page
    # A page that is served is a link (the current one marked); every nav entry is served now.
    assert '<a href="/project/instances" aria-current="page">Instances</a>' in page
    assert '<a href="/project/images">Images</a>' in page
    assert '<a href="/project/usage">Usage</a>' in page
    assert 'class="soon"' not in page


def test_server_page_shows_the_overview(admin_visitor: Visitor, cloud: Any, image_id: str) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "web-1", metadata={"role": "db"})
    page = admin_visitor.http.get(f"/project/instances/{server_id}")
    assert page.status_code == 200, page.text
    assert "<h1>web-1</h1>" in page.text and server_id in page.text
    assert "web-test-image" in page.text
    # Metadata is a section of its own (kumo.web.pages.server_detail), loaded by htmx.
    section = admin_visitor.http.get(f"/project/instances/{server_id}/section/metadata")
    assert "<td>role</td><td>db</td>" in section.text


def test_another_projects_server_is_novas_404(visitor: Visitor, cloud: Any, image_id: str) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "admins-secret-vm")
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    page = visitor.http.get(f"/project/instances/{server_id}")
    assert page.status_code == 404
    nova = cloud.client.get(
        f"{SERVERS}/{server_id}", headers=cloud.h(visitor.session_token)
    ).json()["itemNotFound"]["message"]
    assert nova in page.text
    assert "admins-secret-vm" not in page.text
    assert "admins-secret-vm" not in visitor.http.get("/project/instances").text


def test_a_server_id_cannot_reach_another_api_path(admin_visitor: Visitor) -> None:
    for path in ("x%3Fall_tenants%3D1", "..", "%2E%2E%2Fdetail"):
        page = admin_visitor.http.get(f"/project/instances/{path}")
        assert page.status_code == 404, (path, page.text)
        assert "could not be found" in page.text

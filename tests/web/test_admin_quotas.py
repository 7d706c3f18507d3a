"""Admin quotas page: one project's Nova, Neutron and Cinder quota sets, each edited with
its service's call, refusals in the service's words, a member refused, in process."""

from __future__ import annotations

import re
from typing import Any

from visitor import Visitor, form_csrf


def test_edit_each_services_quotas(admin_visitor: Visitor, cloud: Any) -> None:
    project = cloud.boot.demo_project_id
    page = admin_visitor.http.get(f"/admin/quotas?project_id={project}")
    assert page.status_code == 200, page.text
    for title in ("Compute (Nova)", "Network (Neutron)", "Volume (Cinder)"):
        assert f">{title}</h2>" in page.text
    csrf = form_csrf(page.text.split("<main", 1)[1])
    form = dict(
        re.findall(
            r'name="(limit\.[a-z_]+)" value="(-?\d+)"',
            page.text.split('action="/admin/quotas/' + project + '/compute"', 1)[1].split(
                "</form>", 1
            )[0],
        )
    )
    assert "limit.instances" in form
    resp = admin_visitor.http.post(
        f"/admin/quotas/{project}/compute",
        data={**form, "limit.instances": "7", "csrf_token": csrf},
    )
    assert resp.status_code == 303, resp.text
    nova = cloud.client.get(f"/compute/v2.1/os-quota-sets/{project}", headers=cloud.admin)
    assert nova.json()["quota_set"]["instances"] == 7
    resp = admin_visitor.http.post(
        f"/admin/quotas/{project}/network", data={"limit.network": "3", "csrf_token": csrf}
    )
    assert resp.status_code == 303, resp.text
    neutron = cloud.client.get(f"/network/v2.0/quotas/{project}", headers=cloud.admin)
    assert neutron.json()["quota"]["network"] == 3
    resp = admin_visitor.http.post(
        f"/admin/quotas/{project}/volume", data={"limit.volumes": "4", "csrf_token": csrf}
    )
    assert resp.status_code == 303, resp.text
    cinder = cloud.client.get(f"/volume/v3/os-quota-sets/{project}", headers=cloud.admin)
    assert cinder.json()["quota_set"]["volumes"] == 4
    # A bad value is the service's 400, in its words, next to that service's form.
    bad = cloud.client.put(
        f"/volume/v3/os-quota-sets/{project}",
        json={"quota_set": {"volumes": "many"}},
        headers=cloud.admin,
    )
    assert bad.status_code == 400
    resp = admin_visitor.http.post(
        f"/admin/quotas/{project}/volume", data={"limit.volumes": "many", "csrf_token": csrf}
    )
    assert resp.status_code == 400
    volume = resp.text.split('id="quota-volume-title"', 1)[1]
    assert f'<p class="alert" role="alert">{bad.json()["badRequest"]["message"]}</p>' in volume


def test_a_member_gets_the_403_words(visitor: Visitor, cloud: Any) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    page = visitor.http.get("/admin/quotas")
    assert page.status_code == 403
    assert "identity:list_projects" in page.text
    csrf = visitor.page_csrf()
    resp = visitor.http.post(
        f"/admin/quotas/{cloud.boot.demo_project_id}/compute",
        data={"limit.instances": "99", "csrf_token": csrf},
    )
    assert resp.status_code == 403

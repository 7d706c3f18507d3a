"""The images pages, in process: Glance's list (paging, sorting, name and tag filters),
create and upload (streamed to Glance, never held whole; Glance's checks answered in its
words), edit, tags, delete, CSRF."""

from __future__ import annotations

import hashlib
import json
import re
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from apihelpers import PUBLIC_URL
from visitor import Visitor, form_csrf, run_async

PAGE = "/project/images"
IMAGES = "/image/v2/images"
_ROW = re.compile(r'<tr id="image-([0-9a-f-]+)">\s*<td><a href="[^"]+">([^<]*)</a>')
MIB = 1024 * 1024


def _row_names(html: str) -> list[str]:
    return [name for _, name in _ROW.findall(html)]


def _image(cloud: Any, name: str, **extra: Any) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **extra}
    resp = cloud.client.post(IMAGES, json=body, headers=cloud.admin)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _glance(cloud: Any, image_id: str) -> dict[str, Any]:
    resp = cloud.client.get(f"{IMAGES}/{image_id}", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def test_list_paging_sorting_and_filters_are_glances(admin_visitor: Visitor, cloud: Any) -> None:
    for name, tags in (("img-c", ["db"]), ("img-a", ["web"]), ("img-b", ["web", "db"])):
        _image(cloud, name, tags=tags)
    page = admin_visitor.http.get(PAGE + "?sort=name&dir=asc&limit=2")
    assert page.status_code == 200, page.text
    assert _row_names(page.text) == ["img-a", "img-b"]
    nxt = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert nxt, page.text
    assert _row_names(admin_visitor.http.get(nxt.group(1).replace("&amp;", "&")).text) == ["img-c"]
    page = admin_visitor.http.get(PAGE + "?sort=name&dir=desc").text
    assert _row_names(page) == ["img-c", "img-b", "img-a"]
    assert _row_names(admin_visitor.http.get(PAGE + "?name=img-b").text) == ["img-b"]
    page = admin_visitor.http.get(PAGE + "?tag=web&sort=name&dir=asc").text
    assert _row_names(page) == ["img-a", "img-b"]
    page = admin_visitor.http.get(PAGE + "?tag=none-such").text
    assert _row_names(page) == [] and "No images match the filter." in page
    # A row: status, format, visibility, tags.
    page = admin_visitor.http.get(PAGE + "?name=img-b").text
    (row,) = re.findall(r'<tr id="image-.*?</tr>', page, re.S)
    assert "queued" in row and "<td>raw</td>" in row and "<td>shared</td>" in row
    assert '<span class="label">db</span><span class="label">web</span>' in row


def test_bad_list_queries_are_400_pages_and_glances_refusals_in_place(
    admin_visitor: Visitor,
) -> None:
    for query in ("limit=0", "sort=owner", "dir=up"):
        assert admin_visitor.http.get(PAGE + "?" + query).status_code == 400, query
    page = admin_visitor.http.get(PAGE + "?marker=no-such-image")
    assert page.status_code == 400
    assert re.search(r'<p class="alert" role="alert">[^<]*no-such-image', page.text), page.text
    assert "<h1>Images</h1>" in page.text


def test_the_create_form_offers_glances_formats(admin_visitor: Visitor, cloud: Any) -> None:
    page = admin_visitor.http.get(PAGE + "/new")
    assert page.status_code == 200, page.text
    schema = cloud.client.get("/image/v2/schemas/image", headers=cloud.admin).json()
    disk = [f for f in schema["properties"]["disk_format"]["enum"] if f]
    select = re.search(r'<select id="image-disk-format".*?</select>', page.text, re.S)
    assert select and re.findall(r"<option[^>]*>([^<]+)</option>", select.group(0)) == disk
    assert '<script src="/static/image-upload.js" defer></script>' in page.text
    assert "<progress" in page.text and 'aria-live="polite"' in page.text


def test_create_without_a_file_makes_a_queued_image(admin_visitor: Visitor, cloud: Any) -> None:
    csrf = form_csrf(admin_visitor.http.get(PAGE + "/new").text)
    form = {"name": "plain", "disk_format": "qcow2", "container_format": "bare", "tags": "a, b"}
    resp = admin_visitor.http.post(PAGE, data={**form, "csrf_token": csrf})
    assert resp.status_code == 303, resp.text
    image_id = resp.headers["location"].rsplit("/", 1)[1]
    made = _glance(cloud, image_id)
    assert (made["name"], made["status"], sorted(made["tags"])) == ("plain", "queued", ["a", "b"])
    page = admin_visitor.http.get(resp.headers["location"]).text
    assert "Upload the image's data" in page and 'data-upload-url="' in page
    # Glance's refusal of a bad format, in place, the form kept.
    bad = {**form, "disk_format": "floppy", "csrf_token": csrf}
    resp = admin_visitor.http.post(PAGE, data=bad)
    assert resp.status_code == 400
    assert re.search(r'<p class="alert" role="alert">[^<]*floppy', resp.text), resp.text
    assert 'value="plain"' in resp.text
    # The script's way: JSON both ways.
    resp = admin_visitor.http.post(
        PAGE, data={**form, "csrf_token": csrf}, headers={"Accept": "application/json"}
    )
    assert resp.status_code == 201
    made = resp.json()
    assert made["upload_url"] == f"{PAGE}/{made['id']}/file"
    resp = admin_visitor.http.post(PAGE, data=bad, headers={"Accept": "application/json"})
    assert resp.status_code == 400 and "floppy" in resp.json()["message"]


async def _chunks(total: int, size: int = MIB) -> AsyncIterator[bytes]:
    pattern = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        yield pattern
        sent += len(pattern)


def _payload_md5(total: int) -> str:
    digest = hashlib.md5()
    pattern = bytes(range(256)) * (MIB // 256)
    for _ in range(total // MIB):
        digest.update(pattern)
    return digest.hexdigest()


def test_upload_streams_into_glance_without_holding_the_image(
    admin_visitor: Visitor, cloud: Any
) -> None:
    """48 MiB through the dashboard to Glance as a stream (the browser's way: an async
    body) while Python's allocations stay far below the image's size."""
    total = 48 * MIB
    image_id = _image(cloud, "streamed")
    csrf = admin_visitor.page_csrf()
    cookies = {"kumo_session": admin_visitor.session_token}

    async def upload() -> tuple[httpx.Response, int]:
        transport = httpx.ASGITransport(app=cloud.client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=PUBLIC_URL, cookies=cookies
        ) as http:
            tracemalloc.start()
            try:
                resp = await http.put(
                    f"{PAGE}/{image_id}/file",
                    content=_chunks(total),
                    headers={"X-CSRF-Token": csrf, "Content-Length": str(total)},
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return resp, peak

    resp, peak = run_async(upload())
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert (answer["status"], answer["size"]) == ("active", total)
    assert answer["url"] == f"{PAGE}/{image_id}"
    stored = _glance(cloud, image_id)
    assert (stored["status"], stored["size"], stored["checksum"]) == (
        "active",
        total,
        _payload_md5(total),
    )
    assert peak < 12 * MIB, f"peak traced memory {peak / MIB:.1f} MiB for a 48 MiB upload"


class BrowserGone(Exception):
    """The browser went away mid-upload."""


def test_an_interrupted_upload_leaves_the_image_queued(admin_visitor: Visitor, cloud: Any) -> None:
    """The browser goes away after 2 MiB of 8: Glance drops what it got, as for a client
    of its own, and the image can be uploaded again."""
    image_id = _image(cloud, "interrupted")
    csrf = admin_visitor.page_csrf()
    cookies = {"kumo_session": admin_visitor.session_token}

    async def cut() -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in _chunks(8 * MIB):
            if sent >= 2 * MIB:
                raise BrowserGone
            sent += len(chunk)
            yield chunk

    async def upload() -> None:
        transport = httpx.ASGITransport(app=cloud.client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=PUBLIC_URL, cookies=cookies
        ) as http:
            await http.put(f"{PAGE}/{image_id}/file", content=cut(), headers={"X-CSRF-Token": csrf})

    with pytest.raises(BrowserGone):
        run_async(upload())
    shown = _glance(cloud, image_id)
    assert (shown["status"], shown["size"]) == ("queued", None)
    resp = admin_visitor.http.put(
        f"{PAGE}/{image_id}/file", content=b"\0" * 4096, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status_code == 200 and resp.json()["status"] == "active"


def test_glances_checks_answer_the_upload_in_its_words(admin_visitor: Visitor, cloud: Any) -> None:
    image_id = _image(cloud, "not-qcow2", disk_format="qcow2")
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.put(
        f"{PAGE}/{image_id}/file", content=b"\0" * 4096, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status_code == 400
    assert resp.json() == {
        "message": "Image data is in raw format, which does not match disk_format 'qcow2'."
    }
    assert _glance(cloud, image_id)["status"] == "queued"  # Glance let it go back
    missing = admin_visitor.http.put(
        f"{PAGE}/00000000-0000-0000-0000-000000000000/file",
        content=b"x",
        headers={"X-CSRF-Token": csrf},
    )
    assert missing.status_code == 404 and json.loads(missing.text)["message"]


def test_upload_without_the_csrf_header_is_refused_unread(
    admin_visitor: Visitor, cloud: Any
) -> None:
    image_id = _image(cloud, "kept-empty")
    resp = admin_visitor.http.put(f"{PAGE}/{image_id}/file", content=b"\0" * 4096)
    assert resp.status_code == 403 and "carries no CSRF token" in resp.text
    resp = admin_visitor.http.put(
        f"{PAGE}/{image_id}/file", content=b"\0" * 4096, headers={"X-CSRF-Token": "0" * 64}
    )
    assert resp.status_code == 403
    assert _glance(cloud, image_id)["status"] == "queued"
    resp = admin_visitor.http.post(PAGE, data={"name": "sneaky"})
    assert resp.status_code == 403


def test_edit_tags_and_delete(admin_visitor: Visitor, cloud: Any) -> None:
    image_id = _image(cloud, "editable")
    url = f"{PAGE}/{image_id}"
    page = admin_visitor.http.get(url)
    assert page.status_code == 200 and "<h1>editable</h1>" in page.text
    csrf = form_csrf(page.text)
    resp = admin_visitor.http.post(
        url + "/edit", data={"name": "renamed", "visibility": "private", "csrf_token": csrf}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, url)
    assert (_glance(cloud, image_id)["name"], _glance(cloud, image_id)["visibility"]) == (
        "renamed",
        "private",
    )
    # Labels are Glance's tags; a typed '/' nests, stored as ':' (kumo.web.labels).
    resp = admin_visitor.http.post(url + "/labels", data={"label": "gold/a", "csrf_token": csrf})
    assert resp.status_code == 303 and _glance(cloud, image_id)["tags"] == ["gold:a"]
    page = admin_visitor.http.get(url).text
    assert 'aria-label="Remove label gold:a"' in page and 'aria-label="Labels"' in page
    listed = admin_visitor.http.get(PAGE, params={"tag": "gold/a"}).text
    assert ">renamed</a>" in listed and '<span class="label">gold:a</span>' in listed
    resp = admin_visitor.http.post(
        url + "/labels/remove", data={"label": "gold:a", "csrf_token": csrf}
    )
    assert resp.status_code == 303 and _glance(cloud, image_id)["tags"] == []
    # Glance's refusal in place: a visibility it does not know.
    resp = admin_visitor.http.post(
        url + "/edit", data={"name": "x", "visibility": "everyone", "csrf_token": csrf}
    )
    assert resp.status_code == 400
    assert re.search(r'<p class="alert" role="alert">[^<]*everyone', resp.text), resp.text
    assert _glance(cloud, image_id)["name"] == "renamed"
    # Protected: Glance refuses the delete, in its words, on the image's page.
    cloud.client.patch(
        f"{IMAGES}/{image_id}",
        content=json.dumps([{"op": "replace", "path": "/protected", "value": True}]),
        headers={**cloud.admin, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    resp = admin_visitor.http.post(url + "/delete", data={"csrf_token": csrf})
    assert resp.status_code == 403 and "<h1>renamed</h1>" in resp.text
    assert re.search(r'<p class="alert" role="alert">[^<]+</p>', resp.text)
    cloud.client.patch(
        f"{IMAGES}/{image_id}",
        content=json.dumps([{"op": "replace", "path": "/protected", "value": False}]),
        headers={**cloud.admin, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    resp = admin_visitor.http.post(url + "/delete", data={"csrf_token": csrf})
    assert (resp.status_code, resp.headers["location"]) == (303, PAGE)
    missing = cloud.client.get(f"{IMAGES}/{image_id}", headers=cloud.admin)
    assert missing.status_code == 404
    page = admin_visitor.http.get(url)
    assert page.status_code == 404 and missing.json()["message"] in page.text


def test_odd_input_is_the_apis_4xx_never_a_500(admin_visitor: Visitor, cloud: Any) -> None:
    image_id = _image(cloud, "odd")
    url = f"{PAGE}/{image_id}"
    csrf = form_csrf(admin_visitor.http.get(url).text)
    for path, data in (
        (url + "/labels", {"label": ""}),
        (url + "/labels", {"label": "x" * 300}),
        (url + "/labels/remove", {"label": "no-such-tag"}),
        (url + "/edit", {"name": "n" * 300, "visibility": "private"}),
        (url + "/edit", {}),
        (f"{PAGE}/no-such-image/delete", {}),
        ("/project/key-pairs", {"name": ""}),
        ("/project/key-pairs", {"name": "bad/name"}),
        ("/project/key-pairs/import", {"name": "k", "type": "x509", "public_key": "nope"}),
        ("/project/key-pairs/%2E%2E/delete", {}),
    ):
        resp = admin_visitor.http.post(path, data={**data, "csrf_token": csrf})
        assert 400 <= resp.status_code < 500, (path, data, resp.status_code, resp.text[-500:])
    for path in (f"{PAGE}/no-such-image", f"{PAGE}/%2E%2E", PAGE + "?marker=%2E%2E"):
        resp = admin_visitor.http.get(path)
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert _glance(cloud, image_id)["name"] == "odd"

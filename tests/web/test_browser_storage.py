"""Images, key pairs and volumes in a real Chromium against the browser tests' shared live
`kumo up` (tests/web/livecloud.py): upload an image from the browser and watch the progress
bar reach 100% and the image turn active; create a volume in the demo project, attach it to
the shared guest (real QEMU, TCG) and see it in-use, then detach it (the guest keeps
nothing), every status change arriving without a reload."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kumo.web.session import EXPIRED_MESSAGE

from browser import PHONE, Tab, screenshot, sign_in, switch_project
from computeapi import Api
from kumoproc import Cloud
from livecloud import GUEST_NAME, SharedGuest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
IMAGE_BYTES = 3 * 1024 * 1024 + 512  # raw data: what qemu-img reads as raw


def test_upload_an_image_with_a_progress_bar(
    live_cloud: Cloud, new_tab: Callable[[Cloud], Tab], tmp_path: Path
) -> None:
    cloud = live_cloud
    data = tmp_path / "disk.raw"
    data.write_bytes(bytes(range(256)) * (IMAGE_BYTES // 256))
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Images").click()
    expect(page.get_by_role("heading", name="Images", level=1)).to_be_visible()
    page.get_by_role("link", name="Create an image").click()
    page.get_by_label("Name").fill("web-upload")
    page.get_by_label("Disk format").select_option("raw")
    page.get_by_label("Tags (comma separated)").fill("web, uploaded")
    page.get_by_label("Image file").set_input_files(str(data))
    page.get_by_role("button", name="Create image").click()

    done = page.get_by_role("status").filter(has_text="web-upload")
    expect(done).to_contain_text("Image web-upload is active.", timeout=60_000)
    expect(page.get_by_label("Upload progress")).to_have_attribute("value", "100")
    screenshot(page, "images-upload-done")

    page.get_by_role("link", name="Open the image").click()
    expect(page.get_by_role("heading", name="web-upload", level=1)).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("active")
    expect(facts).to_contain_text(f"{IMAGE_BYTES / 1024 / 1024:.1f} MiB")
    page.get_by_role("link", name="Images").first.click()
    row = page.get_by_role("row", name=re.compile("web-upload"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("uploaded")
    screenshot(page, "images-list")
    assert tab.errors() == []  # nothing refused by the Content-Security-Policy


def test_glances_refusal_of_an_upload_is_shown_in_place(
    live_cloud: Cloud, new_tab: Callable[[Cloud], Tab], tmp_path: Path
) -> None:
    cloud = live_cloud
    data = tmp_path / "not-qcow2.raw"
    data.write_bytes(b"\0" * 65536)
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    page.goto("/project/images/new")
    page.get_by_label("Name").fill("web-bad")
    page.get_by_label("Disk format").select_option("qcow2")
    page.get_by_label("Image file").set_input_files(str(data))
    page.get_by_role("button", name="Create image").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Image data is in raw format, which does not match disk_format 'qcow2'.",
        timeout=60_000,
    )
    expect(page.get_by_role("button", name="Create image")).to_be_enabled()  # try again
    screenshot(page, "images-upload-refused")
    # The session revoked meanwhile: the script follows the dashboard to sign-in.
    (session,) = [c["value"] for c in tab.context.cookies() if c["name"] == "kumo_session"]
    api = Api(cloud.url, cloud.admin_password)
    try:
        revoked = api.client.delete(
            "/identity/v3/auth/tokens", headers={"X-Subject-Token": session}
        )
        assert revoked.status_code == 204, revoked.text
    finally:
        api.close()
    page.get_by_role("button", name="Create image").click()
    expect(page.get_by_text(EXPIRED_MESSAGE)).to_be_visible()


def test_key_pair_private_key_is_downloaded_once(
    live_cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = live_cloud
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Key pairs").click()
    create = page.get_by_role("form", name="Create a key pair")
    create.get_by_label("Name").fill("web-key")
    create.get_by_role("button", name="Create key pair").click()
    link = page.get_by_role("link", name="Download the private key (web-key.pem)")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "web-key.pem"
    key = Path(download.value.path()).read_text()
    assert key.startswith("-----BEGIN") and "PRIVATE KEY" in key
    screenshot(page, "keypairs-created")
    row = page.get_by_role("row", name=re.compile("web-key"))
    expect(row).to_be_visible()
    page.goto("/project/key-pairs")  # the page served later offers it no more
    expect(row).to_be_visible()
    expect(link).to_have_count(0)
    assert "PRIVATE KEY" not in page.content()
    # Phone width: the forms and the table fit; the page does not scroll sideways.
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide at phone width"
    screenshot(page, "keypairs-phone")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Delete key pair web-key").click()
    page.get_by_role("button", name="Confirm: delete key pair web-key").click()
    expect(row).to_have_count(0)
    assert tab.errors() == []


def test_attach_a_volume_to_a_running_guest(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = shared_guest.cloud
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    switch_project(page, "demo")  # the shared guest's project
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Volumes").click()
    expect(page.get_by_role("heading", name="Volumes", level=1)).to_be_visible()
    page.get_by_text("Create a volume").click()
    create = page.get_by_role("form", name="Create a volume")
    create.get_by_label("Name").fill("web-data")
    create.get_by_label("Size (GiB)").fill("1")
    create.get_by_role("button", name="Create volume").click()
    row = page.get_by_role("row", name=re.compile("web-data"))
    expect(row).to_contain_text("available", timeout=60_000)  # by the poll
    screenshot(page, "volumes-available")

    row.get_by_role("link", name="web-data").click()
    expect(page.get_by_role("heading", name="web-data", level=1)).to_be_visible()
    page.get_by_label("Server", exact=True).select_option(label=GUEST_NAME)
    page.get_by_role("button", name="Attach", exact=True).click()
    status = page.locator("[data-volume-status]")
    expect(status).to_have_text("in-use", timeout=120_000)
    attachments = page.get_by_role("list", name="Attachments")
    expect(attachments).to_contain_text(GUEST_NAME)
    expect(attachments).to_contain_text("/dev/vd")
    screenshot(page, "volumes-in-use")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Volumes").click()
    expect(row).to_contain_text("in-use")
    expect(row).to_contain_text(GUEST_NAME)

    row.get_by_role("link", name="web-data").click()
    page.get_by_role("button", name=f"Detach from {GUEST_NAME}").click()
    expect(status).to_have_text("available", timeout=120_000)
    expect(attachments).to_contain_text("Not attached.")
    screenshot(page, "volumes-detached")
    assert tab.errors() == []

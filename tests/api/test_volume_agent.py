"""Volumes end to end in process, on every database backend: the API, an agent's volume loop
over the real ``file`` backend (qcow2 files under a temporary directory) and its compute
loop with the fake hypervisor, which plugs and unplugs the volumes of its guests."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.agent.images import ImageCache
from kumo.agent.volumes import VolumeLoop
from kumo.db import models as m
from kumo.drivers.storage.volumes import registry

pytestmark = [
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="the file backend needs qemu-img"),
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
V3 = "/volume/v3"


class Storage:
    """The compute fixture's host, also serving the file backend through a volume loop."""

    def __init__(self, compute: Compute, tmp_path: Path) -> None:
        self.compute = compute
        self.cloud = compute.cloud
        self.backends = {"file": registry.create("file", tmp_path / "store")}
        body = compute.registration_body(compute.host_id, "fake-1", 8, 8704)
        body["host"]["capabilities"]["volume_backends"] = {"file": {"total_gb": 50}}
        resp = compute.agent_client.post("/agent/v1/hosts", json=body)
        assert resp.status_code == 200, resp.text
        compute.agent_client.post(f"/agent/v1/hosts/{compute.host_id}/heartbeat")
        images = ImageCache(compute.agent_client, "/agent/v1", tmp_path / "images")

        def fetch(image_id: str) -> tuple[Path, str]:
            cached = images.get(image_id)
            return cached.path, cached.disk_format

        self.loop = VolumeLoop(
            compute.agent_client,
            "/agent/v1",
            compute.host_id,
            self.backends,
            fetch_image=fetch,
            scratch_dir=tmp_path / "uploads",
        )
        compute.loop.disks.backends = self.backends

    def converge(self) -> None:
        self.loop.sync_once()
        self.compute.converge()
        self.loop.sync_once()

    def create(self, headers: dict[str, str], **volume: Any) -> dict[str, Any]:
        resp = self.cloud.client.post(
            f"{V3}/volumes", json={"volume": {"size": 1, **volume}}, headers=headers
        )
        assert resp.status_code == 202, resp.text
        body: dict[str, Any] = resp.json()["volume"]
        return body

    def show(self, volume_id: str, headers: dict[str, str]) -> dict[str, Any]:
        resp = self.cloud.client.get(f"{V3}/volumes/{volume_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()["volume"]
        return body

    def action(self, volume_id: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
        return self.cloud.client.post(
            f"{V3}/volumes/{volume_id}/action", json=body, headers=headers
        )

    def path(self, volume_id: str) -> Path:
        return Path(self.backends["file"].connection(volume_id).path)


@pytest.fixture
def storage(cloud: Any, tmp_path: Path) -> Storage:
    compute = Compute(cloud, tmp_path)
    compute.loop.scratch_dir = tmp_path / "snapshots"
    return Storage(compute, tmp_path)


def test_create_extend_delete_make_and_remove_the_file(storage: Storage) -> None:
    admin = storage.cloud.admin
    vid = storage.create(admin, name="data", size=2)["id"]
    storage.converge()
    shown = storage.show(vid, admin)
    assert shown["status"] == "available"
    info = storage.backends["file"].info(vid)
    assert info.size_gb == 2 and storage.path(vid).is_file()
    assert storage.action(vid, admin, {"os-extend": {"new_size": 3}}).status_code == 202
    storage.converge()
    assert (storage.show(vid, admin)["status"], storage.backends["file"].info(vid).size_gb) == (
        "available",
        3,
    )
    assert storage.cloud.client.delete(f"{V3}/volumes/{vid}", headers=admin).status_code == 202
    storage.converge()
    assert storage.cloud.client.get(f"{V3}/volumes/{vid}", headers=admin).status_code == 404
    assert not storage.backends["file"].exists(vid)
    with storage.cloud.db.session() as session:
        assert session.get(m.Volume, vid).deleted  # kept for the record


def test_snapshot_clone_and_volume_from_snapshot(storage: Storage) -> None:
    admin = storage.cloud.admin
    vid = storage.create(admin, name="origin")["id"]
    storage.converge()
    resp = storage.cloud.client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": vid, "name": "s1"}}, headers=admin
    )
    assert resp.status_code == 202, resp.text
    sid = resp.json()["snapshot"]["id"]
    storage.converge()
    snap = storage.cloud.client.get(f"{V3}/snapshots/{sid}", headers=admin).json()["snapshot"]
    assert (snap["status"], snap["size"], snap["volume_id"]) == ("available", 1, vid)
    from_snap = storage.create(admin, snapshot_id=sid, size=2)
    clone = storage.create(admin, source_volid=vid)
    assert (from_snap["snapshot_id"], clone["source_volid"]) == (sid, vid)
    storage.converge()
    for copy in (from_snap["id"], clone["id"]):
        assert storage.show(copy, admin)["status"] == "available"
        assert storage.backends["file"].exists(copy)
    assert storage.backends["file"].info(from_snap["id"]).size_gb == 2
    # A volume with a snapshot is deleted only with cascade.
    assert storage.cloud.client.delete(f"{V3}/volumes/{vid}", headers=admin).status_code == 400
    resp = storage.cloud.client.delete(f"{V3}/volumes/{vid}?cascade=true", headers=admin)
    assert resp.status_code == 202
    storage.converge()
    assert storage.cloud.client.get(f"{V3}/snapshots/{sid}", headers=admin).status_code == 404
    assert not storage.backends["file"].exists(vid)
    assert storage.show(from_snap["id"], admin)["status"] == "available"  # independent copy


def test_snapshot_metadata_follows_the_volume_rules(storage: Storage) -> None:
    """Set (PUT), update (POST), the 128-item limit as 400 with nothing written, and 404
    for another project, exactly as a volume's metadata."""
    cloud, admin = storage.cloud, storage.cloud.admin
    vid = storage.create(admin)["id"]
    storage.converge()
    resp = cloud.client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": vid}}, headers=admin
    )
    sid = resp.json()["snapshot"]["id"]
    url = f"{V3}/snapshots/{sid}/metadata"
    resp = cloud.client.put(url, json={"metadata": {"a": "1", "b": "2"}}, headers=admin)
    assert resp.json() == {"metadata": {"a": "1", "b": "2"}}, resp.text
    resp = cloud.client.post(url, json={"metadata": {"b": "3", "c": "4"}}, headers=admin)
    assert resp.json() == {"metadata": {"a": "1", "b": "3", "c": "4"}}, resp.text
    many = {f"k{i}": "v" for i in range(129)}
    resp = cloud.client.post(url, json={"metadata": many}, headers=admin)
    assert resp.status_code == 400 and "at most 128" in resp.text, resp.text
    assert cloud.client.get(url, headers=admin).json()["metadata"] == {"a": "1", "b": "3", "c": "4"}
    project = cloud.project("snapmeta-other")
    _, token = cloud.member("snapmeta-u", project["id"])
    resp = cloud.client.put(url, json={"metadata": {"x": "y"}}, headers=cloud.h(token))
    assert resp.status_code == 404, resp.text


def test_upload_to_image(storage: Storage) -> None:
    admin = storage.cloud.admin
    vid = storage.create(admin)["id"]
    storage.converge()
    resp = storage.action(
        vid, admin, {"os-volume_upload_image": {"image_name": "from-vol", "disk_format": "qcow2"}}
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()["os-volume_upload_image"]
    assert (body["status"], body["image_name"]) == ("uploading", "from-vol")
    storage.converge()
    image = storage.cloud.client.get(f"/image/v2/images/{body['image_id']}", headers=admin).json()
    assert (image["status"], image["disk_format"], image["name"]) == ("active", "qcow2", "from-vol")
    assert storage.show(vid, admin)["status"] == "available"
    # And the image makes a bootable volume.
    again = storage.create(admin, imageRef=body["image_id"])
    storage.converge()
    shown = storage.show(again["id"], admin)
    assert (shown["status"], shown["bootable"]) == ("available", "true")
    assert shown["volume_image_metadata"]["image_id"] == body["image_id"]


def test_attach_to_a_server_and_detach(storage: Storage) -> None:
    compute, admin = storage.compute, storage.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    vid = storage.create(admin)["id"]
    storage.converge()
    url = f"{SERVERS}/{server_id}/os-volume_attachments"
    resp = storage.cloud.client.post(
        url, json={"volumeAttachment": {"volumeId": vid}}, headers=admin
    )
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["volumeAttachment"]
    # vda is the root disk, vdb the config drive ([compute] force_config_drive).
    assert (attachment["volumeId"], attachment["device"]) == (vid, "/dev/vdc")
    assert storage.show(vid, admin)["status"] == "attaching"
    storage.converge()
    shown = storage.show(vid, admin)
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["server_id"] == server_id
    assert shown["attachments"][0]["host_name"] == "fake-1"
    assert [d.serial for d in compute.loop.driver.disks(server_id)] == [vid]
    listed = storage.cloud.client.get(url, headers=admin).json()["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [vid]
    # Attached: not deletable, not attachable to a second server.
    assert storage.cloud.client.delete(f"{V3}/volumes/{vid}", headers=admin).status_code == 400
    other = compute.create(admin).json()["server"]["id"]
    storage.converge()
    resp = storage.cloud.client.post(
        f"{SERVERS}/{other}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vid}},
        headers=admin,
    )
    assert resp.status_code == 400, resp.text
    assert storage.cloud.client.delete(f"{url}/{vid}", headers=admin).status_code == 202
    assert storage.show(vid, admin)["status"] == "detaching"
    storage.converge()
    assert (storage.show(vid, admin)["status"], storage.show(vid, admin)["attachments"]) == (
        "available",
        [],
    )
    assert compute.loop.driver.disks(server_id) == []
    actions = storage.cloud.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=admin
    ).json()["instanceActions"]
    assert [a["action"] for a in actions[:2]] == ["detach_volume", "attach_volume"]


def test_server_delete_frees_its_volumes(storage: Storage) -> None:
    compute, admin = storage.compute, storage.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    vid = storage.create(admin)["id"]
    storage.converge()
    storage.cloud.client.post(
        f"{SERVERS}/{server_id}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vid}},
        headers=admin,
    )
    storage.converge()
    assert storage.cloud.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    storage.converge()
    assert storage.show(vid, admin)["status"] == "available"  # kept, as Cinder keeps it


def test_unknown_volume_or_server_state(storage: Storage) -> None:
    compute, admin = storage.compute, storage.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    url = f"{SERVERS}/{server_id}/os-volume_attachments"
    resp = storage.cloud.client.post(
        url, json={"volumeAttachment": {"volumeId": str(uuid.uuid4())}}, headers=admin
    )
    assert resp.status_code == 409  # still building
    storage.converge()
    resp = storage.cloud.client.post(
        url, json={"volumeAttachment": {"volumeId": str(uuid.uuid4())}}, headers=admin
    )
    assert resp.status_code == 404
    resp = storage.cloud.client.post(url, json={"volumeAttachment": {}}, headers=admin)
    assert resp.status_code == 400
    resp = storage.cloud.client.delete(f"{url}/{uuid.uuid4()}", headers=admin)
    assert resp.status_code == 404


def test_block_device_mapping_makes_volumes_and_waits_for_them(storage: Storage) -> None:
    compute, admin = storage.compute, storage.cloud.admin
    body = {
        "server": {
            "name": "bdm",
            "flavorRef": "1",
            "block_device_mapping_v2": [
                {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
                 "boot_index": 0, "delete_on_termination": True},
                {"source_type": "blank", "destination_type": "volume", "volume_size": 2,
                 "boot_index": -1},
            ],
        }
    }  # fmt: skip
    resp = storage.cloud.client.post(SERVERS, json=body, headers=admin)
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    # The scheduler places it; its agent waits until the volume loop has made the volumes.
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "BUILD"
    assert compute.loop.driver.get_state(server_id).power_state == "nostate"
    storage.converge()
    storage.converge()  # the full pass plugs the data volume once it exists
    shown = compute.show(server_id, admin)
    assert shown["status"] == "ACTIVE", shown
    assert shown["image"] == ""
    attached = shown["os-extended-volumes:volumes_attached"]
    assert len(attached) == 2
    sizes = sorted(storage.show(a["id"], admin)["size"] for a in attached)
    statuses = {storage.show(a["id"], admin)["status"] for a in attached}
    assert (sizes, statuses) == ([1, 2], {"in-use"})
    # Deleting the server deletes the root volume (delete_on_termination) and keeps the other.
    assert storage.cloud.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    storage.converge()
    storage.converge()
    left = {
        a["id"]: storage.cloud.client.get(f"{V3}/volumes/{a['id']}", headers=admin).status_code
        for a in attached
    }
    assert sorted(left.values()) == [200, 404], left


def test_block_device_mapping_refuses_what_it_cannot_do(storage: Storage) -> None:
    admin = storage.cloud.admin
    for mapping in (
        {"source_type": "blank", "destination_type": "local", "boot_index": -1},
        {"source_type": "image", "destination_type": "volume", "boot_index": 0},  # no size
        {"source_type": "volume", "uuid": str(uuid.uuid4()), "boot_index": 0},
        {"source_type": "nope", "destination_type": "volume"},
    ):
        body = {"server": {"name": "x", "flavorRef": "1", "block_device_mapping_v2": [mapping]}}
        resp = storage.cloud.client.post(SERVERS, json=body, headers=admin)
        assert resp.status_code == 400, (mapping, resp.text)
    with storage.cloud.db.session() as session:
        assert session.query(m.Volume).count() == 0  # nothing half-made


def test_boot_only_from_a_bootable_volume(storage: Storage) -> None:
    """Nova refuses (400, "Block Device <id> is not bootable.") to boot from a volume
    Cinder does not flag bootable (tempest's test_create_server_from_non_bootable_volume),
    or from a snapshot of one; a volume made from a snapshot inherits its volume's flag,
    as in Cinder. Nothing of the refused request is kept."""
    compute, admin, client = storage.compute, storage.cloud.admin, storage.cloud.client
    vid = storage.create(admin, name="data")["id"]
    storage.converge()
    assert storage.show(vid, admin)["bootable"] == "false"
    sid = client.post(
        f"{V3}/snapshots", json={"snapshot": {"volume_id": vid}}, headers=admin
    ).json()["snapshot"]["id"]
    storage.converge()
    from_snapshot = storage.create(admin, snapshot_id=sid)
    assert from_snapshot["bootable"] == "false"

    def boot(source: str, uuid_: str) -> Any:
        mapping = {"source_type": source, "uuid": uuid_, "destination_type": "volume",
                   "boot_index": "0", "volume_size": 1, "delete_on_termination": False}  # fmt: skip
        body = {"server": {"name": "nb", "flavorRef": "1", "imageRef": "",
                           "block_device_mapping_v2": [mapping]}}  # fmt: skip
        return client.post(SERVERS, json=body, headers=admin)

    with storage.cloud.db.session() as session:
        volumes_before = session.query(m.Volume).count()
    for source, ident in (("volume", vid), ("snapshot", sid)):
        resp = boot(source, ident)
        assert resp.status_code == 400, (source, resp.text)
        assert resp.json()["badRequest"]["message"] == f"Block Device {vid} is not bootable."
    with storage.cloud.db.session() as session:
        assert session.query(m.Instance).count() == 0
        assert session.query(m.Volume).count() == volumes_before
    assert storage.show(vid, admin)["status"] == "available"

    resp = storage.action(vid, admin, {"os-set_bootable": {"bootable": True}})
    assert resp.status_code == 200, resp.text
    assert storage.create(admin, snapshot_id=sid)["bootable"] == "true"
    for source, ident in (("volume", vid), ("snapshot", sid)):
        resp = boot(source, ident)
        assert resp.status_code == 202, (source, resp.text)
    storage.converge()
    storage.converge()
    assert compute.show(resp.json()["server"]["id"], admin)["status"] == "ACTIVE"


def test_two_concurrent_attaches_exactly_one_succeeds(storage: Storage) -> None:
    """Two servers ask for the same volume at once (through Nova's API, in two threads):
    one attachment, the other request refused (400: in use, or 409: lost the race)."""
    import threading

    compute, admin = storage.compute, storage.cloud.admin
    servers = [compute.create(admin).json()["server"]["id"] for _ in range(2)]
    vid = storage.create(admin)["id"]
    storage.converge()
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def attach(server_id: str) -> None:
        barrier.wait()
        resp = storage.cloud.client.post(
            f"{SERVERS}/{server_id}/os-volume_attachments",
            json={"volumeAttachment": {"volumeId": vid}},
            headers=admin,
        )
        answers.append(resp.status_code)

    threads = [threading.Thread(target=attach, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers)[0] == 200 and sorted(answers)[1] in (400, 409), answers
    with storage.cloud.db.session() as session:
        live = session.query(m.VolumeAttachment).filter_by(volume_id=vid, deleted=False).all()
        assert len(live) == 1
    storage.converge()
    assert storage.show(vid, admin)["status"] == "in-use"


def test_attach_to_a_shelved_server_from_2_20(storage: Storage) -> None:
    compute, admin = storage.compute, storage.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    vid = storage.create(admin)["id"]
    storage.converge()
    assert compute.action(server_id, admin, {"shelve": None}).status_code == 202
    storage.converge()
    assert compute.show(server_id, admin)["status"] == "SHELVED_OFFLOADED"
    url = f"{SERVERS}/{server_id}/os-volume_attachments"
    body = {"volumeAttachment": {"volumeId": vid}}
    assert storage.cloud.client.post(url, json=body, headers=admin).status_code == 409
    at_2_20 = {**admin, "X-OpenStack-Nova-API-Version": "2.20"}
    resp = storage.cloud.client.post(url, json=body, headers=at_2_20)
    assert resp.status_code == 200, resp.text
    assert storage.show(vid, admin)["status"] == "in-use"  # recorded: no guest to plug into
    assert compute.action(server_id, admin, {"unshelve": None}).status_code == 202
    storage.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"
    assert [d.serial for d in compute.loop.driver.disks(server_id)] == [vid]


def test_full_resync_gives_each_server_its_own_volumes(storage: Storage) -> None:
    """The agent's whole list reads every server's volumes at once (no query per server):
    each server still gets exactly its own, in attachment order, and a server without
    volumes gets none."""
    compute, admin = storage.compute, storage.cloud.admin
    servers = [compute.create(admin).json()["server"]["id"] for _ in range(3)]
    volumes = [storage.create(admin)["id"] for _ in range(3)]
    storage.converge()
    plan = {servers[0]: volumes[:2], servers[1]: volumes[2:]}
    for server_id, vids in plan.items():
        for vid in vids:
            resp = storage.cloud.client.post(
                f"{SERVERS}/{server_id}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": vid}},
                headers=admin,
            )
            assert resp.status_code == 200, resp.text
            storage.converge()
    resp = compute.agent_client.get(f"/agent/v1/hosts/{compute.host_id}/instances")
    assert resp.status_code == 200, resp.text
    listed = {i["id"]: i for i in resp.json()["instances"]}
    for server_id in servers:
        got = [d["volume_id"] for d in listed[server_id].get("volumes", [])]
        assert got == plan.get(server_id, []), (server_id, listed[server_id])
    assert [d["device"] for d in listed[servers[0]]["volumes"]] == ["/dev/vdc", "/dev/vdd"]


def _attach(storage: Storage, server_id: str, vid: str, **extra: Any) -> str:
    resp = storage.cloud.client.post(
        f"{SERVERS}/{server_id}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vid, **extra}},
        headers=storage.cloud.admin,
    )
    assert resp.status_code == 200, resp.text
    device: str = resp.json()["volumeAttachment"]["device"]
    storage.converge()
    return device


def test_device_names_are_the_guests(storage: Storage) -> None:
    """The device a volume is reported at is the name the guest's kernel gives it: vda is
    the root disk, vdb the config drive when the server has one (here every server: the
    [compute] force_config_drive default, which a server then shows, as in Nova), and
    virtio-blk takes the lowest free index for a hot-plugged disk. A requested name is
    ignored, as Nova's libvirt driver does; a malformed one is still a 400."""
    compute, admin = storage.compute, storage.cloud.admin
    client = storage.cloud.client
    server_id = compute.create(admin).json()["server"]["id"]
    vids = [storage.create(admin)["id"] for _ in range(4)]
    storage.converge()
    assert compute.show(server_id, admin)["config_drive"] == "True"
    assert _attach(storage, server_id, vids[0], device="/dev/vdb") == "/dev/vdc"
    assert _attach(storage, server_id, vids[1]) == "/dev/vdd"
    # The middle one goes; the next one takes its name (and, on the host, its PCI slot).
    assert client.delete(f"{SERVERS}/{server_id}/os-volume_attachments/{vids[0]}", headers=admin)
    storage.converge()
    assert _attach(storage, server_id, vids[2], device="/dev/vdz") == "/dev/vdc"
    slots = {d.serial: d.pci_slot for d in compute.loop.driver.disks(server_id)}
    assert slots[vids[2]] is not None and slots[vids[2]] < slots[vids[1]]
    resp = client.post(
        f"{SERVERS}/{server_id}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": vids[3], "device": "vdb"}},
        headers=admin,
    )
    assert resp.status_code == 400 and "invalid" in resp.text, resp.text

    # Without a config drive the first volume is vdb.
    storage.cloud.config.compute.force_config_drive = False
    plain = compute.create(admin).json()["server"]["id"]
    storage.converge()
    assert compute.show(plain, admin)["config_drive"] == ""
    assert _attach(storage, plain, vids[3]) == "/dev/vdb"

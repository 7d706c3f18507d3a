"""The volume backend contract: every backend (file, raw, raw preallocated, fake) passes all
of it; the fake skips only the checks of bytes on disk.

Data is judged from outside the driver: patterns written and read back with qemu-io, sizes
and backing files read with qemu-img, loop devices with losetup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumo.drivers import disks
from kumo.drivers.storage import volumes
from kumo.drivers.storage.volumes import (
    SnapshotNotFound,
    VolumeBackend,
    VolumeBackendError,
    VolumeNotFound,
)
from kumo.drivers.storage.volumes.raw import loop_device_problem, loop_devices_of

GIB = 1024**3
KINDS = ["file", "raw", "raw-preallocated", "fake"]


def new_id() -> str:
    return str(uuid.uuid4())


def qemu_img_info(path: str | Path, fmt: str) -> dict[str, Any]:
    done = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", "-f", fmt, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def qemu_io(path: str | Path, fmt: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", fmt, "-c", command, str(path)], capture_output=True, text=True
    )


def write_pattern(path: str | Path, fmt: str, pattern: int, offset: str = "0") -> None:
    done = qemu_io(path, fmt, f"write -P {pattern:#x} {offset} 64k")
    assert done.returncode == 0, done.stderr


def has_pattern(path: str | Path, fmt: str, pattern: int, offset: str = "0") -> bool:
    done = qemu_io(path, fmt, f"read -P {pattern:#x} {offset} 64k")
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


@dataclass
class Rig:
    kind: str
    name: str
    options: dict[str, Any]
    state_dir: Path
    backend: VolumeBackend

    @property
    def real(self) -> bool:
        return self.kind != "fake"

    @property
    def fmt(self) -> str:
        return "qcow2" if self.kind == "file" else "raw"

    @property
    def root(self) -> Path:
        return self.state_dir / "volumes" / self.name

    def restart(self) -> VolumeBackend:
        """A new backend on the same directory: the agent restarted."""
        return volumes.create(self.name, self.state_dir, **self.options)

    def need_data(self) -> None:
        if not self.real:
            pytest.skip("the fake backend keeps no data")


def _require_qemu_tools() -> None:
    missing = [tool for tool in ("qemu-img", "qemu-io") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt install qemu-utils)")


@pytest.fixture(params=KINDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    kind: str = request.param
    if kind != "fake":
        _require_qemu_tools()
    name, options = {
        "file": ("file", {}),
        "raw": ("raw", {}),
        "raw-preallocated": ("raw", {"preallocate": True}),
        "fake": ("fake", {}),
    }[kind]
    state_dir = tmp_path / "state"
    try:
        yield Rig(kind, name, options, state_dir, volumes.create(name, state_dir, **options))
    finally:
        # pytest keeps the last runs' tmp_path: not gigabytes of preallocated volumes.
        shutil.rmtree(state_dir / "volumes", ignore_errors=True)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 64 MiB qcow2 image with 0xab in its first 64 KiB."""
    _require_qemu_tools()
    path = tmp_path / "image.qcow2"
    disks.create_blank(path, 64 << 20)
    write_pattern(path, "qcow2", 0xAB)
    return path


def leftovers(root: Path) -> list[str]:
    """Files a backend should not have left: partial copies."""
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".partial"))


# -- the interface -----------------------------------------------------------------------


def test_implements_the_interface(rig: Rig) -> None:
    assert isinstance(rig.backend, VolumeBackend)
    assert rig.backend.name == rig.name
    capabilities = rig.backend.capabilities()
    assert capabilities["backend"] == rig.name
    assert capabilities["snapshots"] is True
    if rig.kind == "file":
        assert capabilities["thin"] is True and capabilities["formats"] == ["qcow2"]
    if rig.kind == "raw":
        assert capabilities["thin"] is True and capabilities["formats"] == ["raw"]
    if rig.kind == "raw-preallocated":
        assert capabilities["thin"] is False
    assert rig.root.is_dir()
    assert rig.backend.list_volumes() == [] and rig.backend.list_snapshots() == []


def test_registry(tmp_path: Path) -> None:
    assert volumes.available() == ["fake", "file", "raw"]
    with pytest.raises(VolumeBackendError, match="unknown volume backend 'lvm'"):
        volumes.create("lvm", tmp_path)
    with pytest.raises(VolumeBackendError, match="bad options"):
        volumes.create("file", tmp_path, preallocate=True)
    assert list(tmp_path.iterdir()) == []


# -- create, info, idempotence -------------------------------------------------------------


def test_create_is_idempotent_and_sized(rig: Rig) -> None:
    vid = new_id()
    made = rig.backend.create(vid, 1)
    assert made.id == vid and made.size_gb == 1 and made.format == rig.fmt
    assert rig.backend.exists(vid)
    assert rig.backend.info(vid) == made
    # Asked again (an agent retry), even with another size: what is there, untouched.
    assert rig.backend.create(vid, 1) == made
    assert rig.backend.create(vid, 3).size_gb == 1
    assert rig.backend.list_volumes() == [vid]
    # Any spelling of the UUID names the same volume.
    assert rig.backend.info(vid.upper()).id == vid
    if rig.real:
        path = Path(made.path)
        assert path.parent == rig.root
        assert path.name == f"volume-{vid}.{'qcow2' if rig.kind == 'file' else 'raw'}"
        measured = qemu_img_info(path, rig.fmt)
        assert measured["format"] == rig.fmt and measured["virtual-size"] == GIB
        if rig.kind == "raw-preallocated":
            assert made.allocated_bytes >= GIB
        else:
            assert made.allocated_bytes < 16 << 20  # thin: nearly nothing yet
        assert leftovers(rig.root) == []

    rig.backend.delete(vid)
    assert not rig.backend.exists(vid)
    rig.backend.delete(vid)  # already gone: success
    assert rig.backend.list_volumes() == []
    if rig.real:
        assert not Path(made.path).exists()


def test_unknown_ids_and_bad_arguments(rig: Rig, tmp_path: Path) -> None:
    b, ghost = rig.backend, new_id()
    for call in (
        lambda: b.info(ghost),
        lambda: b.extend(ghost, 2),
        lambda: b.connection(ghost),
        lambda: b.clone(new_id(), 1, ghost),
        lambda: b.create_snapshot(new_id(), ghost),
        lambda: b.copy_to_image(ghost, tmp_path / "out.raw", "raw"),
    ):
        with pytest.raises(VolumeNotFound, match=ghost):
            call()
    with pytest.raises(SnapshotNotFound, match=ghost):
        b.create_from_snapshot(new_id(), 1, ghost)
    with pytest.raises(SnapshotNotFound):
        b.snapshot_info(ghost)
    assert not b.exists(ghost)
    b.delete(ghost)
    b.delete_snapshot(ghost)
    b.disconnect(ghost)

    # Ids become file names: anything but a UUID is refused before a path is built.
    for bad in ("../../etc/passwd", "", "volume", f"{ghost}/..", "x" * 36):
        with pytest.raises(VolumeBackendError, match="not a UUID"):
            b.create(bad, 1)
        with pytest.raises(VolumeBackendError, match="not a UUID"):
            b.delete(bad)
        with pytest.raises(VolumeBackendError, match="not a UUID"):
            b.create_snapshot(bad, ghost)
    for size in (0, -1, True, 1.5, "1"):
        with pytest.raises(VolumeBackendError, match="whole number of GiB"):
            b.create(new_id(), size)  # type: ignore[arg-type]
    assert b.list_volumes() == [] and b.list_snapshots() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


# -- extend --------------------------------------------------------------------------------


def test_extend_grows_keeps_data_never_shrinks(rig: Rig) -> None:
    vid = new_id()
    path = rig.backend.create(vid, 1).path
    if rig.real:
        write_pattern(path, rig.fmt, 0xAB)
    grown = rig.backend.extend(vid, 2)
    assert grown.size_gb == 2 and rig.backend.info(vid).size_gb == 2
    assert rig.backend.extend(vid, 2) == grown  # the same size: nothing to do
    with pytest.raises(VolumeBackendError, match="would shrink"):
        rig.backend.extend(vid, 1)
    assert rig.backend.info(vid).size_gb == 2
    if rig.real:
        assert qemu_img_info(path, rig.fmt)["virtual-size"] == 2 * GIB
        assert has_pattern(path, rig.fmt, 0xAB)
        assert has_pattern(path, rig.fmt, 0x00, offset=str(GIB + (1 << 20)))  # new space
        if rig.kind == "raw-preallocated":
            assert rig.backend.info(vid).allocated_bytes >= 2 * GIB


# -- snapshots and copies --------------------------------------------------------------------


def test_snapshot_then_volume_from_it_outlives_both(rig: Rig) -> None:
    b, vid, sid = rig.backend, new_id(), new_id()
    source = b.create(vid, 1).path
    if rig.real:
        write_pattern(source, rig.fmt, 0xAB)
    snap = b.create_snapshot(sid, vid)
    assert snap.id == sid and snap.size_gb == 1
    assert b.create_snapshot(sid, vid) == snap  # idempotent
    assert b.snapshot_info(sid) == snap
    assert b.list_snapshots() == [sid]
    if rig.real:
        write_pattern(source, rig.fmt, 0xCD)  # after the snapshot: not in it
        assert has_pattern(snap.path, rig.fmt, 0xAB)

    b.extend(vid, 3)
    big = b.create_snapshot(new_id(), vid)  # a 3 GiB snapshot
    with pytest.raises(VolumeBackendError, match="does not fit"):
        b.create_from_snapshot(new_id(), 2, big.id)
    b.delete_snapshot(big.id)

    nid = new_id()
    made = b.create_from_snapshot(nid, 2, sid)
    assert made.size_gb == 2 and b.create_from_snapshot(nid, 2, sid) == made
    b.delete_snapshot(sid)
    b.delete_snapshot(sid)  # already gone: success
    b.delete(vid)
    assert b.list_snapshots() == [] and b.list_volumes() == [nid]
    assert b.create_from_snapshot(nid, 2, sid) == made  # a retry, the snapshot gone since
    if rig.real:
        measured = qemu_img_info(made.path, rig.fmt)
        assert "backing-filename" not in measured
        assert measured["virtual-size"] == 2 * GIB
        assert has_pattern(made.path, rig.fmt, 0xAB)
        assert not Path(snap.path).exists()
        assert leftovers(rig.root) == []


def test_clone_is_independent(rig: Rig) -> None:
    b, vid, cid = rig.backend, new_id(), new_id()
    source = b.create(vid, 1).path
    if rig.real:
        write_pattern(source, rig.fmt, 0xAB)
    with pytest.raises(VolumeBackendError, match="clone of itself"):
        b.clone(vid, 1, vid)
    clone = b.clone(cid, 2, vid)
    assert clone.size_gb == 2 and b.clone(cid, 2, vid) == clone
    b.extend(vid, 3)
    with pytest.raises(VolumeBackendError, match="does not fit"):
        b.clone(new_id(), 2, vid)
    if rig.real:
        write_pattern(clone.path, rig.fmt, 0xCD, offset="1M")
        assert has_pattern(source, rig.fmt, 0x00, offset="1M")  # the source is untouched
    b.delete(vid)
    assert b.list_volumes() == [cid]
    if rig.real:
        assert "backing-filename" not in qemu_img_info(clone.path, rig.fmt)
        assert has_pattern(clone.path, rig.fmt, 0xAB)
        assert has_pattern(clone.path, rig.fmt, 0xCD, offset="1M")


# -- from an image, to an image ------------------------------------------------------------


def test_create_from_image(rig: Rig, image: Path, tmp_path: Path) -> None:
    b, vid = rig.backend, new_id()
    made = b.create_from_image(vid, 1, image, "qcow2")
    assert made.size_gb == 1 and made.format == rig.fmt
    assert b.create_from_image(vid, 1, image, "qcow2") == made
    raw_image = tmp_path / "image.raw"
    disks.convert(image, raw_image, "raw", source_format="qcow2")
    from_raw = b.create_from_image(new_id(), 2, raw_image, "raw")
    assert from_raw.size_gb == 2
    if rig.real:
        for volume in (made, from_raw):
            measured = qemu_img_info(volume.path, rig.fmt)
            assert measured["format"] == rig.fmt and "backing-filename" not in measured
            assert measured["virtual-size"] == volume.size_gb * GIB
            assert has_pattern(volume.path, rig.fmt, 0xAB)
        assert leftovers(rig.root) == []


def test_create_from_image_refusals(rig: Rig, image: Path, tmp_path: Path) -> None:
    b = rig.backend
    big = tmp_path / "big.qcow2"
    disks.create_blank(big, 2 * GIB + 1)
    vid = new_id()
    with pytest.raises(VolumeBackendError, match=r"does not fit in a volume of 2 GiB"):
        b.create_from_image(vid, 2, big, "qcow2")
    assert b.create_from_image(vid, 3, big, "qcow2").size_gb == 3

    overlay = disks.create_overlay(image, tmp_path / "overlay.qcow2")
    with pytest.raises(VolumeBackendError, match="backing"):
        b.create_from_image(new_id(), 1, overlay, "qcow2")
    with pytest.raises(VolumeBackendError, match="'vmdk' is not supported"):
        b.create_from_image(new_id(), 1, image, "vmdk")
    garbage = tmp_path / "garbage.qcow2"
    garbage.write_bytes(b"not an image at all" * 100)
    with pytest.raises(VolumeBackendError, match=re.escape(str(garbage))):
        b.create_from_image(new_id(), 1, garbage, "qcow2")
    with pytest.raises(VolumeBackendError, match=re.escape(str(tmp_path / "missing.qcow2"))):
        b.create_from_image(new_id(), 1, tmp_path / "missing.qcow2", "qcow2")
    assert b.list_volumes() == [vid]
    if rig.real:
        assert leftovers(rig.root) == []


def test_copy_to_image(rig: Rig, tmp_path: Path) -> None:
    b, vid = rig.backend, new_id()
    volume = b.create(vid, 1)
    if rig.real:
        write_pattern(volume.path, rig.fmt, 0xAB)
    for fmt in ("qcow2", "raw"):
        target = tmp_path / "images" / f"upload.{fmt}"
        b.copy_to_image(vid, target, fmt)
        measured = qemu_img_info(target, fmt)
        assert measured["virtual-size"] == GIB and "backing-filename" not in measured
        assert sorted(p.name for p in target.parent.iterdir() if "partial" in p.name) == []
        if rig.real:
            assert has_pattern(target, fmt, 0xAB)
    with pytest.raises(VolumeBackendError, match="'vmdk' is not supported"):
        b.copy_to_image(vid, tmp_path / "x.vmdk", "vmdk")
    assert not (tmp_path / "x.vmdk").exists()


def test_a_guest_writing_a_qcow2_header_into_raw_is_not_believed(
    rig: Rig, image: Path, tmp_path: Path
) -> None:
    """A guest owns every byte of a raw volume: when it writes a qcow2 header naming a
    backing file, the backend still treats the file as raw (no format probing)."""
    rig.need_data()
    if rig.fmt != "raw":
        pytest.skip("only a raw volume holds guest bytes at offset 0")
    hostile = disks.create_overlay(image, tmp_path / "hostile.qcow2", size=8 * GIB)
    vid = new_id()
    volume = rig.backend.create(vid, 1)
    header = hostile.read_bytes()
    with open(volume.path, "r+b") as disk:  # what the guest wrote
        disk.write(header)
    assert rig.backend.info(vid).size_gb == 1  # not the header's 8 GiB
    clone = rig.backend.clone(new_id(), 1, vid)
    assert Path(clone.path).read_bytes()[: len(header)] == header  # bytes, copied as bytes
    assert rig.backend.extend(vid, 2).size_gb == 2
    target = tmp_path / "upload.qcow2"
    rig.backend.copy_to_image(vid, target, "qcow2")
    measured = qemu_img_info(target, "qcow2")
    assert measured["virtual-size"] == 2 * GIB and "backing-filename" not in measured


# -- crashes and failures --------------------------------------------------------------------


def test_failed_conversion_leaves_no_volume(
    rig: Rig, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.need_data()
    from kumo.drivers.storage.volumes import local

    real_convert = disks.convert

    def failing_convert(source: Path, target: Path, *args: Any, **kwargs: Any) -> Path:
        real_convert(source, target, *args, **kwargs)  # the copy is (partly) there
        raise disks.DiskError("qemu-img convert failed: simulated write error")

    monkeypatch.setattr(local.disks, "convert", failing_convert)
    vid, sid = new_id(), new_id()
    with pytest.raises(VolumeBackendError, match=f"volume {vid}.*simulated write error"):
        rig.backend.create_from_image(vid, 1, image, "qcow2")
    assert not rig.backend.exists(vid)
    keep = new_id()
    rig.backend.create(keep, 1)
    with pytest.raises(VolumeBackendError, match="simulated"):
        rig.backend.create_snapshot(sid, keep)
    with pytest.raises(VolumeBackendError, match="simulated"):
        rig.backend.clone(vid, 1, keep)
    assert rig.backend.list_volumes() == [keep] and rig.backend.list_snapshots() == []
    assert leftovers(rig.root) == []
    assert sorted(p.name for p in rig.root.iterdir()) == [Path(rig.backend.info(keep).path).name]


def test_killed_mid_create_leaves_only_a_hidden_partial(rig: Rig, image: Path) -> None:
    """The agent is SIGKILLed after the conversion, before the volume is published: the
    final name never appears, the listing ignores the partial file, and delete (or a new
    create) copes."""
    rig.need_data()
    from kumo.drivers.storage.volumes import local

    vid = new_id()
    pid = os.fork()
    if pid == 0:  # the "agent"
        try:

            def die(*_: Any, **__: Any) -> None:
                os.kill(os.getpid(), signal.SIGKILL)

            setattr(local.disks, "grow_to", die)  # noqa: B010 - this process only
            rig.restart().create_from_image(vid, 1, image, "qcow2")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    partial = leftovers(rig.root)
    assert len(partial) == 1 and partial[0].startswith(f".volume-{vid}.")
    assert not rig.backend.exists(vid)
    assert rig.backend.list_volumes() == []
    with pytest.raises(VolumeNotFound):
        rig.backend.info(vid)
    assert rig.backend.create_from_image(vid, 1, image, "qcow2").size_gb == 1  # a retry works
    assert has_pattern(rig.backend.info(vid).path, rig.fmt, 0xAB)
    rig.backend.delete(vid)
    assert list(rig.root.iterdir()) == []  # delete took the crash's leftover too


def test_concurrent_creates_of_one_volume_make_one(rig: Rig, image: Path) -> None:
    vid, errors = new_id(), []
    ready = threading.Barrier(4)

    def create() -> None:
        ready.wait()
        try:
            rig.backend.create_from_image(vid, 1, image, "qcow2")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rig.backend.list_volumes() == [vid]
    if rig.real:
        assert leftovers(rig.root) == []
        assert has_pattern(rig.backend.info(vid).path, rig.fmt, 0xAB)


# -- in use, capacity, restart ---------------------------------------------------------------


class Holder:
    """qemu-io holding a volume open the way a running QEMU does (with its image lock),
    driven command by command over stdin. Its cache mode is writethrough: each write is
    flushed (qcow2 metadata too) before qemu-io says it is done, as a guest that flushed.

    qemu-io reads one command per wakeup of its stdin: send the next command only after
    the previous one answered, or it waits for input that is already in its buffer."""

    def __init__(self, path: str, fmt: str) -> None:
        self.proc = subprocess.Popen(
            ["qemu-io", "-t", "writethrough", "-f", fmt, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )

    def run(self, command: str, expect: str) -> None:
        """Send a command and wait for the line saying it was done."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if expect in line:
                return
            assert "failed" not in line.lower(), line
        raise AssertionError(f"qemu-io exited before {expect!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def test_snapshot_and_clone_of_a_volume_in_use(rig: Rig) -> None:
    rig.need_data()
    b, vid = rig.backend, new_id()
    path = b.create(vid, 1).path
    holder = Holder(path, rig.fmt)
    try:
        # Written and flushed: only what the guest flushed is promised in the copy.
        holder.run("write -P 0xab 0 64k", "wrote 65536/65536")
        assert b.info(vid).size_gb == 1
        snap = b.create_snapshot(new_id(), vid)
        clone = b.clone(new_id(), 1, vid)
        if rig.fmt == "qcow2":
            # The lock is real, and growing is the hypervisor's job while QEMU holds the
            # volume (block_resize). (qemu-io shares more than QEMU's virtio-blk does, so
            # a raw file would grow under it: not a test of what QEMU allows.)
            with pytest.raises(VolumeBackendError, match=f"extending volume {vid}.*lock"):
                b.extend(vid, 2)
    finally:
        holder.close()
    assert has_pattern(snap.path, rig.fmt, 0xAB)
    assert has_pattern(clone.path, rig.fmt, 0xAB)
    assert b.extend(vid, 2).size_gb == 2  # released: it grows


def test_capacity_moves(rig: Rig) -> None:
    b = rig.backend
    before = b.capacity()
    assert 0 <= before.free_gb <= before.total_gb
    assert before.provisioned_gb == 0
    vid = new_id()
    b.create(vid, 2)
    assert b.capacity().provisioned_gb == 2
    b.create_snapshot(new_id(), vid)
    b.extend(vid, 3)
    after = b.capacity()
    assert after.provisioned_gb == 3 + 2
    if rig.kind == "fake":
        assert after.free_gb == before.free_gb - 5
    for sid in b.list_snapshots():
        b.delete_snapshot(sid)
    b.delete(vid)
    assert b.capacity().provisioned_gb == 0


def test_restart_finds_everything(rig: Rig) -> None:
    vid, sid = new_id(), new_id()
    volume = rig.backend.create(vid, 1)
    snap = rig.backend.create_snapshot(sid, vid)
    again = rig.restart()
    assert again.list_volumes() == [vid] and again.list_snapshots() == [sid]
    assert again.info(vid) == volume and again.snapshot_info(sid) == snap
    assert again.connection(vid) == rig.backend.connection(vid)
    again.delete(vid)
    assert not rig.backend.exists(vid)


def test_connection_is_the_file(rig: Rig) -> None:
    vid = new_id()
    volume = rig.backend.create(vid, 1)
    connection = rig.backend.connection(vid)
    assert connection == rig.backend.connection(vid)
    assert connection.path == volume.path
    assert connection.kind == ("file" if rig.real else "fake")
    assert connection.format == volume.format
    rig.backend.disconnect(vid)  # nothing to undo
    rig.backend.disconnect(vid)


# -- loop devices (raw) ----------------------------------------------------------------------


@pytest.fixture
def loop_rig(tmp_path: Path) -> Iterator[Rig]:
    _require_qemu_tools()
    problem = loop_device_problem()
    if problem:
        pytest.skip(f"loop devices unusable here: {problem}")
    state_dir = tmp_path / "state"
    options = {"loop_device": True}
    rig = Rig("raw", "raw", options, state_dir, volumes.create("raw", state_dir, **options))
    try:
        yield rig
    finally:  # whatever the test did, no loop device outlives it
        for path in rig.root.iterdir():
            for device in loop_devices_of(path):
                subprocess.run(["losetup", "-d", device], check=False)
        shutil.rmtree(rig.root, ignore_errors=True)


def test_loop_device_connect_extend_disconnect(loop_rig: Rig) -> None:
    b, vid = loop_rig.backend, new_id()
    volume = b.create(vid, 1)
    assert b.capabilities()["loop_device"] is True
    connection = b.connection(vid)
    assert connection.kind == "block" and connection.format == "raw"
    assert connection.path.startswith("/dev/loop")
    assert Path(connection.path).is_block_device()
    assert b.connection(vid) == connection  # the same device, not a second one
    assert loop_rig.restart().connection(vid) == connection  # found again after a restart
    assert loop_devices_of(Path(volume.path)) == [connection.path]

    write_pattern(connection.path, "raw", 0xAB)  # through the device, into the file
    assert has_pattern(volume.path, "raw", 0xAB)

    b.extend(vid, 2)  # the device sees the new size
    size = subprocess.run(
        ["blockdev", "--getsize64", connection.path], capture_output=True, text=True, check=True
    )
    assert int(size.stdout) == 2 * GIB

    b.disconnect(vid)
    assert loop_devices_of(Path(volume.path)) == []
    b.disconnect(vid)  # already detached

    again = b.connection(vid)
    assert loop_devices_of(Path(volume.path)) == [again.path]
    b.delete(vid)  # detaches first
    assert not Path(volume.path).exists()
    listed = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True)
    assert str(volume.path) not in listed.stdout

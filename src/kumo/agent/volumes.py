"""The agent's volume loop: makes this host's storage backends hold what the API asked for
(create, delete, extend volumes; create and delete snapshots) and reports each outcome.

Level-triggered like the compute loop: every answer of the long-poll lists the volumes and
snapshots with a request outstanding, and each step is idempotent, so a step repeated after
a crash (the volume file is already there, the snapshot already gone) just reports again.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from kumo.drivers.storage.volumes.base import VolumeBackend, VolumeBackendError

log = logging.getLogger(__name__)

# Fetches an image's data to a local file: (image id) -> (path, disk format).
ImageFetcher = Callable[[str], tuple[Path, str]]


class VolumeLoop:
    def __init__(
        self,
        client: httpx.Client,
        api: str,
        host_id: str,
        backends: Mapping[str, VolumeBackend],
        fetch_image: ImageFetcher | None = None,
        poll_wait: float = 20.0,
        scratch_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.api = api
        self.base = f"{api}/hosts/{host_id}"
        self.scratch_dir = scratch_dir or Path(tempfile.gettempdir()) / "kumo-volume-uploads"
        self.backends = backends
        self.fetch_image = fetch_image
        self.poll_wait = poll_wait
        self._lock = threading.Lock()

    # --- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        mark = -1
        while not stop.is_set():
            try:
                params: dict[str, Any] = {"since": mark, "wait": self.poll_wait if mark >= 0 else 0}
                response = self.client.get(
                    f"{self.base}/volumes", params=params, timeout=self.poll_wait + 10
                )
                response.raise_for_status()
                data = response.json()
                mark = int(data["mark"])
                self.reconcile(data)
            except httpx.HTTPError as exc:
                log.debug("volumes: could not fetch work: %s", exc)
                stop.wait(1.0)
            except Exception:
                log.exception("volumes: reconcile failed; retrying")
                stop.wait(2.0)

    def sync_once(self) -> int:
        """One full pass in this thread (tests); returns how many requests were handled."""
        response = self.client.get(f"{self.base}/volumes")
        response.raise_for_status()
        return self.reconcile(response.json())

    def reconcile(self, data: dict[str, Any]) -> int:
        handled = 0
        with self._lock:
            # Snapshots before volumes: a volume made from a snapshot needs it, and a
            # cascade delete removes the snapshots before their volume.
            for item in data.get("snapshots", []):
                if item["generation"] > item["observed_generation"]:
                    self._snapshot(item)
                    handled += 1
            for item in data.get("volumes", []):
                if item["generation"] > item["observed_generation"]:
                    self._volume(item)
                    handled += 1
        return handled

    # --- one request ------------------------------------------------------------------
    def _backend(self, name: str) -> VolumeBackend:
        backend = self.backends.get(name)
        if backend is None:
            raise VolumeBackendError(
                f"this host does not serve the {name} backend (it serves "
                f"{', '.join(sorted(self.backends)) or 'none'}); check [volumes] backends"
            )
        return backend

    def _volume(self, item: dict[str, Any]) -> None:
        volume_id, status = item["id"], item["status"]
        outcome, fault = "done", None
        try:
            backend = self._backend(item["backend"])
            if status == "deleting":
                backend.delete(volume_id)
                outcome = "gone"
            elif status == "extending":
                backend.extend(volume_id, int(item["size"]))
            elif status in ("creating", "downloading"):
                self._create(backend, item)
            elif status == "uploading":
                self._upload(backend, item)
            else:
                return
        except (VolumeBackendError, OSError) as exc:
            log.warning("volume %s: %s failed: %s", volume_id, status, exc)
            outcome, fault = "error", str(exc) or exc.__class__.__name__
        self._report("volumes", volume_id, item["generation"], outcome, fault)

    def _create(self, backend: VolumeBackend, item: dict[str, Any]) -> None:
        volume_id, size = item["id"], int(item["size"])
        if backend.exists(volume_id):
            return  # made before a crash, or this request repeated
        source = item.get("source") or {}
        kind = source.get("kind")
        if kind == "image":
            if self.fetch_image is None:
                raise VolumeBackendError("this agent cannot fetch images")
            path, disk_format = self.fetch_image(str(source["id"]))
            backend.create_from_image(volume_id, size, path, disk_format)
        elif kind == "snapshot":
            backend.create_from_snapshot(volume_id, size, str(source["id"]))
        elif kind == "volume":
            backend.clone(volume_id, size, str(source["id"]))
        else:
            backend.create(volume_id, size)

    def _upload(self, backend: VolumeBackend, item: dict[str, Any]) -> None:
        """os-volume_upload_image: the volume as one image file, streamed to the API."""
        upload = item.get("upload") or {}
        image_id = upload.get("image_id")
        if not image_id:
            raise VolumeBackendError("no image is waiting for this upload")
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        target = self.scratch_dir / f"upload-{item['id']}-{image_id}"
        try:
            backend.copy_to_image(item["id"], target, str(upload.get("disk_format") or "raw"))
            with target.open("rb") as data:
                response = self.client.put(
                    f"{self.api}/images/{image_id}/file",
                    content=iter(lambda: data.read(1 << 20), b""),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(target.stat().st_size),
                    },
                    timeout=3600,
                )
            if response.status_code >= 500:
                response.raise_for_status()  # the API is in trouble: retried next pass
            if response.status_code != 204:
                raise VolumeBackendError(
                    f"the image service refused the upload ({response.status_code}): "
                    f"{response.text[:500]}"
                )
        finally:
            target.unlink(missing_ok=True)

    def _snapshot(self, item: dict[str, Any]) -> None:
        snapshot_id, status = item["id"], item["status"]
        outcome, fault = "done", None
        try:
            backend = self._backend(item["backend"])
            if status == "deleting":
                backend.delete_snapshot(snapshot_id)
                outcome = "gone"
            elif status == "creating":
                backend.create_snapshot(snapshot_id, item["volume_id"])
            else:
                return
        except (VolumeBackendError, OSError) as exc:
            log.warning("snapshot %s: %s failed: %s", snapshot_id, status, exc)
            outcome, fault = "error", str(exc) or exc.__class__.__name__
        self._report("snapshots", snapshot_id, item["generation"], outcome, fault)

    def _report(
        self, kind: str, ident: str, generation: int, outcome: str, fault: str | None
    ) -> None:
        response = self.client.post(
            f"{self.base}/{kind}/{ident}/outcome",
            json={"generation": generation, "outcome": outcome, "fault": fault},
        )
        if response.status_code == 404:
            return  # deleted meanwhile
        response.raise_for_status()

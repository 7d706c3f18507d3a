"""The agent's compute loop: make the guests of this host match what the API asks.

Level-triggered (DESIGN.md section 3.2): the agent long-polls the whole list of its servers,
acts on every server whose ``generation`` is ahead of what it last observed (a new request:
create, stop, reboot, delete...), and reports power state with the generation it acted on.
Servers with no pending request are only observed, as Nova's power-state sync does: a guest
that powered itself off is reported SHUTOFF, not restarted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from kumo.agent.disks import GuestDisks, root_volume
from kumo.agent.guest_watch import GuestWatch
from kumo.drivers.hypervisor.base import (
    DISPLAY_MODELS,
    GuestSpec,
    GuestState,
    HypervisorDriver,
    HypervisorError,
    PowerState,
)
from kumo.drivers.storage.volumes.base import VolumeBackend
from kumo.protocol import ConsoleEndpoints

log = logging.getLogger(__name__)

SpecBuilder = Callable[[dict[str, Any]], GuestSpec]
CONSOLE_TAIL = 64 * 1024
_UNSEEN = object()  # "not looked at": no consoles key in the observation
SNAPSHOT_TASKS = ("image_snapshot", "image_pending_upload", "image_uploading")
SHELVE_TASKS = (
    "shelving",
    "shelving_image_pending_upload",
    "shelving_image_uploading",
    "shelving_offloading",
)
MIGRATION_ENDED_BADLY = ("failed", "error", "cancelled")
# How long the destination waits for the last of the guest's state after the switch.
FINISH_WAIT = 30.0
PROGRESS_INTERVAL = 1.0
UPLOAD_CHUNK = 1 << 20


class SnapshotFailed(RuntimeError):
    """A snapshot could not be taken or uploaded; the message goes to the instance action."""


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(UPLOAD_CHUNK):
            yield chunk


def minimal_spec(item: dict[str, Any]) -> GuestSpec:
    """A guest spec without disks: enough for the fake driver."""
    flavor = item["flavor"]
    return GuestSpec(
        uuid=item["id"], name=item["name"], vcpus=int(flavor["vcpus"]), memory_mb=int(flavor["ram"])
    )


def incoming_spec(spec: GuestSpec, migration: Mapping[str, Any]) -> GuestSpec:
    """The spec a live migration's destination starts the guest with: the one built for
    this host, with the display the source runs it with (QEMU moves a guest only between
    the same devices; a guest from before displays has none, whatever its image would get
    now). A control plane that does not say (older than displays) leaves the spec's."""
    if "source_display" not in migration:
        return spec
    display = migration["source_display"]
    if display not in DISPLAY_MODELS:
        raise HypervisorError(f"the source runs the guest with an unknown display {display!r}")
    return dataclasses.replace(spec, display=display)


class ComputeLoop:
    def __init__(
        self,
        client: httpx.Client,
        api: str,
        host_id: str,
        driver: HypervisorDriver,
        build_spec: SpecBuilder = minimal_spec,
        workers: int = 8,
        poll_wait: float = 20.0,
        console_interval: float = 30.0,
        build_rescue: SpecBuilder = minimal_spec,
        scratch_dir: Path | None = None,
        migration_slice: float | None = None,
        volume_backends: Mapping[str, VolumeBackend] | None = None,
    ) -> None:
        self.client = client
        self.api = api
        self.base = f"{api}/hosts/{host_id}"
        self.driver = driver
        self.build_spec = build_spec
        self.build_rescue = build_rescue
        self.scratch_dir = scratch_dir  # where snapshots wait for upload (default: tmp)
        self.disks = GuestDisks(client, self.base, driver, volume_backends or {})
        # How long one pass watches an outgoing migration (None: until it ends). Tests use
        # a short slice to act between passes; the migration goes on meanwhile.
        self.migration_slice = migration_slice
        self.poll_wait = poll_wait
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="compute")
        self._lock = threading.Lock()
        self._inflight: dict[str, dict[str, Any] | None] = {}
        self._reported: dict[str, tuple[int, str]] = {}
        # uuid -> the console endpoints last reported (a restarted QEMU has new ports).
        self._consoles_reported: dict[str, object] = {}
        self.console_interval = console_interval
        self._console_sent: dict[str, bytes] = {}  # uuid -> digest of the tail last posted

    # --- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        consoles = threading.Thread(
            target=self.run_consoles, args=(stop,), name="consoles", daemon=True
        )
        consoles.start()
        watch = GuestWatch(self.driver, self.running_guests, self.recheck)
        watcher = threading.Thread(target=watch.run, args=(stop,), name="guest-watch", daemon=True)
        watcher.start()
        mark = -1
        while not stop.is_set():
            try:
                params: dict[str, Any] = {
                    "since": mark,
                    "wait": self.poll_wait if mark >= 0 else 0,
                    "pending_only": True,
                }
                response = self.client.get(
                    f"{self.base}/instances", params=params, timeout=self.poll_wait + 10
                )
                response.raise_for_status()
                data = response.json()
            except httpx.HTTPError as exc:
                log.debug("could not fetch work: %s", exc)
                stop.wait(1.0)
                continue
            mark = int(data["mark"])
            for uuid in data.get("consoles", []):
                self._pool.submit(self.post_console, str(uuid), True)
            for item in data["instances"]:
                self.submit(item)
        self._pool.shutdown(wait=True, cancel_futures=True)
        consoles.join(10)
        watcher.join(10)

    def run_consoles(self, stop: threading.Event) -> None:
        while not stop.wait(self.console_interval):
            try:
                self.post_consoles()
            except Exception:
                log.exception("posting console logs failed")

    def post_consoles(self) -> int:
        """Post the console tail of every guest this agent reported on, when it changed
        since the last post (one file read and a hash per guest: cheap). Returns how many
        were posted. Someone reading a console meanwhile asks for it at once (the long-poll
        answer's ``consoles``): this periodic post keeps the stored copy from aging."""
        posted = sum(1 for uuid in list(self._reported) if self.post_console(uuid))
        for uuid in set(self._console_sent) - set(self._reported):
            self._console_sent.pop(uuid, None)
        return posted

    def post_console(self, uuid: str, force: bool = False) -> bool:
        """Post one guest's console tail if it changed since the last post (or ``force``:
        a reader is waiting for it). True when posted."""
        try:
            tail = self.driver.console_log(uuid, CONSOLE_TAIL)
        except HypervisorError:
            return False
        digest = hashlib.blake2b(tail, digest_size=16).digest()
        if not force and self._console_sent.get(uuid) == digest:
            return False
        try:
            response = self.client.post(
                f"{self.base}/instances/{uuid}/console",
                json={"content": tail.decode(errors="replace")},
            )
        except httpx.HTTPError as exc:
            log.debug("could not post console of %s: %s", uuid, exc)
            return False
        if response.is_success:
            self._console_sent[uuid] = digest
            return True
        return False  # 404: deleted meanwhile

    def sync_once(self) -> int:
        """Fetch the host's servers and reconcile each, in this thread (tests, one-shot
        `kumo host sync`-style runs). Returns how many servers were looked at."""
        response = self.client.get(f"{self.base}/instances")
        response.raise_for_status()
        items = response.json()["instances"]
        for item in items:
            self.reconcile(item)
        return len(items)

    def submit(self, item: dict[str, Any]) -> None:
        """Work on one server, never twice at once; a newer item waits for the running one."""
        with self._lock:
            if item["id"] in self._inflight:
                self._inflight[item["id"]] = item
                return
            self._inflight[item["id"]] = None
        self._pool.submit(self._work, item)

    def _work(self, item: dict[str, Any]) -> None:
        self._guarded(item["id"], self.reconcile, item)

    def _guarded(self, uuid: str, work: Callable[..., None], *args: Any) -> None:
        """Run one piece of work on a server (it holds the server's ``_inflight`` slot),
        then the newer item that arrived meanwhile, if any."""
        try:
            work(*args)
        except httpx.HTTPError as exc:
            # The API is restarting or gone: the next poll (a full list) retries.
            log.warning("server %s: could not report to the agent API: %s", uuid, exc)
        except Exception:
            log.exception("server %s: reconcile failed", uuid)
        with self._lock:
            newer = self._inflight.pop(uuid, None)
        if newer is not None:
            self.submit(newer)

    # --- the guest watch (kumo.agent.guest_watch) -------------------------------------
    def running_guests(self) -> list[str]:
        """The guests this agent last reported running: the ones the watch looks at."""
        return [uuid for uuid, (_, power) in list(self._reported.items()) if power == "running"]

    def recheck(self, uuid: str) -> None:
        """The watch saw the guest's process go: look at it and report what it is now,
        unless the server is being worked on (that work reports it)."""
        with self._lock:
            if uuid in self._inflight:
                return
            self._inflight[uuid] = None
        self._pool.submit(self._guarded, uuid, self.observe, uuid)

    def observe(self, uuid: str) -> None:
        """Report the guest's state under the generation last reported, if it changed:
        only an observation, never an action (whether a guest that exited is started
        again is the control plane's call: kumo.core.compute.guest_restart)."""
        known = self._reported.get(uuid)
        if known is None:
            return
        state = self.driver.get_state(uuid)
        if str(state.power_state) != known[1]:
            self.report(
                uuid, known[0], state.power_state, consoles=state.consoles, detail=state.detail
            )

    # --- one server -------------------------------------------------------------------
    def reconcile(self, item: dict[str, Any]) -> None:
        uuid, generation = item["id"], int(item["generation"])
        pending = generation > int(item["observed_generation"])
        migration = item.get("migration")
        on_host = item.get("on_host", True)
        if migration is not None and not migration.get("done"):
            try:
                handled = self.migrate(item, migration)
            except HypervisorError as exc:
                log.warning("server %s: migration %s: %s", uuid, migration["uuid"], exc)
                handled = True  # the next pass tries again
            if handled or not on_host:
                return
        elif not on_host:
            return
        try:
            if item["desired_state"] == "deleted":
                self.driver.destroy(uuid)
                self.report(uuid, generation, PowerState.NOSTATE, gone=True)
                return
            if pending and self._waits_for_volumes(item, generation):
                return
            if pending and item.get("task_state") in SNAPSHOT_TASKS:
                self.take_snapshot(item)
                return
            if pending and item.get("task_state") in SHELVE_TASKS:
                self.shelve(item)
                return
            if pending and item.get("crash_dump"):
                self.crash_dump(item)
                return
            state = self.converge(item) if pending else self.driver.get_state(uuid)
            if item.get("volumes") and (pending or self.disks.pending(item)):
                self.disks.sync(item)
        except HypervisorError as exc:
            log.warning("server %s: %s", uuid, exc)
            self.report(
                uuid,
                generation,
                self.driver.get_state(uuid).power_state,
                fault=str(exc) or exc.__class__.__name__,
            )
            return
        if (
            pending
            or self._reported.get(uuid) != (generation, state.power_state)
            or self._consoles_reported.get(uuid, _UNSEEN) != state.consoles
        ):
            self.report(
                uuid, generation, state.power_state, consoles=state.consoles, detail=state.detail
            )

    def _waits_for_volumes(self, item: dict[str, Any], generation: int) -> bool:
        """A guest whose boot volume is still being made starts once it exists (the volume
        loop's report wakes this loop); one whose volume could not be made is a fault."""
        if self.driver.get_state(item["id"]).power_state != PowerState.NOSTATE:
            return False
        root = root_volume(item)
        if root is None:
            return False
        status = root.get("volume_status")
        if status == "error":
            why = root.get("volume_fault") or "see the volume"
            self.report(
                item["id"],
                generation,
                PowerState.NOSTATE,
                fault=f"its boot volume {root['volume_id']} could not be made: {why}",
            )
            return True
        return status in ("creating", "downloading")

    def take_snapshot(self, item: dict[str, Any]) -> None:
        """createImage: copy the root disk, upload it into the waiting image, report. A
        failure leaves the guest as it was and is reported as the request's error (the API
        deletes the image); an unreachable API is retried with the next poll."""
        uuid, generation = item["id"], int(item["generation"])
        error = None
        try:
            self._upload_root_disk(item, "image_pending_upload")
        except (HypervisorError, SnapshotFailed, OSError) as exc:
            log.warning("server %s: snapshot failed: %s", uuid, exc)
            error = str(exc) or exc.__class__.__name__
        self.report(uuid, generation, self.driver.get_state(uuid).power_state, task_error=error)

    def _upload_root_disk(self, item: dict[str, Any], uploading_step: str) -> None:
        """Copy the guest's root disk to scratch space and upload it into the image the
        request waits for (``snapshot_image_id``), telling the API when the copy is taken."""
        uuid, generation = item["id"], int(item["generation"])
        image_id = item.get("snapshot_image_id")
        if not image_id:
            raise SnapshotFailed("no image is waiting for this snapshot")
        scratch = self.scratch_dir or Path(tempfile.gettempdir())
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / f"snapshot-{uuid}-{image_id}.qcow2"
        try:
            self.driver.snapshot(uuid, target)
            self.step(uuid, generation, uploading_step)
            self.upload(image_id, target)
        finally:
            target.unlink(missing_ok=True)

    def shelve(self, item: dict[str, Any]) -> None:
        """shelve: stop the guest cleanly, upload its root disk, then destroy the guest and
        its files and report it gone (the API offloads the server: no host, no claim). A
        failure before the upload is done leaves the guest stopped and is the request's
        error; once the image holds the disk (``shelved_image_ready``), a repeated pass
        only finishes the offload."""
        uuid, generation = item["id"], int(item["generation"])
        if not item.get("shelved_image_ready"):
            try:
                self._stop(uuid)
                self._upload_root_disk(item, "shelving_image_pending_upload")
            except (HypervisorError, SnapshotFailed, OSError) as exc:
                log.warning("server %s: shelve failed: %s", uuid, exc)
                error = str(exc) or exc.__class__.__name__
                power = self.driver.get_state(uuid).power_state
                self.report(uuid, generation, power, task_error=error)
                return
        self.driver.destroy(uuid)
        self.report(uuid, generation, PowerState.NOSTATE, gone=True)

    def _stop(self, uuid: str) -> GuestState:
        """Power the guest off from any state it can be in (a suspended one is resumed
        first: its memory would be lost otherwise)."""
        d = self.driver
        state = d.get_state(uuid)
        if state.power_state == PowerState.SUSPENDED:
            state = d.resume(uuid)
        if state.power_state in (PowerState.RUNNING, PowerState.PAUSED, PowerState.CRASHED):
            state = d.power_off(uuid)  # a crashed one is then just off (SHUTDOWN)
        return state

    def crash_dump(self, item: dict[str, Any]) -> None:
        """trigger_crash_dump: one NMI to the guest, nothing else converged (an ERROR server
        is not restarted by it). A guest that cannot take it is the request's error, not
        the server's: reported as ``task_error``."""
        uuid, generation = item["id"], int(item["generation"])
        error = None
        try:
            self.driver.inject_nmi(uuid)
        except HypervisorError as exc:
            log.warning("server %s: crash dump failed: %s", uuid, exc)
            error = str(exc) or exc.__class__.__name__
        self.report(uuid, generation, self.driver.get_state(uuid).power_state, task_error=error)

    def step(self, uuid: str, generation: int, task_state: str) -> None:
        """Tell the API a request moved on (best effort: the result is what counts)."""
        response = self.client.post(
            f"{self.base}/instances/{uuid}/task",
            json={"generation": generation, "task_state": task_state},
        )
        if response.status_code not in (204, 404, 409):
            response.raise_for_status()

    def upload(self, image_id: str, path: Path) -> None:
        response = self.client.put(
            f"{self.api}/images/{image_id}/file",
            content=_chunks(path),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(path.stat().st_size),
            },
            timeout=3600,
        )
        if response.status_code >= 500:
            response.raise_for_status()  # the API is in trouble: retry with the next poll
        if response.status_code != 204:
            raise SnapshotFailed(
                f"the image service refused the snapshot ({response.status_code}): "
                f"{response.text[:500]}"
            )

    def converge(self, item: dict[str, Any]) -> GuestState:
        uuid, desired = item["id"], item["desired_state"]
        d = self.driver
        state = d.get_state(uuid)
        if desired == "rescued":
            if state.power_state == PowerState.NOSTATE:
                d.spawn(self.build_spec(item))  # an ERROR server whose guest never was
            return d.rescue(uuid, self.build_rescue(item))
        if state.power_state != PowerState.NOSTATE and d.is_rescued(uuid):
            state = d.unrescue(uuid)  # unrescue, or any other request ends the rescue
        if (
            item.get("task_state") in ("resize_migrating", "resize_reverting")
            and state.power_state != PowerState.NOSTATE
        ):
            # Resize in place: shut down, take the flavor's size, then converge as usual.
            if state.power_state == PowerState.SUSPENDED:
                d.resume(uuid)
            d.power_off(uuid)
            flavor = item["flavor"]
            # A root volume keeps its own size (Nova resizes only local disks).
            disk_gb = int(flavor.get("disk", 0)) if item.get("image_id") else 0
            state = d.resize(uuid, int(flavor["vcpus"]), int(flavor["ram"]), disk_gb)
        if item.get("task_state") == "rebuilding" and state.power_state != PowerState.NOSTATE:
            d.destroy(uuid)  # a rebuild starts over from the (new) image
            state = d.get_state(uuid)
        if state.power_state == PowerState.NOSTATE:
            state = d.spawn(self.build_spec(item))
        elif item.get("reboot_kind") and state.power_state == PowerState.RUNNING:
            state = d.reboot(uuid, "hard" if item["reboot_kind"] == "hard" else "soft")
        power = state.power_state
        if desired == "active":
            if power == PowerState.PAUSED:
                state = d.unpause(uuid)
            elif power == PowerState.SUSPENDED:
                state = d.resume(uuid)
            elif power in (PowerState.SHUTDOWN, PowerState.CRASHED):
                state = d.power_on(uuid)
        elif desired == "stopped":
            state = self._stop(uuid)
        elif desired == "paused" and power == PowerState.RUNNING:
            state = d.pause(uuid)
        elif desired == "suspended":
            if power == PowerState.PAUSED:
                state = d.unpause(uuid)
            if state.power_state == PowerState.RUNNING:
                state = d.suspend(uuid)
        return state

    # --- live migration ---------------------------------------------------------------
    #
    # Each side does its part and reports it (kumo.core.compute.migrations has the state
    # machine); what to do is decided from the migration's status every pass, so a pass
    # repeated after a crash or a lost answer does no harm.

    def migrate(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        """This host's part in a migration. True: the server needs nothing else this pass."""
        if migration.get("type") == "evacuation":
            return self._evacuation(item, migration)
        if migration.get("type") == "migration":
            if migration["role"] == "dest":
                return self._cold_dest(item, migration)
            return self._cold_source(item, migration)
        if migration["role"] == "dest":
            return self._migrate_dest(item, migration)
        return self._migrate_source(item, migration)

    def _event(self, migration: dict[str, Any], **body: Any) -> dict[str, Any] | None:
        """Report on the migration; None when the API refused it as stale (it moved on)."""
        response = self.client.post(f"{self.base}/migrations/{migration['uuid']}", json=body)
        if response.status_code in (404, 409):
            log.info(
                "migration %s: %s refused: %s",
                migration["uuid"],
                body.get("event"),
                response.text[:300],
            )
            return None
        response.raise_for_status()
        answer: dict[str, Any] = response.json()["migration"]
        return answer

    def _forget(self, uuid: str) -> None:
        self._reported.pop(uuid, None)
        self._consoles_reported.pop(uuid, None)
        self._console_sent.pop(uuid, None)

    def _evacuation(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        """The destination rebuilds the server like any rebuild (False: converge it). The
        evacuated host, back from the dead, must not restart the guest it still has: the
        server is another host's now, so it destroys the guest and its files."""
        if migration["role"] == "dest":
            return False
        if item.get("on_host"):  # evacuated back here since: the server is ours again
            self._event(migration, event="cleaned")
            return False
        self.driver.destroy(item["id"])
        self._forget(item["id"])
        self._event(migration, event="cleaned")
        return True

    def _cold_source(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        """Cold migration, source: shut the guest off and serve its disk; once the
        destination has it, stop serving; destroy the copy on confirm; after a revert or a
        failure, the server is this host's again (converge it: it starts the guest)."""
        uuid, status, on_host = item["id"], migration["status"], item.get("on_host", True)
        d = self.driver
        if status == "pre-migrating" and on_host:
            state = d.get_state(uuid)
            if state.power_state == PowerState.SUSPENDED:
                d.resume(uuid)
            if d.get_state(uuid).pid is not None:
                d.power_off(uuid)
            try:
                endpoint = d.export_disk(uuid)
            except HypervisorError as exc:
                self._event(
                    migration,
                    event="failed",
                    cleaned=True,
                    message=f"the source could not serve the disk: {exc}",
                )
                return False
            self._event(migration, event="exported", endpoint=endpoint)
            return True
        if status in ("migrating", "finished", "reverting"):
            if status != "migrating":
                d.end_export(uuid)  # the destination has its copy
            return True
        if status in ("confirming", "confirmed") or (
            status in MIGRATION_ENDED_BADLY and not on_host
        ):
            d.destroy(uuid)  # the server lives on the destination: this copy is stale
            self._forget(uuid)
            self._event(migration, event="cleaned")
            return True
        d.end_export(uuid)  # reverted, or failed before the switch: ours again
        self._event(migration, event="cleaned")
        return not on_host

    def _cold_dest(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        """Cold migration, destination: copy the served disk into place (the switch follows
        the report); the guest is then spawned from it like any server of this host."""
        uuid, status, on_host = item["id"], migration["status"], item.get("on_host", True)
        d = self.driver
        if status == "migrating" and not on_host:
            try:
                d.import_disk(uuid, migration["endpoint"] or {})
            except HypervisorError as exc:
                d.destroy(uuid)
                self._event(
                    migration,
                    event="failed",
                    cleaned=True,
                    message=f"the destination could not copy the disk: {exc}",
                )
                return True
            self._event(migration, event="imported")
            return True
        if status == "reverting" and on_host:
            d.destroy(uuid)  # the source takes the server back with the disk it kept
            self._forget(uuid)
            self._event(migration, event="reverted")
            return True
        if status in MIGRATION_ENDED_BADLY and not on_host:
            d.destroy(uuid)
            self._forget(uuid)
            self._event(migration, event="cleaned")
            return True
        return not on_host  # finished: converge the guest here (VERIFY_RESIZE)

    def _migrate_dest(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        uuid, status, on_host = item["id"], migration["status"], item.get("on_host", True)
        d = self.driver
        if on_host:  # after the switch: continue the guest here
            deadline = time.monotonic() + FINISH_WAIT
            while True:
                try:
                    d.finish_incoming(uuid, run=item["desired_state"] == "active")
                    break
                except HypervisorError:
                    if time.monotonic() > deadline or d.get_state(uuid).pid is None:
                        raise
                    time.sleep(0.05)
            self._event(migration, event="finished")
            self._forget(uuid)
            return False  # now an ordinary server of this host: observe and report it
        if status in ("queued", "preparing"):
            try:
                endpoint = d.prepare_incoming(
                    incoming_spec(self.build_spec(item), migration),
                    bool(migration["block_migration"]),
                )
            except HypervisorError as exc:
                d.destroy(uuid)
                self._event(
                    migration,
                    event="failed",
                    cleaned=True,
                    message=f"the destination could not prepare: {exc}",
                )
                return True
            self._event(migration, event="ready", endpoint=endpoint)
        elif status in MIGRATION_ENDED_BADLY:
            d.destroy(uuid)  # the guest stayed on the source: drop the copy waiting here
            self._forget(uuid)
            self._event(migration, event="cleaned")
        return True

    def _migrate_source(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        uuid, status, on_host = item["id"], migration["status"], item.get("on_host", True)
        d = self.driver
        if status == "running" and on_host:
            return self._copy(item, migration)
        if status in ("post-migrating", "completed") and not on_host:
            d.destroy(uuid)  # the destination owns the guest now
            self._forget(uuid)
            self._event(migration, event="cleaned")
            return True
        if status in MIGRATION_ENDED_BADLY:
            if d.get_state(uuid).pid is not None:
                d.abort_migration(uuid)  # no copy may go on after the control plane gave up
            self._event(migration, event="cleaned")
            return False  # the server is this host's again: converge it as usual
        return status != "queued" and status != "preparing"

    def _copy(self, item: dict[str, Any], migration: dict[str, Any]) -> bool:
        """Copy the guest to the destination, watching and reporting progress until it
        ends (or the slice is over); abort and force-complete requests arrive with the
        answers to progress reports."""
        uuid, d = item["id"], self.driver
        if migration.get("abort"):
            return self._cancel(uuid, migration)
        d.migrate_to(uuid, migration["endpoint"], bool(migration["block_migration"]))
        flags: dict[str, Any] = migration
        forced = False
        started = time.monotonic()
        reported = 0.0
        while True:
            if flags.get("force_complete") and not forced:
                d.force_complete_migration(uuid)
                forced = True
            progress = d.migration_progress(uuid)
            if progress.status == "completed":
                return self._completed(uuid, migration, progress.report())
            if progress.status in ("failed", "cancelled"):
                event = "cancelled" if flags.get("abort") else "failed"
                self._event(migration, event=event, cleaned=True, message=progress.message)
                return True
            now = time.monotonic()
            if now - reported >= PROGRESS_INTERVAL:
                reported = now
                answer = self._event(migration, event="progress", **progress.report())
                if answer is None or answer["status"] != "running":
                    return True  # the control plane ended it: the next pass tidies up
                flags = answer
                if answer.get("abort"):
                    return self._cancel(uuid, migration)
            if self.migration_slice is not None and now - started > self.migration_slice:
                return True
            time.sleep(0.05)

    def _completed(self, uuid: str, migration: dict[str, Any], numbers: dict[str, Any]) -> bool:
        answer = self._event(migration, event="completed", **numbers)
        if answer is not None and answer["status"] in ("post-migrating", "completed"):
            self.driver.destroy(uuid)  # the switch is committed: this copy is stale
            self._forget(uuid)
            self._event(migration, event="cleaned")
        return True

    def _cancel(self, uuid: str, migration: dict[str, Any]) -> bool:
        progress = self.driver.abort_migration(uuid)
        if progress.status == "completed":  # too late to cancel: it moved
            return self._completed(uuid, migration, progress.report())
        self._event(migration, event="cancelled", cleaned=True, message="cancelled on request")
        return True

    def report(
        self,
        uuid: str,
        generation: int,
        power: PowerState,
        fault: str | None = None,
        gone: bool = False,
        task_error: str | None = None,
        consoles: object = _UNSEEN,
        detail: str = "",
    ) -> None:
        """Post an observation. ``consoles``: where the guest's consoles listen now (None:
        it has none); left out when this look did not ask the driver (the API keeps what
        it knew). ``detail``: the driver's word on a CRASHED guest (why it is)."""
        body: dict[str, Any] = {
            "power_state": str(power),
            "generation": generation,
            "fault": fault,
            "gone": gone,
        }
        if detail and power == PowerState.CRASHED:
            body["detail"] = detail
        if task_error:
            body["task_error"] = task_error
        if isinstance(consoles, ConsoleEndpoints) or consoles is None:
            body["consoles"] = consoles.to_dict() if consoles is not None else None
        response = self.client.post(f"{self.base}/instances/{uuid}/observation", json=body)
        if response.status_code == 404:
            return  # deleted meanwhile
        response.raise_for_status()
        self._reported[uuid] = (generation, str(power))
        if "consoles" in body:
            self._consoles_reported[uuid] = consoles
        if gone:
            self._reported.pop(uuid, None)
            self._consoles_reported.pop(uuid, None)

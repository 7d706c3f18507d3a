"""The QEMU driver's migration half: cold migration (the shut-off root disk served over
NBD and copied) and live migration (memory, and for block migration the disks, streamed
from the source QEMU to a destination QEMU started to receive them). Every step is
repeatable: files in the instance directory say what this host is doing, QEMU says how far
it got."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor import qmp
from kumo.drivers.hypervisor.base import (
    GuestSpec,
    GuestState,
    HypervisorError,
    MigrationProgress,
    check_display,
    check_pci_slots,
    pci_slots,
)
from kumo.drivers.hypervisor.qemu_process import QemuProcesses, disk_ids, free_port, process_alive


class QemuMigration(QemuProcesses):
    """Moving a guest between hosts, in source and destination phases."""

    # -- cold migration ----------------------------------------------------------------------
    #
    # The source serves the shut-off guest's root disk read-only with qemu-nbd (the qcow2
    # chain as the guest sees it: the destination needs no base image); the destination
    # copies it with `qemu-img convert` into a standalone qcow2 where its spec builder keeps
    # an existing root disk. export.json and nbd.pid in the instance directory make both
    # steps repeatable.

    def _nbd_pid(self, uuid: str) -> int | None:
        try:
            pid = int((self._dir(uuid) / "nbd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if process_alive(pid) and b"qemu-nbd" in argv else None

    def export_disk(self, uuid: str) -> dict[str, Any]:
        with self._lock(uuid):
            spec = self._own_spec(uuid)
            directory = self._dir(uuid)
            record = directory / "export.json"
            if record.exists() and self._nbd_pid(uuid) is not None:
                endpoint: dict[str, Any] = json.loads(record.read_text())
                return endpoint
            if self._pid(uuid) is not None:
                raise HypervisorError(f"guest {uuid} is running: shut it off first")
            if not spec.root_disk:
                raise HypervisorError(f"guest {uuid} has no root disk to serve")
            address = self.migration_address
            port = free_port(address)
            argv = [
                "qemu-nbd",
                "--read-only",
                "--persistent",
                "--shared=4",
                "--fork",
                f"--pid-file={directory / 'nbd.pid'}",
                "-f",
                spec.root_disk_format,
                "-b",
                address,
                "-p",
                str(port),
                "-x",
                "disk",
                spec.root_disk,
            ]
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                raise HypervisorError(f"qemu-nbd could not start: {exc}") from exc
            if result.returncode != 0:
                raise HypervisorError(f"qemu-nbd failed: {result.stderr.strip()[:500]}")
            endpoint = {"host": address, "port": port, "export": "disk"}
            tmp = record.with_name("export.json.tmp")
            tmp.write_text(json.dumps(endpoint))
            tmp.replace(record)
            return endpoint

    def end_export(self, uuid: str) -> None:
        with self._lock(uuid):
            pid = self._nbd_pid(uuid)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5.0
                while process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if process_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            directory = self._dir(uuid)
            for name in ("nbd.pid", "export.json"):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()

    def import_disk(self, uuid: str, endpoint: dict[str, Any]) -> None:
        with self._lock(uuid):
            if self._pid(uuid) is not None:
                raise HypervisorError(f"guest {uuid} already runs on this host")
            directory = self._dir(uuid)
            directory.mkdir(parents=True, exist_ok=True)
            url = (
                f"nbd://{endpoint.get('host')}:{int(endpoint.get('port') or 0)}/"
                f"{endpoint.get('export') or 'disk'}"
            )
            tmp = directory / "disk.import"
            argv = ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", url, str(tmp)]
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            except (OSError, subprocess.SubprocessError) as exc:
                tmp.unlink(missing_ok=True)
                raise HypervisorError(f"copying the disk from {url} failed: {exc}") from exc
            if result.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise HypervisorError(
                    f"copying the disk from {url} failed: {result.stderr.strip()[:500]}"
                )
            tmp.replace(directory / "disk")

    # -- live migration ----------------------------------------------------------------------
    #
    # Files in the instance directory say what this host is doing in a migration; QEMU says
    # how far it got (query-migrate, query-block-jobs), so every step can be repeated:
    #     incoming.json   destination: the endpoint it waits on
    #     outgoing.json   source: the endpoint, block or not, and whether `migrate` was issued

    def _writable_drives(self, spec: GuestSpec) -> list[str]:
        """The block backends whose contents move with a block migration: the root disk and
        writable extra disks (the config drive is read-only and rebuilt by the destination)."""
        drives = ["drive-root"] if spec.root_disk else []
        for i, disk in enumerate(spec.extra_disks):
            if not disk.readonly:  # a disk with a slot is a node: named for its serial
                slotted = disk.pci_slot is not None
                drives.append(disk_ids(disk.serial)[1] if slotted else f"drive-disk{i}")
        return drives

    def prepare_incoming(self, spec: GuestSpec, block: bool) -> dict[str, Any]:
        with self._lock(spec.uuid):
            directory = self._dir(spec.uuid)
            record = directory / "incoming.json"
            pid = self._pid(spec.uuid)
            if pid is not None:
                if record.exists():
                    endpoint: dict[str, Any] = json.loads(record.read_text())
                    return endpoint
                raise HypervisorError(f"guest {spec.uuid} already runs on this host")
            directory.mkdir(parents=True, exist_ok=True)
            self._write_json(directory / "spec.json", spec)
            record.unlink(missing_ok=True)
            self._start(spec, incoming="defer")
            address = self.migration_address
            try:
                self._qmp(spec.uuid, "migrate-incoming", {"uri": f"tcp:{address}:0"})
                info = self._qmp(spec.uuid, "query-migrate")
                port = int(info["socket-address"][0]["port"])
                endpoint = {
                    "host": address,
                    "port": port,
                    "block": block,
                    "nbd_port": None,
                    "drives": [],
                    "pci_slots": pci_slots(spec),
                    "display": spec.display,
                }
                if block:
                    endpoint["nbd_port"] = self._serve_disks(spec)
                    endpoint["drives"] = self._writable_drives(spec)
            except BaseException:
                pid = self._pid(spec.uuid)
                if pid is not None:
                    self._kill(spec.uuid, pid)
                raise
            tmp = directory / "incoming.json.tmp"
            tmp.write_text(json.dumps(endpoint))
            tmp.replace(record)
            return endpoint

    def _serve_disks(self, spec: GuestSpec) -> int:
        """Export the destination's writable disks over NBD for the source's mirror jobs.
        QEMU cannot tell which port it bound for NBD, so a free one is picked here; one
        taken meanwhile by someone else is retried."""
        last: Exception | None = None
        for _ in range(5):
            port = free_port(self.migration_address)
            try:
                self._qmp(
                    spec.uuid,
                    "nbd-server-start",
                    {
                        "addr": {
                            "type": "inet",
                            "data": {"host": self.migration_address, "port": str(port)},
                        }
                    },
                )
            except Exception as exc:  # the port went to someone else: another one
                last = exc
                continue
            nodes: dict[str, str] = {}
            for backend in self._qmp(spec.uuid, "query-block"):
                if backend.get("inserted"):  # by drive name (-drive) or node name
                    node = backend["inserted"]["node-name"]
                    nodes[backend["device"] or node] = node
            for drive in self._writable_drives(spec):
                self._qmp(
                    spec.uuid,
                    "block-export-add",
                    {
                        "type": "nbd",
                        "id": f"mig-{drive}",
                        "node-name": nodes[drive],
                        "name": drive,
                        "writable": True,
                    },
                )
            return port
        raise HypervisorError(f"could not serve the disks of {spec.uuid} over NBD: {last}")

    def migrate_to(self, uuid: str, endpoint: dict[str, Any], block: bool) -> None:
        with self._lock(uuid):
            self._require_running(uuid)
            record = self._dir(uuid) / "outgoing.json"
            if record.exists():
                known = json.loads(record.read_text())
                status = self._qmp(uuid, "query-migrate").get("status", "none")
                if known.get("endpoint") == endpoint and (
                    not known.get("started") or status not in ("failed", "cancelled", "none")
                ):
                    return  # under way (or done) to this very endpoint
            check_pci_slots(uuid, self._spec(uuid), endpoint)
            check_display(uuid, self._spec(uuid), endpoint)
            self._write_outgoing(uuid, {"endpoint": endpoint, "block": block, "started": False})
            if block:
                self._start_mirrors(uuid, endpoint)

    def _write_outgoing(self, uuid: str, data: dict[str, Any]) -> None:
        directory = self._dir(uuid)
        tmp = directory / "outgoing.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(directory / "outgoing.json")

    def _start_mirrors(self, uuid: str, endpoint: dict[str, Any]) -> None:
        jobs = {j["device"] for j in self._qmp(uuid, "query-block-jobs")}
        nodes = {
            n.get("node-name") for n in self._qmp(uuid, "query-named-block-nodes", {"flat": True})
        }
        for drive in endpoint.get("drives") or []:
            node = f"mig-{drive}"
            if node not in nodes:
                self._qmp(
                    uuid,
                    "blockdev-add",
                    {
                        "driver": "nbd",
                        "node-name": node,
                        "export": drive,
                        "server": {
                            "type": "inet",
                            "host": str(endpoint["host"]),
                            "port": str(endpoint["nbd_port"]),
                        },
                    },
                    timeout=30.0,
                )
            if node not in jobs:
                self._qmp(
                    uuid,
                    "blockdev-mirror",
                    {"job-id": node, "device": drive, "target": node, "sync": "full"},
                )

    def _stop_mirrors(self, uuid: str) -> None:
        """Drop the disk copies to the destination (after the memory copy completed, or
        when it failed): cancel the jobs, wait for them to go, remove the NBD nodes."""
        try:
            jobs = [
                j["device"]
                for j in self._qmp(uuid, "query-block-jobs")
                if str(j["device"]).startswith("mig-")
            ]
            for job in jobs:
                with contextlib.suppress(Exception):
                    self._qmp(uuid, "block-job-cancel", {"device": job, "force": True})
            deadline = time.monotonic() + 30
            while jobs and time.monotonic() < deadline:
                running = {j["device"] for j in self._qmp(uuid, "query-block-jobs")}
                jobs = [j for j in jobs if j in running]
                if jobs:
                    time.sleep(0.05)
            for node in self._qmp(uuid, "query-named-block-nodes", {"flat": True}):
                name = str(node.get("node-name") or "")
                if name.startswith("mig-"):
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "blockdev-del", {"node-name": name})
        except qmp.QMPUnavailable:
            pass

    def migration_progress(self, uuid: str) -> MigrationProgress:
        with self._lock(uuid):
            self._spec(uuid)
            record = self._dir(uuid) / "outgoing.json"
            if self._pid(uuid) is None:
                return MigrationProgress("failed", message="the source guest is not running")
            if not record.exists():
                return MigrationProgress("none")
            known = json.loads(record.read_text())
            info = self._qmp(uuid, "query-migrate")
            status = str(info.get("status", "none"))
            disk = self._disk_progress(uuid)
            if known.get("started") and status == "completed":
                if "total-time" not in info or "downtime" not in info:
                    time.sleep(0.05)  # LAB.md: completed may come before the times
                    info = self._qmp(uuid, "query-migrate")
                self._stop_mirrors(uuid)
                return self._progress("completed", info, disk)
            if known.get("started") and status in ("failed", "cancelled"):
                self._stop_mirrors(uuid)
                return MigrationProgress(
                    status, message=str(info.get("error-desc") or f"migration {status}")
                )
            if known.get("started") or status not in ("none", "failed", "cancelled", "completed"):
                return self._progress("active", info, disk)
            # Not started yet: the memory copy begins once every disk copy is in step.
            if known.get("block"):
                jobs = [
                    j
                    for j in self._qmp(uuid, "query-block-jobs")
                    if str(j["device"]).startswith("mig-")
                ]
                if any(j.get("status") in ("aborting", "concluded", "null") for j in jobs) or (
                    len(jobs) < len(known["endpoint"].get("drives") or [])
                ):
                    self._stop_mirrors(uuid)
                    return MigrationProgress("failed", message="copying the disks failed")
                if not all(j.get("ready") for j in jobs):
                    return self._progress("active", {}, disk)
            endpoint = known["endpoint"]
            self._qmp(uuid, "migrate", {"uri": f"tcp:{endpoint['host']}:{endpoint['port']}"})
            self._write_outgoing(uuid, {**known, "started": True})
            return self._progress("active", self._qmp(uuid, "query-migrate"), disk)

    def _disk_progress(self, uuid: str) -> tuple[int, int] | None:
        jobs = [
            j for j in self._qmp(uuid, "query-block-jobs") if str(j["device"]).startswith("mig-")
        ]
        if not jobs:
            return None
        return sum(int(j.get("len", 0)) for j in jobs), sum(int(j.get("offset", 0)) for j in jobs)

    @staticmethod
    def _progress(
        status: str, info: dict[str, Any], disk: tuple[int, int] | None
    ) -> MigrationProgress:
        ram = info.get("ram") or {}
        total = ram.get("total")
        done = ram.get("transferred")
        left = ram.get("remaining")
        if status == "completed" and total is not None:
            done, left = total, 0
        return MigrationProgress(
            status,
            memory_total_bytes=total,
            memory_processed_bytes=done,
            memory_remaining_bytes=left,
            disk_total_bytes=disk[0] if disk else None,
            disk_processed_bytes=disk[1] if disk else None,
            disk_remaining_bytes=max(0, disk[0] - disk[1]) if disk else None,
            total_time_ms=info.get("total-time"),
            downtime_ms=info.get("downtime"),
        )

    def force_complete_migration(self, uuid: str) -> None:
        with self._lock(uuid):
            self._require_running(uuid)
            status = self._qmp(uuid, "query-status")["status"]
            if status == "running":
                self._qmp(uuid, "stop")

    def abort_migration(self, uuid: str) -> MigrationProgress:
        with self._lock(uuid):
            self._spec(uuid)
            if self._pid(uuid) is None:
                return MigrationProgress("failed", message="the source guest is not running")
            record = self._dir(uuid) / "outgoing.json"
            status = str(self._qmp(uuid, "query-migrate").get("status", "none"))
            started = record.exists() and json.loads(record.read_text()).get("started")
            if started and status == "completed":
                return self.migration_progress(uuid)
            if started and status not in ("failed", "cancelled", "none"):
                self._qmp(uuid, "migrate_cancel")
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    status = str(self._qmp(uuid, "query-migrate").get("status", "none"))
                    if status in ("cancelled", "failed", "completed"):
                        break
                    time.sleep(0.05)
                if status == "completed":
                    return self.migration_progress(uuid)
            self._stop_mirrors(uuid)
            record.unlink(missing_ok=True)
            return MigrationProgress("cancelled", message="cancelled on request")

    def finish_incoming(self, uuid: str, run: bool) -> GuestState:
        with self._lock(uuid):
            self._spec(uuid)
            record = self._dir(uuid) / "incoming.json"
            if self._pid(uuid) is None:
                record.unlink(missing_ok=True)
                raise HypervisorError(f"the incoming guest {uuid} is gone")
            if record.exists():
                status = self._qmp(uuid, "query-status")["status"]
                if status == "inmigrate":
                    raise HypervisorError(f"guest {uuid}: its state has not fully arrived")
                endpoint = json.loads(record.read_text())
                for drive in endpoint.get("drives") or []:
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "block-export-del", {"id": f"mig-{drive}"})
                if endpoint.get("nbd_port"):
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "nbd-server-stop")
                record.unlink()
                if run and self._qmp(uuid, "query-status")["status"] != "running":
                    self._qmp(uuid, "cont")
            return self.get_state(uuid)

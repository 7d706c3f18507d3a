"""Agent API v1: how host agents register and report (they never touch the database)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from kumo.api.body import json_body
from kumo.api.image.store import image_store, purge_image_data
from kumo.api.state import AppState, app_state
from kumo.core import hosts, wakeup
from kumo.core.compute import migrations as reports_migrations
from kumo.core.compute import reports
from kumo.core.errors import BadRequest, NotFound, TooLarge
from kumo.core.images import data, formats
from kumo.core.volume import uploads
from kumo.db import models as m
from kumo.drivers.storage import qemu_img
from kumo.drivers.storage.imagestore import TooBig

router = APIRouter(prefix="/agent/v1")


def _host_view(host: Any) -> dict[str, Any]:
    return {
        "id": host.id,
        "name": host.name,
        "enabled": host.enabled,
        "disabled_reason": host.disabled_reason,
        # A self-fenced agent stays fenced while its host is forced down (kumo.core.ha).
        "forced_down": host.forced_down,
    }


HOST_CREDENTIAL_TTL = 60.0  # seconds a checked credential is trusted without a query


def authorize_host(request: Request, state: AppState) -> None:
    presented = request.headers.get("X-Kumo-Host-Credential")
    checked = state.verified_host_credentials.get(presented or "")
    if checked is not None and time.monotonic() - checked < HOST_CREDENTIAL_TTL:
        return
    with state.db.session() as session:
        hosts.check_host_credential(session, presented)
    state.verified_host_credentials = {str(presented): time.monotonic()}


@router.get("")
def version() -> dict[str, Any]:
    return {
        "version": {
            "id": "v1",
            "status": "CURRENT",
            "served": list(hosts.SERVED_AGENT_API_VERSIONS),
        }
    }


@router.post("/hosts")
def register(
    request: Request, body: Any = Depends(json_body), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    authorize_host(request, state)
    if not isinstance(body, dict) or not isinstance(body.get("host"), dict):
        raise BadRequest("Expecting to find host in request body.")
    with state.db.session() as session:
        host = hosts.register(session, body["host"])
        return {"host": _host_view(host)}


@router.post("/hosts/{host_id}/heartbeat")
def heartbeat(
    host_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    authorize_host(request, state)
    with state.db.session() as session:
        host = hosts.heartbeat(session, host_id, body)
        return {"host": _host_view(host)}


@router.get("/hosts/{host_id}/instances")
def host_instances(
    host_id: str,
    request: Request,
    wait: float = 0.0,
    since: int = -1,
    pending_only: bool = False,
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """The servers of this host with their desired state. With ``wait`` and the ``mark`` of
    the previous answer as ``since``, the call returns early when something changed; with
    ``pending_only`` too, such an early answer carries only the servers with a request
    outstanding (a burst of creates then costs O(n), not O(n^2), rows), while an answer
    after the full wait is the whole list, the agent's periodic resync. ``complete`` says
    which one it is."""
    authorize_host(request, state)
    topic = wakeup.host_topic(host_id)
    woken = False
    if wait > 0:
        wakeup.agent_polled(host_id)
    if wait > 0 and since >= 0:
        woken = wakeup.wait(topic, since, min(wait, 30.0)) != since
    mark = wakeup.mark(topic)
    partial = pending_only and woken
    with state.db.session() as session:
        if session.get(m.Host, host_id) is None:
            raise NotFound(f"Host {host_id} is not registered; the agent must register again.")
        return {
            "mark": mark,
            "complete": not partial,
            "instances": reports.work_for_host(session, host_id, pending_only=partial),
            "consoles": wakeup.consoles_wanted(host_id),
        }


@router.post("/hosts/{host_id}/instances/{instance_id}/observation", status_code=204)
def observation(
    host_id: str,
    instance_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    authorize_host(request, state)
    obs = reports.Observation.parse(body)
    with state.db.session() as session:
        dropped = reports.record(session, host_id, instance_id, obs)
    purge_image_data(state, dropped)
    return Response(status_code=204)


@router.post("/hosts/{host_id}/instances/{instance_id}/console", status_code=204)
def console(
    host_id: str,
    instance_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    """The tail of a guest's serial console, as the agent read it (for os-getConsoleOutput)."""
    authorize_host(request, state)
    if not isinstance(body, dict):
        raise BadRequest("Expecting an object with content.")
    with state.db.session() as session:
        reports.record_console(session, host_id, instance_id, body.get("content"))
    wakeup.notify(wakeup.console_topic(instance_id))  # a reader may be waiting for it
    return Response(status_code=204)


@router.post("/hosts/{host_id}/instances/{instance_id}/task", status_code=204)
def task_step(
    host_id: str,
    instance_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    """A request moved one step on while the agent works (image_pending_upload, ...)."""
    authorize_host(request, state)
    if not isinstance(body, dict):
        raise BadRequest("Expecting an object with generation and task_state.")
    with state.db.session() as session:
        reports.set_task(
            session, host_id, instance_id, body.get("generation"), body.get("task_state")
        )
    return Response(status_code=204)


@router.post("/hosts/{host_id}/migrations/{migration_uuid}")
def migration_event(
    host_id: str,
    migration_uuid: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """An agent's report on its part of a migration (ready, progress, completed, failed,
    cancelled, finished, cleaned). The answer says whether an abort or force-complete was
    asked for since, so a source busy copying learns of it at its next progress report."""
    authorize_host(request, state)
    with state.db.session() as session:
        answer = reports_migrations.record_event(session, host_id, migration_uuid, body)
        row = session.scalars(select(m.Migration).where(m.Migration.uuid == migration_uuid)).one()
        others = {row.source_host_id, row.dest_host_id} - {host_id, None}
    # The other host acts next (the destination continues the guest after the switch...).
    wakeup.notify(*(wakeup.host_topic(h) for h in others if h))
    return {"migration": answer}


@router.put("/images/{image_id}/file", status_code=204)
async def snapshot_file(
    image_id: str, request: Request, state: AppState = Depends(app_state)
) -> Response:
    """A server's snapshot (createImage, createBackup, shelve) or a volume's copy
    (os-volume_upload_image), streamed into the image store and checked like a user upload
    (size limit, checksums, ``qemu-img info``: the image's format, no backing file). Only
    an image such a request is waiting for accepts data."""
    db = state.db

    def begin() -> tuple[str, str, bool]:
        with db.session() as session:
            hosts.check_host_credential(session, request.headers.get("X-Kumo-Host-Credential"))
            try:
                image = reports.begin_snapshot_upload(session, image_id)
                return image.id, "qcow2", True
            except NotFound:
                image = uploads.begin_agent_upload(session, image_id)
                return image.id, str(image.disk_format), False

    ident, disk_format, from_server = await anyio.to_thread.run_sync(begin)

    def abort() -> None:
        with db.session() as session:
            if from_server:
                reports.abort_snapshot_upload(session, ident)
            else:
                data.abort_upload(session, ident)

    store = image_store(state)
    limit = state.config.images.max_size_bytes
    try:
        try:
            written = await store.write(ident, request.stream(), limit)
        except TooBig as exc:
            raise TooLarge(f"Image data exceeds the maximum size of {limit} bytes.") from exc
        try:
            try:
                info = await anyio.to_thread.run_sync(qemu_img.info, written.path)
            except qemu_img.InspectionFailed as exc:
                raise BadRequest(f"Snapshot data could not be inspected: {exc}") from exc
            inspection = formats.inspect(disk_format, info)
        except BaseException:
            await anyio.to_thread.run_sync(store.discard, written)
            raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(abort)
        raise
    stored = data.StoredData(
        size=written.size,
        checksum=written.md5,
        os_hash_value=written.sha512,
        virtual_size=inspection.virtual_size,
    )

    def finish() -> None:
        store.commit(ident, written)
        try:
            with db.session() as session:
                rotated: list[str] = []
                if from_server:
                    rotated = reports.finish_snapshot_upload(session, ident, stored)
                else:
                    data.finish_upload(session, ident, stored)
        except BaseException:
            store.delete(ident)
            abort()
            raise
        for image_id in rotated:  # backups rotated out: rows deleted first, then their data
            store.delete(image_id)

    await anyio.to_thread.run_sync(finish)
    return Response(status_code=204)


@router.get("/images/{image_id}")
def image(image_id: str, request: Request, state: AppState = Depends(app_state)) -> dict[str, Any]:
    """What an agent needs to cache and boot an image (any visibility: hosts are trusted)."""
    authorize_host(request, state)
    with state.db.session() as session:
        return {"image": reports.image_view(reports.image_for_host(session, image_id))}


@router.get("/images/{image_id}/file", response_model=None)
def image_file(image_id: str, request: Request, state: AppState = Depends(app_state)) -> Any:
    """The image's data, streamed from the image store."""
    authorize_host(request, state)
    with state.db.session() as session:
        found = reports.image_for_host(session, image_id)
        size = found.size
    store = image_store(state)
    if not store.path(image_id).is_file():
        raise NotFound(f"Image data for {image_id} is missing from the image store.")
    return StreamingResponse(
        store.read(image_id),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )

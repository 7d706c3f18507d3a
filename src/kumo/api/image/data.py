"""/image/v2/images/{id}/file: upload and download of image data, streamed both ways."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from kumo.api.auth import Caller, caller
from kumo.api.image.store import image_store
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, NotFound, TooLarge
from kumo.core.images import data, formats
from kumo.drivers.storage import qemu_img
from kumo.drivers.storage.imagestore import TooBig, Written

router = APIRouter(prefix="/image/v2")


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"Image data exceeds the maximum size of {limit} bytes.")


async def _inspect(written: Written, disk_format: str, require_match: bool) -> formats.Inspection:
    try:
        info = await anyio.to_thread.run_sync(qemu_img.info, written.path)
    except qemu_img.InspectionFailed as exc:
        raise BadRequest(f"Image data could not be inspected: {exc}") from exc
    return formats.inspect(disk_format, info, require_match)


@router.put("/images/{image_id}/file", status_code=204)
async def upload(
    image_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    ctx = who.ctx
    db = state.db

    def begin() -> tuple[str, str]:
        with db.session() as session:
            image = data.begin_upload(session, ctx, image_id)
            assert image.disk_format is not None
            return image.id, image.disk_format

    def abort() -> None:
        with db.session() as session:
            data.abort_upload(session, ident)

    ident, disk_format = await anyio.to_thread.run_sync(begin)
    store = image_store(state)
    limit = state.config.images.max_size_bytes
    try:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        try:
            written = await store.write(ident, request.stream(), limit)
        except TooBig as exc:
            raise _too_large(limit) from exc
        try:
            inspection = await _inspect(
                written, disk_format, state.config.images.require_format_match
            )
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
        # qemu-img rounds raw data up to whole sectors; raw data is its own virtual size.
        virtual_size=written.size if inspection.format == "raw" else inspection.virtual_size,
    )

    def finish() -> None:
        store.commit(ident, written)
        try:
            with db.session() as session:
                data.finish_upload(session, ident, stored)
        except data.Gone:
            store.delete(ident)
            raise
        except BaseException:
            store.delete(ident)
            abort()
            raise

    await anyio.to_thread.run_sync(finish)
    return Response(status_code=204)


@router.get("/images/{image_id}/file", response_model=None)
def download(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Any:
    with state.db.session() as session:
        image = data.for_download(session, who.ctx, image_id)
    if image is None:
        return Response(status_code=204)
    store = image_store(state)
    if not store.path(image.id).is_file():
        raise NotFound(f"Image data for {image.id} is missing from the image store.")
    headers = {"Content-Length": str(image.size)}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    return StreamingResponse(
        store.read(image.id), media_type="application/octet-stream", headers=headers
    )

"""/volume/v3/.../ with a trailing slash: a 404, as in Cinder.

Cinder's router matches its routes exactly, so ``GET/PUT/DELETE .../volumes/`` (a volume
named by an empty id, as tempest's test_get_volume_without_passing_volume_id sends it) finds
no route: 404. Starlette's router would instead redirect such a path to the one without
the slash (the volume list, or a 405 for PUT and DELETE). This route, last of the block
storage ones, takes every such path first. The service root (``/volume/v3/``) is the
versions document's, matched before."""

from __future__ import annotations

from fastapi import APIRouter

from kumo.api.volume.common import PREFIX
from kumo.core.errors import NotFound

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.api_route("/{path:path}/", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def no_such_resource(path: str) -> None:
    raise NotFound("The resource could not be found.")

"""The image store this API copy uses (the directory comes from [images] store_dir)."""

from __future__ import annotations

from kumo.api.state import AppState
from kumo.drivers.storage.imagestore import ImageStore


def image_store(state: AppState) -> ImageStore:
    return ImageStore(state.config.images_dir)


def purge_image_data(state: AppState, image_ids: list[str]) -> None:
    """Remove the data of images whose rows the compute side deleted (a shelved server's
    snapshot), after that transaction committed: a failed commit keeps the data."""
    store = image_store(state)
    for image_id in image_ids:
        store.delete(image_id)

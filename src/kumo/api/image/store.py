"""The image store this API copy uses (the directory comes from [images] store_dir)."""

from __future__ import annotations

from kumo.api.state import AppState
from kumo.drivers.storage.imagestore import ImageStore


def image_store(state: AppState) -> ImageStore:
    return ImageStore(state.config.images_dir)

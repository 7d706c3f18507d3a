"""Filesystem image store: one file per image under the store directory.

Data arrives as a stream and is written to ``<id>.part`` while its md5 and sha512 are
computed, so an image of any size never sits in memory; only a complete upload within the
size limit is renamed to ``<id>``. A failed or refused upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

CHUNK = 1 << 20


class TooBig(Exception):
    """The stream went over the store's size limit; what was written is removed."""


@dataclass(frozen=True)
class Written:
    path: Path  # the partial file; commit() or discard() it
    size: int
    md5: str
    sha512: str


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, image_id: str) -> Path:
        # Image ids are validated UUIDs before they reach the store; never a path.
        if "/" in image_id or image_id.startswith("."):
            raise ValueError(f"bad image id {image_id!r}")
        return self.root / image_id

    def partial(self, image_id: str) -> Path:
        return self.root / f"{image_id}.part"

    async def write(self, image_id: str, chunks: AsyncIterable[bytes], max_size: int) -> Written:
        """Stream ``chunks`` to the partial file; TooBig (and nothing kept) past max_size."""
        await anyio.to_thread.run_sync(lambda: self.root.mkdir(parents=True, exist_ok=True))
        target = self.partial(image_id)
        md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        size = 0
        handle = await anyio.open_file(target, "wb")
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_size:
                    raise TooBig(f"image data is larger than {max_size} bytes")
                md5.update(chunk)
                sha512.update(chunk)
                await handle.write(chunk)
            await handle.flush()
            await anyio.to_thread.run_sync(os.fsync, handle.wrapped.fileno())
        except BaseException:
            await handle.aclose()
            await anyio.to_thread.run_sync(self._unlink, target)
            raise
        await handle.aclose()
        return Written(target, size, md5.hexdigest(), sha512.hexdigest())

    def commit(self, image_id: str, written: Written) -> None:
        os.replace(written.path, self.path(image_id))

    @staticmethod
    def _unlink(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def discard(self, written: Written) -> None:
        self._unlink(written.path)

    def delete(self, image_id: str) -> None:
        """Remove an image's data (and any partial upload); absent data is not an error."""
        self._unlink(self.path(image_id))
        self._unlink(self.partial(image_id))

    async def read(self, image_id: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(image_id), "rb") as handle:
            while chunk := await handle.read(CHUNK):
                yield chunk

"""A minimal writer for the cpio "newc" format the kernel unpacks as an initramfs.

Written by hand (30 lines) so the build needs no root (device nodes are just headers) and is
byte-for-byte reproducible (fixed mtimes and inode numbers), which the content-hash cache
relies on.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field


@dataclass
class CpioArchive:
    _chunks: list[bytes] = field(default_factory=list)
    _ino: int = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._chunks.append(header + encoded + _pad(len(header) + len(encoded)))
        self._chunks.append(data + _pad(len(data)))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def getvalue(self) -> bytes:
        trailer = CpioArchive(_ino=0)
        trailer._entry("TRAILER!!!", 0)
        return b"".join(self._chunks + trailer._chunks)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)

"""An ordinary disk image that boots through the BIOS: a master boot record whose code
writes one line to the first serial port and halts. Hand-assembled 16-bit real-mode code,
so the test needs no bootloader package, and the line proves that SeaBIOS loaded sector 0
of the guest's root disk and ran it (no -kernel involved)."""

from __future__ import annotations

from pathlib import Path

BIOS_LINE = "kumo-bios: booted from disk"

_CODE = bytes(
    [
        0xFC,  # 00 cld
        0x31,
        0xC0,  # 01 xor ax, ax
        0x8E,
        0xD8,  # 03 mov ds, ax
        0xBE,
        0x17,
        0x7C,  # 05 mov si, 0x7c17 (the message, right after the code)
        0xBA,
        0xF8,
        0x03,  # 08 mov dx, 0x3f8 (COM1 data port)
        0xAC,  # 0b lodsb
        0x84,
        0xC0,  # 0c test al, al
        0x74,
        0x03,  # 0e jz 0x13
        0xEE,  # 10 out dx, al
        0xEB,
        0xF8,  # 11 jmp 0x0b
        0xFA,  # 13 cli
        0xF4,  # 14 hlt
        0xEB,
        0xFD,  # 15 jmp 0x14
    ]
)


def write_bios_disk(path: Path, size: int = 1 << 20) -> Path:
    """A raw disk of ``size`` bytes whose MBR prints BIOS_LINE on ttyS0."""
    sector = _CODE + (BIOS_LINE + "\r\n").encode() + b"\x00"
    assert len(_CODE) == 0x17 and len(sector) <= 510
    sector = sector.ljust(510, b"\x00") + b"\x55\xaa"
    path.write_bytes(sector.ljust(size, b"\x00"))
    return path
